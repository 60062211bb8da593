//! `datatrace check` narrows differing chunks by sub-range checksums before reading rows
//! (`cargo test -p datatrace-server --test check_narrow`): a 60,000-row table with a
//! composite key (`region`, `id`) and nullable columns next to the key, copied, then
//! changed in scattered places of two of its three regions (200 rows different, among them NULL against `''` and a
//! value against NULL; 50 rows deleted; 70 extra rows, 50 of them between existing keys and
//! 20 after the last one). Every chunk differs; the report must name exactly those rows
//! while reading only a small share of the table row by row, and `--repair --delete-extra`
//! must make the copy equal, checked column by column in SQL.

use std::path::{Path, PathBuf};
use std::process::Command;

use datatrace_testkit::mariadb;
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");
const ROWS: u64 = 60_000;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check_json(dir: &Path, extra: &[&str]) -> (i32, Json) {
    let mut args = vec![
        "check",
        "job.toml",
        "--format",
        "json",
        "--recheck-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs");
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check prints JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn scalar(sql: &str) -> u64 {
    let out = mariadb().exec(sql);
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
}

/// Target rows equal to a source row in every column (NULL-safe, text compared as bytes).
/// The join is on the key as it is (so it uses the primary key), the byte comparisons come
/// after it: `BINARY` in the join condition itself made a nested loop over 60,000 x 60,000
/// rows that ran for many minutes.
fn exact_matches(src: &str, dst: &str) -> u64 {
    scalar(&format!(
        "SELECT COUNT(*) FROM {src}.t s JOIN {dst}.t d ON s.region = d.region AND s.id = d.id \
         WHERE BINARY s.region = BINARY d.region AND s.a <=> d.a \
         AND BINARY s.b <=> BINARY d.b AND s.c <=> d.c"
    ))
}

#[test]
fn scattered_differences_are_narrowed_found_exactly_and_repaired() {
    let src = mariadb().create_database("chknarrow");
    let dst = mariadb().create_database("chknarrow");
    // Even ids, so that extra rows can sit between existing keys; `a` NULL every 7th row,
    // `b` NULL every 4th.
    mariadb().exec(&format!(
        "CREATE TABLE {src}.t (region VARCHAR(8) NOT NULL, id INT NOT NULL, a INT NULL, \
           b VARCHAR(32) NULL, c DECIMAL(10,2) NULL, PRIMARY KEY (region, id));
         INSERT INTO {src}.t SELECT ELT(1 + seq % 3, 'eu', 'us', 'ap'), seq * 2, \
           IF(seq % 7 = 0, NULL, seq % 1000), IF(seq % 4 = 1, NULL, CONCAT('row ', seq)), \
           seq / 100 FROM {src}.seq_1_to_{ROWS};
         CREATE TABLE {dst}.t LIKE {src}.t;
         INSERT INTO {dst}.t SELECT * FROM {src}.t;"
    ));
    // 100 rows: a value against NULL (or NULL against 0); 100 rows: NULL against ''.
    // 50 rows deleted; 50 extra rows between existing keys, 20 after the last key.
    mariadb().exec(&format!(
        "UPDATE {dst}.t SET a = IF(a IS NULL, 0, NULL) WHERE id DIV 2 % 600 = 17;
         UPDATE {dst}.t SET b = '' WHERE id DIV 2 % 600 = 217;
         DELETE FROM {dst}.t WHERE id DIV 2 % 1200 = 301;
         INSERT INTO {dst}.t SELECT region, id + 1, a, b, c FROM {src}.t WHERE id DIV 2 % 1200 = 901;
         INSERT INTO {dst}.t SELECT 'zz', seq, NULL, NULL, NULL FROM {src}.seq_1_to_20;"
    ));
    let dir = workdir("narrow");
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"narrow\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\ncreate_table = false\n\
             [checkpoints]\ndir = \"cp\"\n",
            mariadb().url_for(&src),
            mariadb().url_for(&dst)
        ),
    )
    .unwrap();

    let (code, report) = check_json(&dir, &["--max-diffs", "1000"]);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["method"], "checksum", "{u}");
    assert_eq!(u["source_rows"], ROWS);
    assert_eq!(u["target_rows"], ROWS - 50 + 70);
    assert_eq!(u["different"], 200, "{u}");
    assert_eq!(u["missing"], 50, "{u}");
    assert_eq!(u["extra"], 70, "{u}");
    // The chunks of regions `ap` and `us` differ (4 of 6), yet only the narrowed sub-ranges
    // were read row by row: a few dozen rows per difference instead of the 80,000 rows of
    // those chunks on both sides.
    let chunks = u["chunks"].as_u64().unwrap();
    assert!(chunks >= 6, "{u}");
    assert_eq!(u["chunks_differing"], 4, "{u}");
    let read = u["rows_read"].as_u64().unwrap();
    let sub_ranges = u["sub_ranges"].as_u64().unwrap();
    eprintln!("{chunks} chunks, {sub_ranges} sub-ranges, {read} rows read");
    assert!(sub_ranges >= 100, "{u}");
    assert!(read * 3 < 2 * ROWS, "{read} rows read row by row");
    // The exact keys and fields.
    let keys = |kind: &str| -> Vec<String> {
        u[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let missing = keys("missing_keys");
    assert_eq!(missing.len(), 50);
    assert!(missing.contains(&"us,602".to_owned()), "{missing:?}"); // seq 301
    let extra = keys("extra_keys");
    assert_eq!(extra.len(), 70);
    assert!(extra.contains(&"zz,20".to_owned()), "{extra:?}");
    assert!(extra.contains(&"us,1803".to_owned()), "{extra:?}"); // seq 901, id + 1
    let fields: Vec<(String, Vec<String>)> = u["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let names = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect();
            (d["key"].as_str().unwrap().to_owned(), names)
        })
        .collect();
    assert_eq!(fields.len(), 200);
    assert!(
        fields.contains(&("ap,34".into(), vec!["a".into()])),
        "{fields:?}"
    ); // seq 17
    assert!(
        fields.contains(&("us,434".into(), vec!["b".into()])),
        "{fields:?}"
    ); // seq 217

    let (code, report) = check_json(&dir, &["--repair", "--delete-extra"]);
    assert_eq!(code, 0, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["repaired"]["rewritten"], 250, "{u}");
    assert_eq!(u["repaired"]["deleted"], 70, "{u}");
    assert_eq!(u["after_repair"]["equal"], true, "{u}");
    assert_eq!(scalar(&format!("SELECT COUNT(*) FROM {dst}.t")), ROWS);
    assert_eq!(exact_matches(&src, &dst), ROWS);
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["rows_read"], 0);
}

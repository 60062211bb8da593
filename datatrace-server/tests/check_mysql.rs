//! `datatrace check` MySQL -> MySQL against the testkit's MariaDB: a copy made with
//! `datatrace run` is corrupted on purpose (rows deleted, extra rows, one field of each type
//! changed) and the report must name exactly those keys and fields; `--repair
//! --delete-extra` must then make the copy equal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datatrace_testkit::mariadb;
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn datatrace(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_json(dir: &Path, extra: &[&str]) -> (i32, Json) {
    let mut args = vec![
        "check",
        "job.toml",
        "--format",
        "json",
        "--recheck-delay",
        "0",
        "--max-diffs",
        "100",
    ];
    args.extend_from_slice(extra);
    let out = datatrace(dir, &args);
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check prints JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// A table with a column of each type, 30 rows.
fn all_types_table(db: &str) {
    mariadb().exec(&format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, i INT, u INT UNSIGNED, d DECIMAL(12,3), \
           f DOUBLE, s VARCHAR(64) CHARACTER SET utf8mb4, b BLOB, dt DATE, tm TIME, \
           dtm DATETIME(6), ts TIMESTAMP(6) NULL, j JSON, e ENUM('a','b','c'), \
           st SET('x','y','z'), bt BIT(8), \
           l VARCHAR(16) CHARACTER SET latin1, \
           uc VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci);
         INSERT INTO {db}.t SELECT seq, seq * 10, seq * 1000, seq * 1.5, seq / 3, \
           CONCAT('name ', seq, ' 😀'), UNHEX(LPAD(HEX(seq), 4, '0')), \
           DATE '2024-01-01' + INTERVAL seq DAY, SEC_TO_TIME(seq * 61), \
           TIMESTAMP '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND, \
           TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq HOUR, \
           JSON_OBJECT('k', seq, 'a', JSON_ARRAY(1, 2)), ELT(1 + seq % 3, 'a', 'b', 'c'), \
           'x,z', seq, 'déjà', 'Straße' FROM {db}.seq_1_to_30;"
    ));
}

fn job(dir: &Path, src: &str, dst: &str, transforms: &str) {
    let m = mariadb();
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"chk\"\n\
             [source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"{src}.t\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\n{transforms}\n\
             [checkpoints]\ndir = \"cp\"\n",
            m.url_for(src),
            m.url_for(dst)
        ),
    )
    .unwrap();
    let out = datatrace(dir, &["run", "job.toml", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out.stderr));
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn diff_fields(report: &Json) -> Vec<(String, Vec<String>)> {
    report["units"][0]["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let fields = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect();
            (d["key"].as_str().unwrap().to_owned(), fields)
        })
        .collect()
}

fn field(report: &Json, key: &str, name: &str) -> (Json, Json) {
    let d = report["units"][0]["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == key)
        .unwrap_or_else(|| panic!("no diff for key {key}: {report}"));
    let f = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {d}"));
    (f["source"].clone(), f["target"].clone())
}

fn rows(db: &str) -> String {
    mariadb().exec(&format!(
        "SELECT id, i, u, d, f, s, HEX(b), dt, tm, dtm, ts, JSON_NORMALIZE(j), e, st, bt + 0 FROM {db}.t ORDER BY id"
    ))
}

#[test]
fn corrupted_copy_is_reported_exactly_then_repaired() {
    let dir = workdir("types");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(&dir, &src, &dst, "");

    // A fresh copy is equal, by checksums.
    let (code, report) = check_json(&dir, &["--chunk-size", "7"]);
    assert_eq!(code, 0, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["method"], "checksum");
    assert_eq!(u["source_rows"], 30);
    assert_eq!(u["target_rows"], 30);
    assert!(u["chunks"].as_u64().unwrap() >= 4, "{u}");
    assert_eq!(u["chunks_differing"], 0);

    mariadb().exec(&format!(
        "DELETE FROM {dst}.t WHERE id IN (3, 4);
         INSERT INTO {dst}.t (id, i) VALUES (1000, 1), (1001, 2);
         UPDATE {dst}.t SET i = -1 WHERE id = 5;
         UPDATE {dst}.t SET u = 7 WHERE id = 6;
         UPDATE {dst}.t SET d = 0.001 WHERE id = 7;
         UPDATE {dst}.t SET f = 2.5 WHERE id = 8;
         UPDATE {dst}.t SET s = 'changed 🎉' WHERE id = 9;
         UPDATE {dst}.t SET b = X'FF' WHERE id = 10;
         UPDATE {dst}.t SET dt = '1999-12-31' WHERE id = 11;
         UPDATE {dst}.t SET tm = '-01:00:00' WHERE id = 12;
         UPDATE {dst}.t SET dtm = '2000-01-01 00:00:00.5' WHERE id = 13;
         UPDATE {dst}.t SET ts = '2001-01-01 00:00:00' WHERE id = 14;
         UPDATE {dst}.t SET j = '{{\"a\": [1, 2], \"k\": 0}}' WHERE id = 15;
         UPDATE {dst}.t SET e = 'a' WHERE id = 16;
         UPDATE {dst}.t SET st = 'y' WHERE id = 17;
         UPDATE {dst}.t SET bt = 0 WHERE id = 18;
         UPDATE {dst}.t SET s = NULL WHERE id = 19;
         UPDATE {src}.t SET s = '' WHERE id = 19;"
    ));
    let (code, report) = check_json(&dir, &["--chunk-size", "7"]);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["method"], "checksum");
    assert_eq!(u["source_rows"], 30);
    assert_eq!(u["target_rows"], 30);
    assert_eq!(u["missing"], 2);
    assert_eq!(u["extra"], 2);
    assert_eq!(u["different"], 15);
    assert_eq!(strings(&u["missing_keys"]), ["3", "4"]);
    assert_eq!(strings(&u["extra_keys"]), ["1000", "1001"]);
    let expected: Vec<(String, Vec<String>)> = [
        ("5", vec!["i"]),
        ("6", vec!["u"]),
        ("7", vec!["d"]),
        ("8", vec!["f"]),
        ("9", vec!["s"]),
        ("10", vec!["b"]),
        ("11", vec!["dt"]),
        ("12", vec!["tm"]),
        ("13", vec!["dtm"]),
        ("14", vec!["ts"]),
        ("15", vec!["j.k"]),
        ("16", vec!["e"]),
        ("17", vec!["st"]),
        ("18", vec!["bt"]),
        ("19", vec!["s"]),
    ]
    .into_iter()
    .map(|(k, f)| (k.to_owned(), f.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(diff_fields(&report), expected);
    // Both values, in the compared form.
    assert_eq!(field(&report, "5", "i"), (Json::from(50), Json::from(-1)));
    assert_eq!(field(&report, "6", "u"), (Json::from(6000), Json::from(7)));
    assert_eq!(field(&report, "7", "d"), ("10.5".into(), "0.001".into()));
    assert_eq!(
        field(&report, "8", "f"),
        (Json::from(2.666666666), Json::from(2.5))
    );
    assert_eq!(
        field(&report, "9", "s"),
        ("name 9 😀".into(), "changed 🎉".into())
    );
    assert_eq!(field(&report, "10", "b"), ("0x000a".into(), "0xff".into()));
    assert_eq!(
        field(&report, "11", "dt"),
        ("2024-01-12".into(), "1999-12-31".into())
    );
    assert_eq!(field(&report, "15", "j.k"), (Json::from(15), Json::from(0)));
    assert_eq!(field(&report, "16", "e"), ("b".into(), "a".into()));
    assert_eq!(field(&report, "17", "st"), ("x,z".into(), "y".into()));
    assert_eq!(field(&report, "18", "bt"), (Json::from(18), Json::from(0)));
    // NULL and the empty string differ.
    assert_eq!(field(&report, "19", "s"), ("".into(), Json::Null));

    // The table form says the same.
    let out = datatrace(&dir, &["check", "job.toml", "--recheck-delay", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert!(t.contains("2 missing, 2 extra, 15 different"), "{t}");
    assert!(t.contains("missing: 3, 4"), "{t}");
    assert!(t.contains("NOT equal"), "{t}");

    // Repair without --delete-extra keeps the extras: still not equal.
    let (code, report) = check_json(&dir, &["--repair"]);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["repaired"]["rewritten"], 17);
    assert_eq!(u["repaired"]["deleted"], 0);
    assert_eq!(u["after_repair"]["missing"], 0);
    assert_eq!(u["after_repair"]["different"], 0);
    assert_eq!(u["after_repair"]["extra"], 2);

    let (code, report) = check_json(&dir, &["--repair", "--delete-extra"]);
    assert_eq!(code, 0, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["repaired"]["deleted"], 2);
    assert_eq!(u["after_repair"]["equal"], true);
    assert_eq!(report["equal"], true);
    assert_eq!(rows(&src), rows(&dst));

    let (code, _) = check_json(&dir, &[]);
    assert_eq!(code, 0);
}

#[test]
fn transformed_copy_is_compared_row_by_row() {
    let dir = workdir("transformed");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(
        &dir,
        &src,
        &dst,
        "[[transforms]]\ntype = \"drop\"\nfields = [\"b\"]\n\
         [[transforms]]\ntype = \"rename\"\nfields = { s = \"name\" }\n",
    );
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["method"], "rows");
    assert_eq!(report["units"][0]["source_rows"], 30);
    assert_eq!(report["units"][0]["target_rows"], 30);

    mariadb().exec(&format!(
        "DELETE FROM {dst}.t WHERE id = 30;
         INSERT INTO {dst}.t (id, i) VALUES (-5, 1);
         UPDATE {dst}.t SET name = 'x', d = 1 WHERE id = 2;"
    ));
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(strings(&u["missing_keys"]), ["30"]);
    assert_eq!(strings(&u["extra_keys"]), ["-5"]);
    assert_eq!(
        diff_fields(&report),
        [("2".to_owned(), vec!["d".to_owned(), "name".to_owned()])]
    );
    assert_eq!(
        field(&report, "2", "name"),
        ("name 2 😀".into(), "x".into())
    );

    let (code, report) = check_json(&dir, &["--delete-extra"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["repaired"]["rewritten"], 2);
    assert_eq!(report["units"][0]["repaired"]["deleted"], 1);
}

/// A target row that looks extra to the comparison although its key is in the source: the
/// job's filter drops the source row now (it changed after it was copied). `--delete-extra`
/// reads the source again by key before deleting, and keeps it; a truly extra row goes.
#[test]
fn delete_extra_keeps_a_row_whose_key_is_in_the_source() {
    let dir = workdir("filtered");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(
        &dir,
        &src,
        &dst,
        "[[transforms]]\ntype = \"filter\"\nwhere = { field = \"i\", op = \"<\", value = 200 }\n",
    );
    assert_eq!(
        mariadb()
            .exec(&format!("SELECT COUNT(*) FROM {dst}.t"))
            .trim(),
        "19"
    );
    mariadb().exec(&format!(
        "UPDATE {src}.t SET i = 1000 WHERE id = 5;
         INSERT INTO {dst}.t (id, i) VALUES (-5, 1);"
    ));
    let (code, report) = check_json(&dir, &["--repair", "--delete-extra"]);
    let u = &report["units"][0];
    assert_eq!(strings(&u["extra_keys"]), ["-5", "5"], "{report}");
    assert_eq!(u["repaired"]["deleted"], 1, "{report}");
    assert_eq!(u["repaired"]["kept"], 1, "{report}");
    assert_eq!(u["after_repair"]["extra"], 1, "{report}");
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        mariadb()
            .exec(&format!("SELECT id, i FROM {dst}.t WHERE id IN (-5, 5)"))
            .trim(),
        "5\t50",
        "the row whose key is in the source must be kept, the extra one deleted"
    );
}

#[test]
fn bad_jobs_exit_2() {
    let dir = workdir("bad");
    std::fs::write(
        dir.join("job.toml"),
        "name = \"x\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"discard\"\n",
    )
    .unwrap();
    let out = datatrace(&dir, &["check", "job.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("generator"),
        "{}",
        text(&out.stderr)
    );
    let src = mariadb().create_database("chksrc");
    all_types_table(&src);
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"x\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\n",
            mariadb().url_for(&src),
            mariadb().url_for("nodb_here")
        ),
    )
    .unwrap();
    let out = datatrace(&dir, &["check", "job.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn differences_that_settle_during_the_recheck_delay_are_not_reported() {
    let dir = workdir("live");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(&dir, &src, &dst, "");
    mariadb().exec(&format!(
        "UPDATE {dst}.t SET i = -1 WHERE id IN (5, 7); DELETE FROM {dst}.t WHERE id = 6;"
    ));
    let child = Command::new(BIN)
        .args([
            "-v",
            "check",
            "job.toml",
            "--format",
            "json",
            "--recheck-delay",
            "8",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first pass has found the differences (the check says so before it waits),
    // "change data capture" catches up on rows 5 and 6 (row 7 stays wrong).
    let mut child = child;
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "check ended before its recheck:\n{seen}");
        seen.push_str(&line);
        if line.contains("checking them again in") {
            break;
        }
    }
    mariadb().exec(&format!(
        "UPDATE {dst}.t SET i = 50 WHERE id = 5; INSERT INTO {dst}.t SELECT * FROM {src}.t WHERE id = 6;"
    ));
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    });
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap();
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    let u = &report["units"][0];
    assert_eq!(u["settled"], 2, "{u}");
    assert_eq!(u["missing"], 0, "{u}");
    assert_eq!(u["different"], 1, "{u}");
    assert_eq!(u["diffs"][0]["key"], "7");
}

#[test]
fn different_column_types_are_compared_by_value() {
    let dir = workdir("retyped");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(&dir, &src, &dst, "");
    // The target's types differ from the source's: checksums cannot be compared, values can.
    mariadb().exec(&format!(
        "ALTER TABLE {dst}.t MODIFY i BIGINT, MODIFY d DECIMAL(14,4);"
    ));
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["method"], "rows");
    mariadb().exec(&format!("UPDATE {dst}.t SET d = 1.2345 WHERE id = 4;"));
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(field(&report, "4", "d"), ("6".into(), "1.2345".into()));

    // --unit picks units; an unknown one is an error naming the job's units.
    let out = datatrace(&dir, &["check", "job.toml", "--unit", "nope.t"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("nope.t") && err.contains(&format!("{src}.t")),
        "{err}"
    );
    let unit = format!("{src}.t");
    let (code, report) = check_json(&dir, &["--unit", &unit]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["units"].as_array().unwrap().len(), 1);
}

#[test]
fn a_missing_target_table_is_named_and_repair_recreates_it() {
    let dir = workdir("dropped");
    let src = mariadb().create_database("chksrc");
    let dst = mariadb().create_database("chkdst");
    all_types_table(&src);
    job(&dir, &src, &dst, "");
    mariadb().exec(&format!("DROP TABLE {dst}.t;"));
    let out = datatrace(&dir, &["check", "job.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{dst}.t")), "{err}");
    let (code, report) = check_json(&dir, &["--repair"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["missing"], 30);
    assert_eq!(report["units"][0]["repaired"]["rewritten"], 30);
    assert_eq!(rows(&src), rows(&dst));
}

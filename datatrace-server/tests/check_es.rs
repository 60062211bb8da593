//! `datatrace check` with Elasticsearch targets (osmem-server): MySQL -> ES and ES -> ES
//! copies made with `datatrace run`, corrupted on purpose (documents deleted, extra
//! documents, a changed field, a changed nested field), reported exactly, then repaired.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datatrace_testkit::{engine, mariadb, unique_name};
use serde_json::{json, Value as Json};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-check-es-{}-{name}", std::process::id()));
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

fn run(dir: &Path, job: &str, index: &str) {
    std::fs::write(dir.join("job.toml"), job).unwrap();
    let out = datatrace(dir, &["run", "job.toml", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out.stderr));
    engine().request("POST", &format!("/{index}/_refresh"), None);
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

fn get_doc(index: &str, id: &str) -> Json {
    engine()
        .request("GET", &format!("/{index}/_doc/{id}"), None)
        .json()["_source"]
        .clone()
}

fn put_doc(index: &str, id: &str, doc: &Json) {
    engine().request(
        "PUT",
        &format!("/{index}/_doc/{id}?refresh=true"),
        Some(&doc.to_string()),
    );
}

fn delete_doc(index: &str, id: &str) {
    engine().request("DELETE", &format!("/{index}/_doc/{id}?refresh=true"), None);
}

/// Reports the corruptions of `index` (doc 3 deleted, 999 added, 5's `field` and 6's
/// nested field changed) exactly, then repairs them.
fn corrupt_check_repair(dir: &Path, index: &str, field: &str, nested: &str) {
    let (code, report) = check_json(dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["method"], "rows");
    assert_eq!(report["units"][0]["source_rows"], 20);
    assert_eq!(report["units"][0]["target_rows"], 20);

    delete_doc(index, "3");
    put_doc(index, "999", &json!({field: "stray"}));
    let mut five = get_doc(index, "5");
    five[field] = json!("changed 🎉");
    put_doc(index, "5", &five);
    let mut six = get_doc(index, "6");
    six["o"]["a"]["b"][2]["c"] = json!("y");
    put_doc(index, "6", &six);

    let (code, report) = check_json(dir, &[]);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["missing"], 1, "{u}");
    assert_eq!(u["extra"], 1, "{u}");
    assert_eq!(u["different"], 2, "{u}");
    assert_eq!(strings(&u["missing_keys"]), ["3"]);
    assert_eq!(strings(&u["extra_keys"]), ["999"]);
    assert_eq!(
        diff_fields(&report),
        [
            ("5".to_owned(), vec![field.to_owned()]),
            ("6".to_owned(), vec![nested.to_owned()]),
        ]
    );
    let nested_diff = &u["diffs"][1]["fields"][0];
    assert_eq!(nested_diff["source"], "x");
    assert_eq!(nested_diff["target"], "y");
    assert_eq!(u["diffs"][0]["fields"][0]["target"], "changed 🎉");

    let out = datatrace(dir, &["check", "job.toml", "--recheck-delay", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(&format!("{nested}: source \"x\" / target \"y\"")),
        "{}",
        text(&out.stdout)
    );

    let (code, report) = check_json(dir, &["--repair", "--delete-extra"]);
    assert_eq!(code, 0, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["repaired"]["rewritten"], 3, "{u}");
    assert_eq!(u["repaired"]["deleted"], 1, "{u}");
    assert_eq!(u["after_repair"]["equal"], true);
    assert_eq!(get_doc(index, "6")["o"]["a"]["b"][2]["c"], "x");
    let (code, _) = check_json(dir, &[]);
    assert_eq!(code, 0);
}

#[test]
fn mysql_to_es_copy_is_checked_and_repaired() {
    let dir = workdir("m2e");
    let db = mariadb().create_database("chkes");
    let table = unique_name("chk");
    mariadb().exec(&format!(
        "CREATE TABLE {db}.{table} (id INT PRIMARY KEY, s VARCHAR(64), d DECIMAL(10,2), \
           dtm DATETIME(6), o JSON);
         INSERT INTO {db}.{table} SELECT seq, CONCAT('name ', seq), seq * 1.25, \
           TIMESTAMP '2024-01-01 00:00:00.000001' + INTERVAL seq MINUTE, \
           JSON_OBJECT('a', JSON_OBJECT('b', JSON_ARRAY(JSON_OBJECT('c', 'v'), \
           JSON_OBJECT('c', 'w'), JSON_OBJECT('c', 'x')))) \
           FROM {db}.seq_1_to_20;"
    ));
    let job = format!(
        "name = \"chkes\"\n\
         [source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"{table}\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\n\
         [checkpoints]\ndir = \"cp\"\n",
        mariadb().url_for(&db),
        engine().url()
    );
    run(&dir, &job, &table);
    corrupt_check_repair(&dir, &table, "s", "o.a.b[2].c");
}

#[test]
fn es_to_es_copy_with_nested_fields_is_checked_and_repaired() {
    let dir = workdir("e2e");
    let src = unique_name("chksrc");
    let mut bulk = String::new();
    for i in 1..=20 {
        bulk.push_str(&format!("{{\"index\":{{\"_id\":\"{i}\"}}}}\n"));
        bulk.push_str(
            &json!({"name": format!("doc {i}"), "n": i, "o": {"a": {"b": [{"c": "v"}, {"c": "w"}, {"c": "x"}]}}})
                .to_string(),
        );
        bulk.push('\n');
    }
    let r = engine().request("POST", &format!("/{src}/_bulk?refresh=true"), Some(&bulk));
    assert!(r.status < 300, "bulk: {}", r.status);
    assert_eq!(r.json()["errors"], false, "bulk: {}", r.json());
    let job = format!(
        "name = \"chkee\"\n\
         [source]\ntype = \"elasticsearch\"\nurl = \"{0}\"\nindices = [\"{src}\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{0}\"\nindex = \"{{table}}-copy\"\n\
         [checkpoints]\ndir = \"cp\"\n",
        engine().url()
    );
    let index = format!("{src}-copy");
    run(&dir, &job, &index);
    corrupt_check_repair(&dir, &index, "name", "o.a.b[2].c");
}

/// `BIGINT UNSIGNED` to the test run's engine (`cargo test unsigned`): where the cluster has
/// `unsigned_long` the copy is exact with the defaults; where it has not (the testkit's
/// Elasticsearch 7.17), `validate` and `run` refuse before anything is written, naming the
/// table, the column and the setting, and with `mapping.unsigned = "keyword"` every value,
/// u64::MAX included, is copied exactly and `check` finds the copy equal.
#[test]
fn unsigned_64_bit_columns_are_copied_exactly_or_refused_up_front() {
    let dir = workdir("unsigned");
    let db = mariadb().create_database("chku");
    let table = unique_name("ubig");
    mariadb().exec(&format!(
        "CREATE TABLE {db}.{table} (id BIGINT UNSIGNED PRIMARY KEY, n INT UNSIGNED, \
           b BIT(64), s VARCHAR(16));
         INSERT INTO {db}.{table} VALUES (18446744073709551615, 4294967295, \
           b'1111111111111111111111111111111111111111111111111111111111111111', 'max'), \
           (9223372036854775808, 0, b'1000000000000000000000000000000000000000000000000000000000000000', 'i64+1'), \
           (9223372036854775807, 1, 0, 'i64'), (0, NULL, NULL, 'zero');"
    ));
    let job = |mapping: &str| {
        format!(
            "name = \"chku\"\n\
             [source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"{table}\"]\n\
             [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\n{mapping}\
             [checkpoints]\ndir = \"cp\"\n",
            mariadb().url_for(&db),
            engine().url()
        )
    };
    let has_unsigned_long = engine().flavor() != datatrace_testkit::EngineFlavor::Elasticsearch;
    if !has_unsigned_long {
        std::fs::write(dir.join("job.toml"), job("")).unwrap();
        for command in ["validate", "run"] {
            let out = datatrace(&dir, &[command, "job.toml"]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: {err}");
            for part in [
                "job.toml".to_string(),
                "target.mapping.unsigned".to_string(),
                format!("{db}.{table}: column id"),
                "bigint(20) unsigned".to_string(),
                "mapping.unsigned = \\\"keyword\\\"".to_string(),
            ] {
                assert!(
                    err.contains(&part) || err.contains(&part.replace("\\\"", "\"")),
                    "{command}: {part:?} not in {err}"
                );
            }
            let head = engine().request("HEAD", &format!("/{table}"), None);
            assert_eq!(head.status, 404, "{command} created the index");
        }
        run(
            &dir,
            &job("[target.mapping]\nunsigned = \"keyword\"\n"),
            &table,
        );
    } else {
        run(&dir, &job(""), &table);
    }
    let big = get_doc(&table, "18446744073709551615");
    assert_eq!(big["id"], json!(u64::MAX), "{big}");
    assert_eq!(big["b"], json!(u64::MAX), "{big}");
    assert_eq!(
        get_doc(&table, "9223372036854775808")["b"],
        json!(1u64 << 63)
    );
    let (code, report) = check_json(&dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["units"][0]["source_rows"], 4);
    assert_eq!(report["units"][0]["target_rows"], 4);
}

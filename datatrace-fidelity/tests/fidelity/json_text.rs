//! JSON text is copied byte for byte between MariaDB servers, where JSON is text: spacing,
//! key order, number spelling and escapes as written. Before, every row was rewritten
//! (`{"k": 1, "t": "v"}` became `{"k":1,"t":"v"}`, 1.5e300 became 1.5e+300).

use std::time::Duration;

use crate::common::*;

const DOCS: &[&str] = &[
    r#"{"k": 1, "t": "v"}"#,
    r#"1.5e300"#,
    r#"{"z": [1, 2.50, "x", null, true], "a": {"b": -0.0}}"#,
    r#"  [ 18446744073709551616, -9223372036854775809, 1e-400 ]  "#,
    r#""caf\u00e9 \ud83c\udf89 \"q\"""#,
    r#"{"dup": 1, "dup": 2}"#,
    r#"{}"#,
];

fn insert_all(db: &str, start: usize) {
    let rows: Vec<String> = DOCS
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "({}, '{}')",
                start + i,
                d.replace('\\', "\\\\").replace('\'', "''")
            )
        })
        .collect();
    exec(db, &format!("INSERT INTO docs VALUES {};", rows.join(",")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_json_text_is_copied_byte_for_byte() {
    let db = database(
        "fid_json",
        "CREATE TABLE docs (id INT PRIMARY KEY, j JSON);",
    );
    insert_all(&db, 1);
    let dst = database("fid_json_dst", "");
    let dir = workdir("json");
    let source = mysql_source(
        &db,
        "\"docs\"",
        &format!("mode = \"snapshot+cdc\"\n{}", cdc_line()),
    );
    let j = job(
        &dir,
        &job_text("json", &source, &mysql_target(&dst, ""), STREAM_SETTINGS),
    )
    .unwrap();
    let mut s = Stream::start(&j).await.unwrap();
    s.caught_up(Duration::from_secs(60)).await.unwrap();
    // The stream's path too: inserts and updates of JSON text.
    insert_all(&db, 100);
    exec(&db, r#"UPDATE docs SET j = '{"k" :  2}' WHERE id = 1;"#);
    s.caught_up(Duration::from_secs(60)).await.unwrap();
    s.stop().await.unwrap();
    let (a, b) = (
        exact::read(&db, "docs").await,
        exact::read(&dst, "docs").await,
    );
    assert_eq!(a.rows.len(), 2 * DOCS.len());
    for (x, y) in a.rows.iter().zip(&b.rows) {
        assert_eq!(x, y, "JSON text differs");
    }
}

//! Updates that change the primary key: the old key's row or document is deleted and the
//! new one written, in order, under external versioning into Elasticsearch and in one
//! transaction into MySQL, also across the snapshot -> stream handoff. Before, a change
//! stream into Elasticsearch left the document under the old key in place forever.

use std::time::Duration;

use crate::common::*;

const TABLE: &str = "CREATE TABLE moves (id INT PRIMARY KEY, name VARCHAR(20), n INT);";

fn seed(db: &str, n: u32) {
    let rows: Vec<String> = (1..=n).map(|i| format!("({i}, 'row {i}', {i})")).collect();
    exec(db, &format!("INSERT INTO moves VALUES {};", rows.join(",")));
}

/// Key moves of every shape: one row, several rows of one statement whose new keys are
/// old keys of rows moved in the same statement (one binlog rows event), a move back, a
/// move onto a deleted key, a move then a delete.
fn moves(db: &str) {
    exec(
        db,
        "UPDATE moves SET id = 100000 WHERE id = 1;
         DELETE FROM moves WHERE id = 26;
         UPDATE moves SET id = id + 1 WHERE id BETWEEN 20 AND 25 ORDER BY id DESC;
         UPDATE moves SET id = 100001, name = 'moved twice' WHERE id = 100000;
         UPDATE moves SET id = 1 WHERE id = 100001;
         DELETE FROM moves WHERE id = 40;
         UPDATE moves SET id = 40 WHERE id = 41;
         UPDATE moves SET id = 200000 WHERE id = 50; DELETE FROM moves WHERE id = 200000;
         BEGIN; UPDATE moves SET id = 300000 WHERE id = 60; UPDATE moves SET id = 60, n = -1 WHERE id = 300000; COMMIT;",
    );
}

fn expected(db: &str) -> Vec<(String, serde_json::Value)> {
    exec(db, "SELECT id, name, n FROM moves ORDER BY id")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                serde_json::json!({"id": f[0].parse::<i64>().unwrap(), "name": f[1], "n": f[2].parse::<i64>().unwrap()}),
            )
        })
        .collect()
}

fn assert_index_matches(db: &str, index: &str) {
    let want = expected(db);
    let found = docs::read(index);
    let ids: Vec<&String> = found.keys().collect();
    let mut want_ids: Vec<&String> = want.iter().map(|(k, _)| k).collect();
    want_ids.sort();
    assert_eq!(ids, want_ids, "document ids");
    for (id, doc) in &want {
        assert_eq!(&found[id], doc, "document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_key_changing_updates_move_documents_in_a_stream() {
    let db = database("fid_kc_es", TABLE);
    seed(&db, 100);
    let dir = workdir("kc-es");
    let (target, prefix) = es_target("");
    let source = mysql_source(&db, "\"moves\"", &format!("mode = \"cdc\"\n{}", cdc_line()));
    let j = job(&dir, &job_text("kc", &source, &target, STREAM_SETTINGS)).unwrap();
    let mut s = Stream::start(&j).await.unwrap();
    // The stream copies the changes only: write every row once so the index has them.
    exec(&db, "UPDATE moves SET n = n + 0, name = CONCAT(name, '');");
    exec(&db, "UPDATE moves SET n = n + 1;");
    moves(&db);
    s.caught_up(Duration::from_secs(60)).await.unwrap();
    let report = s.stop().await.unwrap();
    assert!(!report.has_failures(), "{report:#?}");
    assert_index_matches(&db, &format!("{prefix}-moves"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_key_changing_updates_across_the_snapshot_handoff() {
    log();
    for target_kind in ["es", "mysql"] {
        let db = database("fid_kc_h", TABLE);
        seed(&db, 3000);
        let dir = workdir("kc-h");
        let (target, prefix, dst) = match target_kind {
            "es" => {
                let (t, p) = es_target("");
                (t, p, String::new())
            }
            _ => {
                let dst = database("fid_kc_h_dst", "");
                (mysql_target(&dst, ""), String::new(), dst)
            }
        };
        let source = mysql_source(
            &db,
            "\"moves\"",
            &format!(
                "mode = \"snapshot+cdc\"\nchunk_rows = 500\npage_rows = 100\n{}",
                cdc_line()
            ),
        );
        let settings = format!("{STREAM_SETTINGS}batch_size = 50\nread_parallelism = 2\n");
        let j = job(&dir, &job_text("kch", &source, &target, &settings)).unwrap();
        let mut s = Stream::start(&j).await.unwrap();
        // Moves while the snapshot reads, and after.
        for round in 0..5 {
            exec(
                &db,
                &format!(
                    "UPDATE moves SET id = id + 10000 WHERE id % 97 = {round} AND id < 10000 ORDER BY id DESC;
                     DELETE FROM moves WHERE id = {a} - 1;
                     UPDATE moves SET id = id - 1 WHERE id BETWEEN {a} AND {b} ORDER BY id;",
                    a = 500 + round * 100,
                    b = 520 + round * 100
                ),
            );
        }
        moves(&db);
        s.caught_up(Duration::from_secs(120)).await.unwrap();
        let report = s.stop().await.unwrap();
        assert!(!report.has_failures(), "{report:#?}");
        match target_kind {
            "es" => assert_index_matches(&db, &format!("{prefix}-moves")),
            _ => {
                let (a, b) = (
                    exact::read(&db, "moves").await,
                    exact::read(&dst, "moves").await,
                );
                assert_eq!(a.rows.len(), b.rows.len());
                assert!(a.rows == b.rows, "target differs from source");
            }
        }
    }
}

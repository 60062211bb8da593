//! Tables without a primary key. Before: one DELETE of such a table failed the change
//! stream of every table, an UPDATE became an INSERT, `--restart` of a snapshot duplicated
//! its rows, and into Elasticsearch with external versions the cluster answered a bare HTTP
//! 400 "id must be provided" naming no table.

use std::time::Duration;

use crate::common::*;

const TABLES: &str = "CREATE TABLE bag (a INT, b VARCHAR(10), c DOUBLE);
     CREATE TABLE keyed (id INT PRIMARY KEY, v VARCHAR(10));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_keyless_changes_apply_by_full_row_and_never_stop_other_tables() {
    let db = database("fid_kl", TABLES);
    let dst = database("fid_kl_dst", "");
    exec(
        &db,
        "INSERT INTO bag VALUES (1,'x',0.1), (1,'x',0.1), (1,'x',0.1), (2,NULL,NULL), (3,'y',1e300);
         INSERT INTO keyed VALUES (1,'one');",
    );
    let dir = workdir("kl");
    let source = mysql_source(
        &db,
        "\"bag\", \"keyed\"",
        &format!("mode = \"snapshot+cdc\"\n{}", cdc_line()),
    );
    let j = job(
        &dir,
        &job_text("kl", &source, &mysql_target(&dst, ""), STREAM_SETTINGS),
    )
    .unwrap();
    let mut s = Stream::start(&j).await.unwrap();
    s.caught_up(Duration::from_secs(60)).await.unwrap();
    exec(
        &db,
        "DELETE FROM bag WHERE a = 1 LIMIT 1;
         UPDATE bag SET b = 'z' WHERE a = 1 LIMIT 1;
         UPDATE bag SET c = 2 WHERE a = 2;
         DELETE FROM bag WHERE a = 3;
         INSERT INTO bag VALUES (2,NULL,2);
         INSERT INTO keyed VALUES (2,'two');
         UPDATE keyed SET v = 'uno' WHERE id = 1;",
    );
    s.caught_up(Duration::from_secs(60)).await.unwrap();
    let report = s.stop().await.unwrap();
    assert!(!report.has_failures(), "{report:#?}");
    for t in ["bag", "keyed"] {
        let (a, b) = (exact::read(&db, t).await, exact::read(&dst, t).await);
        assert_eq!(a.rows, b.rows, "table {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_keyless_restart_never_duplicates() {
    let db = database("fid_klr", TABLES);
    let dst = database("fid_klr_dst", "");
    exec(
        &db,
        "INSERT INTO bag VALUES (1,'x',0.1), (1,'x',0.1), (2,'y',NULL);",
    );
    let dir = workdir("klr");
    let j = job(
        &dir,
        &job_text(
            "klr",
            &mysql_source(&db, "\"bag\"", ""),
            &mysql_target(&dst, ""),
            "",
        ),
    )
    .unwrap();
    run_ok(&j).await;
    let restarted = run(&j, true).await.unwrap();
    assert!(restarted.is_complete(), "{restarted:#?}");
    let (a, b) = (
        exact::read(&db, "bag").await,
        exact::read(&dst, "bag").await,
    );
    assert_eq!(a.rows, b.rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_keyless_tables_into_elasticsearch_need_a_key() {
    let db = database("fid_kles", TABLES);
    exec(
        &db,
        "INSERT INTO bag VALUES (1,'x',0.1), (1,'x',0.1), (2,'y',NULL);",
    );
    let dir = workdir("kles");
    let (target, prefix) = es_target("version = \"position\"");
    let source = mysql_source(
        &db,
        "\"bag\"",
        &format!("mode = \"snapshot+cdc\"\n{}", cdc_line()),
    );
    let j = job(&dir, &job_text("kles", &source, &target, "")).unwrap();
    let err = run(&j, false).await.unwrap_err();
    assert!(err.contains(&format!("{db}.bag")), "{err}");
    assert!(err.contains("key"), "{err}");
    // With a key naming columns that identify a row, the copy is exact and idempotent.
    exec(
        &db,
        "DELETE FROM bag WHERE a = 1 LIMIT 1; ALTER TABLE bag MODIFY a INT NOT NULL;",
    );
    let source = mysql_source(
        &db,
        "\"bag\"",
        &format!("key = {{ bag = [\"a\"] }}\n{}", ""),
    );
    let (target, prefix2) = es_target("");
    let _ = prefix;
    let j = job(&dir, &job_text("kles2", &source, &target, "")).unwrap();
    run_ok(&j).await;
    run(&j, true).await.unwrap();
    let found = docs::read(&format!("{prefix2}-bag"));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found["1"]["b"], "x");
}

/// What `validate` prints as `warning:` lines (and `run` logs at start).
async fn warnings(j: &datatrace_server::job_file::JobFile) -> Vec<String> {
    j.source.warnings(j.ctx()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_keyless_stream_into_mysql_is_warned_at_validate_and_run() {
    let db = database("fid_klw", TABLES);
    let dst = database("fid_klw_dst", "");
    let dir = workdir("klw");
    // A stream of a keyless table into MySQL: after a crash, replayed changes found by their
    // values may apply twice. Warned, naming the table and the `key` setting.
    for mode in ["cdc", "snapshot+cdc"] {
        let source = mysql_source(
            &db,
            "\"bag\", \"keyed\"",
            &format!("mode = \"{mode}\"\n{}", cdc_line()),
        );
        let j = job(&dir, &job_text("klw", &source, &mysql_target(&dst, ""), "")).unwrap();
        let w = warnings(&j).await;
        assert_eq!(w.len(), 1, "{mode}: {w:#?}");
        assert!(w[0].contains(&format!("{db}.bag")), "{}", w[0]);
        assert!(
            w[0].contains("`key`") && w[0].contains("key = {"),
            "{}",
            w[0]
        );
    }
    // The same table with a `key` setting: nothing to warn about.
    exec(&db, "ALTER TABLE bag MODIFY a INT NOT NULL;");
    let source = mysql_source(
        &db,
        "\"bag\", \"keyed\"",
        &format!("mode = \"cdc\"\nkey = {{ bag = [\"a\"] }}\n{}", cdc_line()),
    );
    let j = job(
        &dir,
        &job_text("klw2", &source, &mysql_target(&dst, ""), ""),
    )
    .unwrap();
    assert_eq!(warnings(&j).await, Vec::<String>::new());
    // A copy (no stream): restarts empty the target first, nothing is replayed.
    let source = mysql_source(&db, "\"bag\", \"keyed\"", "");
    let j = job(
        &dir,
        &job_text("klw3", &source, &mysql_target(&dst, ""), ""),
    )
    .unwrap();
    assert_eq!(warnings(&j).await, Vec::<String>::new());
}

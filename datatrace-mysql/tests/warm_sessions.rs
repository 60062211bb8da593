//! A sink session that ended its batch cleanly goes back to the pool without the driver's
//! reset (`COM_RESET_CONNECTION` and the setup statements after it, four commands per batch
//! for the target server), and what it writes next is as exact as on a new session.
//! Counted in the general log of a dedicated target server (the source is another server).

use std::sync::Arc;

use datatrace_core::{ErrorPolicy, Pipeline, PipelineConfig, RunStatus};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace_testkit::{mariadb, MariaDb};

async fn connect(url: String) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .expect("connect")
}

/// Copies `src.t` of the shared server into `target`'s `dst.t` in batches of 10 with one
/// writer; returns the pipeline's written and rejected counts.
async fn copy(src: &str, target: &MariaDb, opts: SinkOptions) -> (u64, u64) {
    let conn = connect(mariadb().url_for(src)).await;
    let info = table_info(&conn, src, "t").await.expect("table");
    let source = Arc::new(MySqlSource::new(conn, info, SourceOptions::default()).unwrap());
    let sink = Arc::new(MySqlSink::new(connect(target.url_for("dst")).await, opts).unwrap());
    let report = Pipeline::new("warm", source, sink)
        .config(PipelineConfig {
            batch_size: 10,
            sink_concurrency: 1,
            error_policy: ErrorPolicy::Skip,
            ..Default::default()
        })
        .run()
        .await
        .expect("copy");
    assert_eq!(report.status, RunStatus::Completed);
    (report.written, report.rejected)
}

/// The setup statement every new or reset session runs, counted in the general log since the
/// last call.
fn setups(m: &MariaDb) -> u64 {
    m.take_statements("SET NAMES utf8mb4")
}

fn checksum(m: &MariaDb, table: &str) -> String {
    m.exec(&format!("CHECKSUM TABLE {table}"))
        .split('\t')
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_sessions_skip_the_reset_and_others_keep_it() {
    let src = mariadb().create_database("warm_src");
    mariadb().exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_500;"
    ));
    let target = MariaDb::dedicated();
    target.exec(
        "CREATE DATABASE dst; CREATE TABLE dst.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
    );
    target.log_statements();
    setups(&target);

    // 50 batches through the bulk path (with session settings set and restored around each),
    // then 50 through the INSERT path: a handful of sessions set up, not one per batch.
    for opts in [
        SinkOptions {
            bulk_session: true,
            ..Default::default()
        },
        SinkOptions {
            load_data: false,
            ..Default::default()
        },
    ] {
        target.exec("TRUNCATE TABLE dst.t");
        setups(&target);
        assert_eq!(copy(&src, &target, opts).await, (500, 0));
        let n = setups(&target);
        assert!(n < 10, "{n} sessions set up for 50 batches");
        assert_eq!(
            checksum(&target, "dst.t"),
            checksum(mariadb(), &format!("`{src}`.t"))
        );
    }
    // A batch with a row the target refuses: its transaction fails and is rolled back, and
    // its rows are written one by one (the bad one rejected). The sessions go on being
    // reused where their last statement left them clean, and every other row lands.
    target.exec("TRUNCATE TABLE dst.t; ALTER TABLE dst.t MODIFY v VARCHAR(3) NOT NULL");
    mariadb().exec(&format!(
        "UPDATE `{src}`.t SET v = 'ok'; UPDATE `{src}`.t SET v = 'toolong' WHERE id = 5"
    ));
    let (written, rejected) = copy(
        &src,
        &target,
        SinkOptions {
            load_data: false,
            ..Default::default()
        },
    )
    .await;
    assert_eq!((written, rejected), (499, 1));
    let landed = target.exec("SELECT COUNT(*), SUM(id), MIN(v), MAX(v) FROM dst.t");
    assert_eq!(landed.trim(), format!("499\t{}\tok\tok", 500 * 501 / 2 - 5));
    assert_eq!(
        target
            .exec("SELECT COUNT(*) FROM dst.t WHERE id = 5")
            .trim(),
        "0"
    );
    mariadb().exec(&format!("DROP DATABASE `{src}`"));
}

/// `check`'s reads (range checksums, key splits, sub-range checksums) keep their session too:
/// one set-up session for 50 ranges and 10 splits, not one per call, with results that add up
/// to the whole table's, and a failed statement does not spoil the session for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_reuse_their_session() {
    use datatrace_core::Value;
    use datatrace_mysql::checksum::range_checksum;
    use datatrace_mysql::narrow::{split_checksums, split_keys};

    let db = MariaDb::dedicated();
    db.exec(
        "CREATE DATABASE d; USE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         INSERT INTO d.t SELECT seq, CONCAT('v', seq) FROM seq_1_to_500",
    );
    db.log_statements();
    let conn = connect(db.url_for("d")).await;
    let info = table_info(&conn, "d", "t").await.expect("table");
    let whole = range_checksum(&conn, &info, None, None, None)
        .await
        .unwrap();
    assert_eq!(whole.rows, 500);
    setups(&db);

    let (mut rows, mut hash) = (0, 0);
    for i in 0..50 {
        let lo = [Value::Int(i * 10)];
        let hi = [Value::Int(i * 10 + 10)];
        let r = range_checksum(&conn, &info, Some(&lo), Some(&hi), None)
            .await
            .unwrap();
        rows += r.rows;
        hash ^= r.hash;
    }
    assert_eq!((rows, hash), (whole.rows, whole.hash));
    for _ in 0..10 {
        let bounds = split_keys(&conn, &info, None, None, 50).await.unwrap();
        assert_eq!(bounds.len(), 10, "{bounds:?}");
        let parts = split_checksums(&conn, &info, None, None, &bounds)
            .await
            .unwrap();
        let rows: u64 = parts.iter().map(|p| p.rows).sum();
        let hash = parts.iter().fold(0, |h, p| h ^ p.hash);
        assert_eq!((rows, hash), (whole.rows, whole.hash));
    }
    let n = setups(&db);
    assert!(n < 3, "{n} sessions set up for 70 calls");

    // A statement the server refuses, then the next call on the pool's session.
    let bad = range_checksum(&conn, &info, None, None, Some("no_such_column = 1")).await;
    assert!(bad.is_err());
    let again = range_checksum(&conn, &info, None, None, None)
        .await
        .unwrap();
    assert_eq!((again.rows, again.hash), (whole.rows, whole.hash));
}

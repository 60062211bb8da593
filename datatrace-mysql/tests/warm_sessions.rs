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
    let n = m
        .exec("SELECT COUNT(*) FROM mysql.general_log WHERE argument = 'SET NAMES utf8mb4'")
        .trim()
        .parse()
        .unwrap();
    m.exec("TRUNCATE TABLE mysql.general_log");
    n
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
        "CREATE DATABASE dst; CREATE TABLE dst.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1",
    );
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

//! The binlog retention guard (`cargo test binlog_retention`): a stream held behind in an
//! older binlog file reports the time left before the server may purge it, in
//! `Source::retention_secs` and in the pipeline's progress events; a stream in the file being
//! written reports nothing at risk. Own server: the expiry setting is global.

use std::sync::Arc;
use std::time::Duration;

use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    progress_channel, MemoryCheckpointStore, Pipeline, PipelineConfig, ProgressKind, RateLimit,
    Source,
};
use datatrace_mysql::binlog::retention::retention;
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace_mysql::{ConnectionConfig, MySqlConnection};
use datatrace_testkit::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_retention_time_left_is_reported_and_published() {
    let db = MariaDb::dedicated();
    db.exec(
        "SET GLOBAL binlog_expire_logs_seconds = 7200;
         CREATE DATABASE s; USE s; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));",
    );
    let conn = MySqlConnection::connect(&ConnectionConfig::new(db.url_for("s")))
        .await
        .unwrap();
    let start = current_position(&conn).await.unwrap();
    db.exec("USE s; INSERT INTO t SELECT seq, 'x' FROM seq_1_to_2000; FLUSH BINARY LOGS;");

    // The file being written is never purged.
    let now = current_position(&conn).await.unwrap();
    let r = retention(&conn, &now, None).await.unwrap();
    assert_eq!(r.time_left_secs, None, "{r}");
    // An older file: at most the expiry after its last commit.
    let hour_ago = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3600)
        * 1000;
    let r = retention(&conn, &start, Some(hour_ago)).await.unwrap();
    let left = r.time_left_secs.expect("an older file is at risk");
    assert!((3590..=3600).contains(&left), "{r}");
    assert!(r.bytes_behind > 0 && r.to_string().contains("1 h"), "{r}");
    // MariaDB 10.11 has no max_binlog_total_size: the time left is by age alone.
    assert_eq!((r.size_limit, r.size_time_left_secs), (0, None), "{r}");
    assert!(!r.by_size(), "{r}");

    // A stream held behind (the target takes one record a second) publishes it.
    let source = BinlogSource::new(
        conn,
        CdcOptions {
            server_id: 7501,
            start: StartAt::Position {
                file: start.file.clone(),
                pos: start.pos,
            },
            heartbeat_secs: 1,
            retention_check_secs: 1,
            ..CdcOptions::tables(["s.*"])
        },
    )
    .unwrap();
    let source = Arc::new(source);
    let (tx, mut rx) = progress_channel(256);
    let pipeline = Pipeline::new("binlog", source.clone(), Arc::new(CollectingSink::new()))
        .config(PipelineConfig {
            batch_size: 10,
            rate_limit: RateLimit {
                records_per_sec: Some(1.0),
                bytes_per_sec: None,
            },
            progress_interval: Duration::from_millis(200),
            ..Default::default()
        })
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .progress(tx);
    let run = tokio::spawn(pipeline.run());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let published = loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a progress event with the retention")
            .unwrap();
        if let ProgressKind::Progress(p) = ev.kind {
            if let Some(s) = p.retention_secs {
                break s;
            }
        }
    };
    // Started without a checkpoint, the position's commit time is taken as now.
    assert!((7000..=7200).contains(&published), "{published}");
    assert!(source.retention_secs().is_some());
    // A graceful stop would write what was read at one record a second: drop the run.
    run.abort();
}

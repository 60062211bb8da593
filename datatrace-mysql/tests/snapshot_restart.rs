//! A source server restarted in the middle of a snapshot read (`cargo test snapshot_restart`),
//! on a dedicated MariaDB (the shared one of the other tests must not restart): the read
//! reconnects once the server is back and continues after the last row it read, in a keyset
//! read, in a consistent snapshot and in a table without a key; the target ends up with
//! exactly the source's rows (none lost, none twice) and the source counts its retries.
//! (`reconnect.rs` kills sessions; here the whole server goes away and comes back.)

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use datatrace_core::{Pipeline, PipelineConfig, RateLimit, RunStatus};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSource, SinkOptions, SourceOptions,
};
use datatrace_testkit::MariaDb;

/// Rows in the source table: about 12 MB, read at 6,000 rows/s (some 7 s).
const ROWS: u64 = 40_000;
/// The restart comes once the target holds this many rows.
const RESTART_AT: u64 = 4_000;

/// Runs blocking testkit work (the mariadb client, a restart) off the async workers.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking work")
}

/// Rows in `dst`.t on the shared server (0 while the table does not exist yet).
async fn target_rows(dst: &str) -> u64 {
    let sql = format!("SELECT COUNT(*) FROM `{dst}`.t");
    blocking(move || db().exec_at(db().addr(), &sql))
        .await
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Copies `src`.t on `server` into a new database of the shared server while `server`
/// restarts once the copy is under way; asserts the copy completed exactly and reconnected.
async fn copy_across_a_restart(server: &Arc<MariaDb>, src: &str, what: &str, opts: SourceOptions) {
    let dst = db().create_database("sr_dst");
    let conn = MySqlConnection::connect(&ConnectionConfig::new(server.url_for(src)))
        .await
        .expect("connect");
    let info = table_info(&conn, src, "t").await.expect("table info");
    let source = Arc::new(MySqlSource::new(conn, info, opts).expect("source"));
    let k = sink(
        &dst,
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
    )
    .await;
    let config = PipelineConfig {
        batch_size: 200,
        rate_limit: RateLimit {
            records_per_sec: Some(6000.0),
            bytes_per_sec: None,
        },
        ..Default::default()
    };
    let run = tokio::spawn(
        Pipeline::new(format!("{src}.t"), source.clone(), k)
            .config(config)
            .run(),
    );

    // Mid-read: some rows written, most still to read.
    let started = Instant::now();
    loop {
        let n = target_rows(&dst).await;
        assert!(
            !run.is_finished(),
            "{what}: the copy ended before the restart ({n} rows written)"
        );
        if n >= RESTART_AT {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: only {n} rows written in a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = server.clone();
    blocking(move || s.restart()).await;
    let written_at_restart = target_rows(&dst).await;
    assert!(
        written_at_restart < ROWS,
        "{what}: the copy was done by the time the server was back: the restart proves nothing"
    );

    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("{what}: the copy did not end within 2 minutes"))
        .expect("join")
        .unwrap_or_else(|e| panic!("{what}: the copy failed across the restart: {e}"));
    assert_eq!(report.status, RunStatus::Completed, "{what}");
    assert!(
        source.retries() >= 1,
        "{what}: no retry counted across the restart"
    );
    // Every row read once: a re-read row would be counted (and, without a key, written) twice.
    assert_eq!(report.read, ROWS, "{what}: rows read");
    assert_eq!(report.written, ROWS, "{what}: rows written");

    // The same rows on both sides, compared row by row.
    let (src_sql, dst_sql) = (
        format!("SELECT id, v FROM `{src}`.t ORDER BY id, v"),
        format!("SELECT id, v FROM `{dst}`.t ORDER BY id, v"),
    );
    let s = server.clone();
    let source_rows = blocking(move || s.exec(&src_sql)).await;
    let target = blocking(move || db().exec(&dst_sql)).await;
    let (a, b): (Vec<&str>, Vec<&str>) = (source_rows.lines().collect(), target.lines().collect());
    assert_eq!(a.len() as u64, ROWS, "{what}: source rows");
    assert_eq!(b.len(), a.len(), "{what}: target rows");
    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
        panic!(
            "{what}: row {i} differs: source {:.60} target {:.60}",
            a[i], b[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restart_of_the_source_server_mid_read_loses_and_duplicates_nothing() {
    let server = Arc::new(MariaDb::dedicated());
    let src = server.create_database("sr_src");
    server.exec(&format!(
        "USE `{src}`;
         CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(400) NOT NULL);
         INSERT INTO t SELECT seq, CONCAT('v', seq, REPEAT('x', 280 + seq % 13)) FROM seq_1_to_{ROWS};
         CREATE TABLE nokey (id INT NOT NULL, v VARCHAR(400) NOT NULL);
         INSERT INTO nokey SELECT * FROM t;"
    ));
    // Pages of 2,000 rows: the restart lands between pages or inside one.
    copy_across_a_restart(
        &server,
        &src,
        "keyset read",
        SourceOptions {
            page_rows: 2000,
            ..Default::default()
        },
    )
    .await;
    copy_across_a_restart(
        &server,
        &src,
        "consistent snapshot",
        SourceOptions {
            page_rows: 2000,
            consistent_snapshot: true,
            ..Default::default()
        },
    )
    .await;
    // The table without a key, under the name `t` in a database of its own.
    let nk = server.create_database("sr_nk");
    server.exec(&format!(
        "CREATE TABLE `{nk}`.t LIKE `{src}`.nokey; INSERT INTO `{nk}`.t SELECT * FROM `{src}`.nokey;"
    ));
    copy_across_a_restart(&server, &nk, "scan without a key", SourceOptions::default()).await;
}

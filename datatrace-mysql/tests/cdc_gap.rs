//! Binlog gaps (`cargo test binlog_gap`): a stream whose position was purged meanwhile, found
//! at start (by file and offset, and by GTID state) and on reconnect. `on_binlog_gap =
//! "fail"` stops with an error naming what is missing and the way forward; `"resnapshot"`
//! empties and copies the streamed tables again from a position taken first and streams on:
//! the target ends equal to the source, deletes made during the gap included. Each test has
//! its own server (purging binlogs would break other tests' streams).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{Emitter, MemoryCheckpointStore, Part, Pipeline, PipelineConfig, Source};
use datatrace_mysql::binlog::position::to_position;
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, OnBinlogGap, StartAt};
use datatrace_mysql::{BinlogPosition, ConnectionConfig, MySqlConnection, MySqlSink, SinkOptions};
use datatrace_testkit::{FaultProxy, MariaDb};

async fn connect(url: String) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .expect("connect")
}

/// `s.t` with 100 rows, and the position after them.
async fn seeded(db: &MariaDb) -> BinlogPosition {
    db.exec(
        "CREATE DATABASE s; CREATE DATABASE d; USE s;
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_100;",
    );
    current_position(&connect(db.url_for("s")).await)
        .await
        .unwrap()
}

/// Changes after `P` that end up in purged binlogs: inserts, updates, deletes; then a new
/// binlog file with more changes, and every older file purged.
fn changes_then_purge(db: &MariaDb, first: i64) {
    db.exec(&format!(
        "USE s; INSERT INTO t SELECT seq, CONCAT('n', seq) FROM seq_{first}_to_{};
         DELETE FROM t WHERE id <= 10 OR id = {first};
         UPDATE t SET v = 'changed' WHERE id BETWEEN 11 AND 20;
         FLUSH BINARY LOGS;",
        first + 49
    ));
    let file = db.exec("SHOW MASTER STATUS");
    let file = file.split('\t').next().unwrap().trim().to_string();
    db.exec(&format!(
        "USE s; INSERT INTO t VALUES ({}, 'after the flush');",
        first + 100
    ));
    // MariaDB keeps a binlog until InnoDB's binlog checkpoint has passed it: try again until
    // the older files are gone.
    for _ in 0..100 {
        db.exec(&format!("PURGE BINARY LOGS TO '{file}'"));
        let files = db.exec("SHOW BINARY LOGS");
        if files.lines().next().is_some_and(|l| l.starts_with(&file)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the binlogs before {file} could not be purged");
}

fn opts(start: &BinlogPosition, on_gap: OnBinlogGap) -> CdcOptions {
    CdcOptions {
        server_id: 7401,
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        heartbeat_secs: 1,
        on_binlog_gap: on_gap,
        ..CdcOptions::tables(["s.*"])
    }
}

/// Waits until `d.t` holds the same rows as `s.t` (two minutes at most: a loaded machine).
async fn converges(db: &MariaDb) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let src = db.exec("SELECT * FROM s.t ORDER BY id");
        let dst = db
            .exec_at(db.addr(), "SELECT * FROM d.t ORDER BY id")
            .unwrap_or_default();
        if src == dst {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the target did not converge: {} source rows, {} target rows",
            src.lines().count(),
            dst.lines().count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_gap_at_start_fails_naming_what_is_missing() {
    let db = MariaDb::dedicated();
    let p = seeded(&db).await;
    changes_then_purge(&db, 101);
    let conn = connect(db.url_for("s")).await;

    // By file and offset.
    let source = BinlogSource::new(conn.clone(), opts(&p, OnBinlogGap::Fail)).unwrap();
    let (mut em, _rx) = Emitter::for_test(16, 64);
    let e = source
        .read(&Part::whole(), Some(to_position(&p, None)), &mut em)
        .await
        .expect_err("a purged position fails");
    let text = e.to_string();
    assert!(text.contains("binlog gap"), "{text}");
    assert!(text.contains(&format!("{}:{}", p.file, p.pos)), "{text}");
    assert!(text.contains("was purged"), "{text}");
    assert!(text.contains("on_binlog_gap = \"resnapshot\""), "{text}");

    // By GTID state: the GTIDs before the oldest binlog that the state lacks.
    let gtid = p.gtid.clone().expect("MariaDB has a GTID state");
    let by_gtid = CdcOptions {
        resume_by_gtid: true,
        start: StartAt::Gtid(gtid.clone()),
        ..opts(&p, OnBinlogGap::Fail)
    };
    let source = BinlogSource::new(conn, by_gtid).unwrap();
    let (mut em, _rx) = Emitter::for_test(16, 64);
    let e = source
        .read(&Part::whole(), None, &mut em)
        .await
        .expect_err("a purged GTID state fails");
    let text = e.to_string();
    assert!(
        text.contains("binlog gap") && text.contains("GTIDs") && text.contains("purged"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_gap_at_start_resnapshots_and_streams_on() {
    let db = MariaDb::dedicated();
    let p = seeded(&db).await;
    // The target as the stream left it at P.
    db.exec("CREATE TABLE d.t LIKE s.t; INSERT INTO d.t SELECT * FROM s.t;");
    changes_then_purge(&db, 101);

    let conn = connect(db.url_for("s")).await;
    let source = BinlogSource::new(conn, opts(&p, OnBinlogGap::Resnapshot)).unwrap();
    let stats = source.stats();
    let sink = MySqlSink::new(
        connect(db.url_for("d")).await,
        SinkOptions {
            database: Some("d".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let pipeline = Pipeline::new("binlog", Arc::new(source), Arc::new(sink))
        .config(PipelineConfig {
            partition_by_key: true,
            ..Default::default()
        })
        .checkpoints(Arc::new(MemoryCheckpointStore::new()));
    let cancel = pipeline.canceller();
    let run = tokio::spawn(pipeline.run());
    converges(&db).await;
    assert_eq!(stats.resnapshots.load(Ordering::Relaxed), 1);
    // Streaming goes on from the position taken before the copy.
    db.exec("USE s; INSERT INTO t VALUES (900, 'streamed'); DELETE FROM t WHERE id = 50;");
    converges(&db).await;
    cancel.cancel();
    let _ = run.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_gap_on_reconnect_resnapshots_and_streams_on() {
    let db = MariaDb::dedicated();
    let p = seeded(&db).await;
    db.exec("CREATE TABLE d.t LIKE s.t; INSERT INTO d.t SELECT * FROM s.t;");
    let proxy = FaultProxy::start(db.addr());
    let conn = connect(format!("mysql://root@{}/s", proxy.addr())).await;
    let source = BinlogSource::new(conn, opts(&p, OnBinlogGap::Resnapshot)).unwrap();
    let stats = source.stats();
    let sink = MySqlSink::new(
        connect(db.url_for("d")).await,
        SinkOptions {
            database: Some("d".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let pipeline = Pipeline::new("binlog", Arc::new(source), Arc::new(sink))
        .config(PipelineConfig {
            partition_by_key: true,
            ..Default::default()
        })
        .checkpoints(Arc::new(MemoryCheckpointStore::new()));
    let cancel = pipeline.canceller();
    let run = tokio::spawn(pipeline.run());
    db.exec("INSERT INTO s.t VALUES (500, 'live')");
    converges(&db).await;
    assert_eq!(stats.resnapshots.load(Ordering::Relaxed), 0, "no gap yet");

    // The link goes down; meanwhile the binlogs the stream needs are purged.
    proxy.set_drop_rate(1.0);
    proxy.drop_connections();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !db
        .exec(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .trim()
        .eq("0")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dump thread stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    changes_then_purge(&db, 601);
    proxy.set_drop_rate(0.0);
    converges(&db).await;
    assert_eq!(stats.resnapshots.load(Ordering::Relaxed), 1);
    assert!(stats.reconnects.load(Ordering::Relaxed) >= 1);
    db.exec("USE s; INSERT INTO t VALUES (901, 'streamed'); UPDATE t SET v = 'x' WHERE id = 30;");
    converges(&db).await;
    cancel.cancel();
    let _ = run.await;
}

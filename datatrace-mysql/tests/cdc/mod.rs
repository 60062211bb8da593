//! Helpers of the change data capture tests (real MariaDB from the testkit).
#![allow(dead_code)]

use std::time::Duration;

use datatrace_core::{Emitted, Emitter, Part, Position, Record, Source};
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace_mysql::{BinlogPosition, ConnectionConfig, MySqlConnection};

pub fn db() -> &'static datatrace_testkit::MariaDb {
    datatrace_testkit::mariadb()
}

pub fn exec(sql: &str) -> String {
    db().exec(sql)
}

pub async fn connect(database: &str) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(db().url_for(database)))
        .await
        .expect("connect")
}

/// The server's current binlog position.
pub async fn now() -> BinlogPosition {
    current_position(&connect("mysql").await)
        .await
        .expect("position")
}

/// Options streaming `database.*` from `start`, with a unique server id.
pub fn opts(database: &str, start: &BinlogPosition) -> CdcOptions {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(7000);
    CdcOptions {
        server_id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        heartbeat_secs: 1,
        ..CdcOptions::tables([format!("{database}.*")])
    }
}

/// What a stream produced.
#[derive(Default)]
pub struct Captured {
    pub records: Vec<Record>,
    pub checkpoints: Vec<Position>,
    /// For each checkpoint, how many records came before it.
    pub checkpoint_at: Vec<usize>,
    /// Reconnects of the stream.
    pub reconnects: u64,
    /// Table changes (TRUNCATE, DROP, RENAME), in order.
    pub table_changes: Vec<datatrace_core::TableChange>,
    /// For each table change, how many records came before it.
    pub table_change_at: Vec<usize>,
    /// For each table change, how many checkpoints came before it.
    pub table_change_after_checkpoints: Vec<usize>,
}

impl Captured {
    /// The `id` column (first) of every record, as i64.
    pub fn ids(&self) -> Vec<i64> {
        self.records
            .iter()
            .map(|r| r.values[0].as_i64().expect("id"))
            .collect()
    }
}

/// Runs a stream (from `from`, or the options' start) until `done` says so (or 30 s pass:
/// a panic), then stops it.
pub async fn capture(
    opts: CdcOptions,
    from: Option<Position>,
    done: impl Fn(&Captured) -> bool,
) -> Captured {
    capture_via(connect("mysql").await, opts, from, done, |_| {}).await
}

/// [`capture`] through `conn`, calling `step` after every message received.
pub async fn capture_via(
    conn: MySqlConnection,
    opts: CdcOptions,
    from: Option<Position>,
    done: impl Fn(&Captured) -> bool,
    mut step: impl FnMut(&Captured),
) -> Captured {
    let source = BinlogSource::new(conn, opts).expect("source");
    let stats = source.stats();
    // A small channel: the stream stays close behind the reader (faults land mid-stream).
    let (mut em, mut rx) = Emitter::for_test(64, 2);
    let task = tokio::spawn(async move {
        let r = source.read(&Part::whole(), from, &mut em).await;
        let _ = em.flush().await;
        r
    });
    let mut got = Captured::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !done(&got) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Emitted::Records(r))) => got.records.extend(r),
            Ok(Some(Emitted::Checkpoint(p))) => {
                got.checkpoint_at.push(got.records.len());
                got.checkpoints.push(p)
            }
            Ok(Some(Emitted::TableChange(c))) => {
                got.table_change_at.push(got.records.len());
                got.table_change_after_checkpoints
                    .push(got.checkpoints.len());
                got.table_changes.push(c)
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            Ok(None) => {
                let r = task.await.expect("join");
                panic!("stream ended: {r:?}");
            }
            Err(_) => panic!(
                "timed out with {} records and {} checkpoints",
                got.records.len(),
                got.checkpoints.len()
            ),
        }
        step(&got);
    }
    task.abort();
    got.reconnects = stats.reconnects.load(std::sync::atomic::Ordering::Relaxed);
    got
}

/// A random writer on tables `a`, `b`, `c` of `database` (see [`seed`]): inserts, updates
/// and deletes, a third of them in multi-statement transactions, until `stop` is set.
/// Returns the number of statements run.
pub async fn writer(database: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    writer_counting(database, stop, count).await
}

/// [`writer`], publishing the number of statements run so far in `count`.
pub async fn writer_counting(
    database: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> u64 {
    use mysql_async::prelude::Queryable;
    let conn = connect(&database).await;
    let mut c = conn.get().await.expect("writer connection");
    let mut n = 0u64;
    let mut next_id = 10_000i64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let in_tx = fastrand::u8(0..3) == 0;
        let mut sql = String::new();
        if in_tx {
            sql.push_str("BEGIN;");
        }
        for _ in 0..if in_tx { 3 } else { 1 } {
            let id = fastrand::i64(1..next_id.min(400) + 40);
            let table = ["a", "b", "c"][fastrand::usize(0..3)];
            let key = match table {
                "b" => format!("k1 = {} AND k2 = 'k{}'", id % 50, id % 7),
                _ => format!("id = {id}"),
            };
            let s = match fastrand::u8(0..10) {
                0..=3 => {
                    next_id += 1;
                    match table {
                        "b" => format!(
                            "INSERT INTO b VALUES ({}, 'k{}', {}, 'w{n}') ON DUPLICATE KEY UPDATE n = n + 1;",
                            next_id % 50,
                            next_id % 7,
                            fastrand::i32(..)
                        ),
                        t => format!("INSERT IGNORE INTO {t} VALUES ({}, 'w{n}', {});", fastrand::i64(1..450), fastrand::i32(..)),
                    }
                }
                4..=7 => format!("UPDATE {table} SET n = n + 1, v = 'u{n}' WHERE {key};"),
                _ => format!("DELETE FROM {table} WHERE {key};"),
            };
            sql.push_str(&s);
            n += 1;
        }
        if in_tx {
            sql.push_str("COMMIT;");
        }
        c.query_drop(sql).await.expect("writer statement");
        count.store(n, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    n
}

/// Waits until `count` reaches `at_least` (two minutes at most).
pub async fn wait_for_count(count: &std::sync::atomic::AtomicU64, at_least: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while count.load(std::sync::atomic::Ordering::Relaxed) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer ran only {} statements",
            count.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates tables `a` (id), `b` (k1, k2) and `c` (id) with `n` rows each.
pub fn seed(database: &str, n: usize) {
    let mut sql = format!(
        "USE `{database}`; \
         CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), n INT); \
         CREATE TABLE b (k1 INT, k2 VARCHAR(10), n INT, v VARCHAR(40), PRIMARY KEY (k1, k2)); \
         CREATE TABLE c (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(40), n INT);"
    );
    for i in 1..=n {
        sql.push_str(&format!(
            "INSERT INTO a VALUES ({i}, 'v{i}', {i}); INSERT IGNORE INTO b VALUES ({}, 'k{}', {i}, 'v{i}'); INSERT INTO c VALUES ({i}, 'v{i}', {i});",
            i % 50,
            i % 7
        ));
    }
    exec(&sql);
}

/// Waits until the stream unit's committed checkpoint reaches `target` (60 s at most).
pub async fn wait_for_checkpoint(
    store: &std::sync::Arc<dyn datatrace_core::CheckpointStore>,
    job: &str,
    unit: &str,
    target: &BinlogPosition,
) {
    let want = datatrace_mysql::binlog::position::ordinal(&target.file, target.pos);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let cp = store.load(job, unit).await.expect("load");
        let at = cp
            .as_ref()
            .and_then(|c| c.parts.first())
            .and_then(|p| p.position.as_ref())
            .and_then(|p| p.ordinal)
            .unwrap_or(0);
        if at >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream did not reach {target:?} (at ordinal {at:#x}, want {want:#x}): {cp:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How the Elasticsearch sinks of these tests map unsigned columns on `engine` (table `c`'s
/// key is a `BIGINT UNSIGNED`): the default (`unsigned_long`) where the engine has the type,
/// `keyword` (exact for every value) on the testkit's Elasticsearch 7.17, which has not and
/// where the default refuses such columns (`datatrace-es/tests/unsigned.rs`).
pub fn es_unsigned(engine: datatrace_testkit::EngineFlavor) -> datatrace_es::UnsignedMapping {
    if engine == datatrace_testkit::EngineFlavor::Elasticsearch {
        datatrace_es::UnsignedMapping::Keyword
    } else {
        datatrace_es::UnsignedMapping::Auto
    }
}

/// [`es_unsigned`] for the test run's engine, as the sink's mapping settings.
pub fn es_mapping() -> datatrace_es::MappingConfig {
    datatrace_es::MappingConfig {
        unsigned: es_unsigned(datatrace_testkit::engine().flavor()),
        ..Default::default()
    }
}

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
    let (mut em, mut rx) = Emitter::for_test(64, 1_000_000);
    let task = tokio::spawn(async move {
        let r = source.read(&Part::whole(), from, &mut em).await;
        let _ = em.flush().await;
        r
    });
    let mut got = Captured::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&got) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Emitted::Records(r))) => got.records.extend(r),
            Ok(Some(Emitted::Checkpoint(p))) => {
                got.checkpoint_at.push(got.records.len());
                got.checkpoints.push(p)
            }
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
    got
}

//! A server restart under a running change stream, on a dedicated MariaDB (the shared one of
//! the other tests must not restart): the stream reconnects once the server is back, resumes
//! from the end of its last committed transaction, skips the rows it already emitted and
//! continues into the new binlog file the restart created; every change arrives exactly once
//! and in order. And a stream dropped while the server is down, started again from its last
//! checkpoint after the restart, loses nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{Emitted, Emitter, EmitterReceiver, Part, Position, Record, Source};
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt, StreamStats};
use datatrace_mysql::{BinlogPosition, ConnectionConfig, MySqlConnection};
use datatrace_testkit::MariaDb;

/// Failure guard only: how long a stream may go without delivering what a test waits for.
const GUARD: Duration = Duration::from_secs(60);

const T: &str = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(300), n INT)";

async fn connect(server: &MariaDb) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(server.url_for("mysql")))
        .await
        .expect("connect")
}

async fn now(server: &MariaDb) -> BinlogPosition {
    current_position(&connect(server).await)
        .await
        .expect("position")
}

/// Options streaming `database.*` from `start` (1 s heartbeats, room for a slow restart).
fn opts(database: &str, start: &BinlogPosition) -> CdcOptions {
    CdcOptions {
        server_id: 7900,
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        heartbeat_secs: 1,
        reconnect_attempts: 60,
        ..CdcOptions::tables([format!("{database}.*")])
    }
}

/// Commits `from..=to` into `database.t`: one transaction per row.
fn single_row_transactions(server: &MariaDb, database: &str, from: i64, to: i64) {
    let mut sql = format!("USE `{database}`;");
    for i in from..=to {
        sql.push_str(&format!("INSERT INTO t VALUES ({i}, 's{i}', {i});"));
    }
    server.exec(&sql);
}

/// Commits `from..=to` into `database.t` in one transaction: a multi-row insert (many rows
/// events; 250 bytes a row, so that 40000 rows are more than the socket buffers hold and a
/// restart lands in the middle of the transaction) and then a few single-row inserts.
fn one_transaction(server: &MariaDb, database: &str, from: i64, to: i64) {
    let bulk_to = to - 5;
    let mut sql = format!(
        "USE `{database}`; BEGIN; \
         INSERT INTO t SELECT seq, REPEAT('m', 250), seq FROM seq_{from}_to_{bulk_to};"
    );
    for i in bulk_to + 1..=to {
        sql.push_str(&format!("INSERT INTO t VALUES ({i}, 'm{i}', {i});"));
    }
    sql.push_str("COMMIT;");
    server.exec(&sql);
}

/// A running stream and what it delivered so far.
struct Stream {
    task: tokio::task::JoinHandle<datatrace_core::Result<()>>,
    rx: EmitterReceiver,
    stats: Arc<StreamStats>,
    records: Vec<Record>,
    checkpoints: Vec<Position>,
    /// For each checkpoint, how many records came before it.
    checkpoint_at: Vec<usize>,
}

impl Stream {
    async fn start(server: &MariaDb, opts: CdcOptions, from: Option<Position>) -> Stream {
        let source = BinlogSource::new(connect(server).await, opts).expect("source");
        let stats = source.stats();
        // A small channel: the stream stays close behind the reader, so the restart lands
        // in the middle of what it has to read.
        let (mut em, rx) = Emitter::for_test(64, 2);
        let task = tokio::spawn(async move {
            let r = source.read(&Part::whole(), from, &mut em).await;
            let _ = em.flush().await;
            r
        });
        Stream {
            task,
            rx,
            stats,
            records: Vec::new(),
            checkpoints: Vec::new(),
            checkpoint_at: Vec::new(),
        }
    }

    /// Receives until `done` says so (checked at every message, and every 50 ms for the
    /// counters); panics when it does not within [`GUARD`] or when the stream ends.
    async fn until(&mut self, what: &str, done: impl Fn(&Stream) -> bool) {
        let deadline = tokio::time::Instant::now() + GUARD;
        while !done(self) {
            let poll = (tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
            match tokio::time::timeout_at(poll, self.rx.recv()).await {
                Ok(Some(Emitted::Records(r))) => self.records.extend(r),
                Ok(Some(Emitted::Checkpoint(p))) => {
                    self.checkpoint_at.push(self.records.len());
                    self.checkpoints.push(p);
                }
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) => {
                    let r = (&mut self.task).await.expect("join");
                    panic!("the stream ended while waiting for {what}: {r:?}");
                }
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => panic!(
                    "waiting for {what}: timed out with {} records, {} checkpoints and {} reconnects",
                    self.records.len(),
                    self.checkpoints.len(),
                    self.reconnects()
                ),
            }
        }
    }

    fn ids(&self) -> Vec<i64> {
        self.records
            .iter()
            .map(|r| r.values[0].as_i64().expect("id"))
            .collect()
    }

    fn reconnects(&self) -> u64 {
        self.stats.reconnects.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.task.abort();
    }
}

fn file_of(p: &Position) -> String {
    p.state["file"]
        .as_str()
        .expect("checkpoint file")
        .to_string()
}

/// `ids` is exactly `1..=n`, in order.
fn exactly_once(ids: &[i64], n: i64) {
    let want: Vec<i64> = (1..=n).collect();
    let first_bad = ids.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        ids == want.as_slice(),
        "{} changes for {n} rows; first out of place at index {first_bad:?} ({:?})",
        ids.len(),
        first_bad.map(|i| &ids[i..(i + 5).min(ids.len())])
    );
}

/// Checkpoint ordinals never go back.
fn monotonic(checkpoints: &[Position]) {
    let ords: Vec<u64> = checkpoints
        .iter()
        .map(|p| p.ordinal.expect("ordinal"))
        .collect();
    assert!(
        ords.windows(2).all(|w| w[0] <= w[1]),
        "checkpoint ordinals went back: {ords:x?}"
    );
}

/// Runs blocking testkit work (the mariadb client) off the async workers.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Runs `f` (a stop or restart of `server`) on a blocking thread while `stream` keeps
/// receiving, as a pipeline would: a reader that stops reading would block the server's dump
/// thread in a write, and the shutdown would wait for it (MariaDB's `net_write_timeout`).
async fn while_streaming(stream: &mut Stream, server: &Arc<MariaDb>, what: &str, f: fn(&MariaDb)) {
    let s = server.clone();
    let job = tokio::task::spawn_blocking(move || f(&s));
    stream.until(what, |_| job.is_finished()).await;
    job.await.unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_is_resumed_exactly_once_into_the_new_binlog() {
    let server = Arc::new(MariaDb::dedicated());
    let d = server.create_database("cdc_restart");
    server.exec(&format!("USE `{d}`; {T}"));
    let start = now(&server).await;

    // Before the restart: 200 one-row transactions and one of 80000 rows (20 MB).
    single_row_transactions(&server, &d, 1, 200);
    one_transaction(&server, &d, 201, 80200);
    let mut stream = Stream::start(&server, opts(&d, &start), None).await;
    stream
        .until("the first 1000 changes", |s| s.records.len() >= 1000)
        .await;
    assert_eq!(stream.reconnects(), 0, "reconnected before the restart");

    // Restart while the stream is in the middle of the big transaction, then write more
    // (into the binlog file the restart started).
    while_streaming(&mut stream, &server, "the restart", MariaDb::restart).await;
    blocking(|| {
        single_row_transactions(&server, &d, 80201, 80300);
        one_transaction(&server, &d, 80301, 81300);
    });
    // The connection was lost inside the big transaction (its checkpoint has not come: it
    // needs far more records than the channel holds), so the reconnect reads its start again
    // and must skip the rows already emitted.
    stream.until("the reconnect", |s| s.reconnects() >= 1).await;
    // (Heartbeats may repeat a checkpoint: compare positions.)
    let before_big = stream.checkpoint_at.iter().position(|&at| at == 200);
    let before_big = before_big.map(|i| &stream.checkpoints[i].state);
    assert!(
        stream.records.len() > 200
            && before_big == stream.checkpoints.last().map(|p| &p.state),
        "the connection was not lost inside the big transaction ({} records, checkpoints after {:?})",
        stream.records.len(),
        stream.checkpoint_at.last()
    );

    stream
        .until("every change and the checkpoint after the last one", |s| {
            s.records.len() >= 81300 && s.checkpoint_at.last() == Some(&s.records.len())
        })
        .await;
    let reconnects = stream.reconnects();
    let ids = stream.ids();
    let checkpoints = std::mem::take(&mut stream.checkpoints);
    stream.stop();

    exactly_once(&ids, 81300);
    assert!(reconnects >= 1, "no reconnect counted across the restart");
    monotonic(&checkpoints);
    let (first, last) = (
        file_of(checkpoints.first().unwrap()),
        file_of(checkpoints.last().unwrap()),
    );
    assert_eq!(
        first, start.file,
        "the first checkpoint is in the start file"
    );
    assert_ne!(
        last, first,
        "the stream did not continue into the binlog file the restart created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_while_the_server_is_down_resumes_from_its_checkpoint() {
    let server = Arc::new(MariaDb::dedicated());
    let d = server.create_database("cdc_down");
    server.exec(&format!("USE `{d}`; {T}"));
    let start = now(&server).await;

    single_row_transactions(&server, &d, 1, 300);
    one_transaction(&server, &d, 301, 40300);
    let mut first = Stream::start(&server, opts(&d, &start), None).await;
    first
        .until("the first 800 changes", |s| s.records.len() >= 800)
        .await;

    // Down: the stream notices (it keeps delivering what it had read until then) and is
    // dropped while it tries to reconnect.
    while_streaming(&mut first, &server, "the shutdown", MariaDb::stop).await;
    first
        .until("the stream to notice the shutdown", |s| s.reconnects() >= 1)
        .await;
    let resume = first.checkpoints.last().cloned().expect("a checkpoint");
    let cut = *first.checkpoint_at.last().unwrap();
    let before: Vec<i64> = first.ids()[..cut].to_vec();
    let mut checkpoints = std::mem::take(&mut first.checkpoints);
    first.stop();

    // Back up, more writes, and a new stream from the last checkpoint.
    blocking(|| server.restart());
    blocking(|| {
        single_row_transactions(&server, &d, 40301, 40400);
        one_transaction(&server, &d, 40401, 41400);
    });
    let mut second = Stream::start(&server, opts(&d, &start), Some(resume.clone())).await;
    let rest = 41400 - cut;
    second
        .until("the changes after the checkpoint", |s| {
            s.records.len() >= rest && s.checkpoint_at.last() == Some(&s.records.len())
        })
        .await;
    let ids: Vec<i64> = before.iter().copied().chain(second.ids()).collect();
    checkpoints.extend(std::mem::take(&mut second.checkpoints));
    second.stop();

    exactly_once(&ids, 41400);
    monotonic(&checkpoints);
    assert_ne!(
        file_of(checkpoints.last().unwrap()),
        file_of(&resume),
        "the resumed stream did not continue into the binlog file the restart created"
    );
}

//! Change data capture benchmarks against the testkit's MariaDB.
//!
//! `cargo bench -p datatrace-mysql --bench binlog` (release).
//!
//! 1. Decode throughput: a burst of `BENCH_ROWS` (default 1,000,000) inserted rows (10
//!    statements of 100k rows), then the binlog source reads them from the position before
//!    the burst; row events per second from the first to the last record received (decode,
//!    normalisation to `Value`s and the emitter's channel; no sink).
//! 2. End-to-end lag under a steady load: a writer inserts `BENCH_RATE` rows/s (default
//!    2000; 20 rows every 10 ms, each carrying its insert time in microseconds) for
//!    `BENCH_SECS` s (default 20); a stream pipeline applies them to a MySQL target, with the
//!    pipeline's default settings and, in the same run, tuned (partition by key, 3 workers,
//!    5 ms linger), and separately to the testkit's bulk endpoint through the Elasticsearch
//!    sink (defaults). Lag = time the sink acknowledged the write - the row's insert time;
//!    p50 / p99 / max over every row. `BENCH_LAG_ONLY=1` skips part 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datatrace_core::{
    Batch, Emitted, Emitter, Outcome, Part, Pipeline, PipelineConfig, PrepareContext, Sink,
    SinkError, Source,
};
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace_mysql::{ConnectionConfig, MySqlConnection, MySqlSink, SinkOptions};
use mysql_async::prelude::Queryable;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(url: String) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .expect("connect")
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn opts(db: &str, start: &datatrace_mysql::BinlogPosition, id: u32) -> CdcOptions {
    CdcOptions {
        server_id: id,
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        ..CdcOptions::tables([format!("{db}.*")])
    }
}

async fn decode_throughput(rows: u64) {
    let m = datatrace_testkit::mariadb();
    let db = m.create_database("bench_decode");
    m.exec(&format!(
        "USE `{db}`; CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(10,2), created DATETIME(6), flag TINYINT(1))"
    ));
    let conn = connect(m.url_for(&db)).await;
    let start = current_position(&conn).await.expect("position");
    let t = Instant::now();
    let step = 100_000u64;
    let mut c = conn.get().await.expect("conn");
    let mut from = 1u64;
    while from <= rows {
        let to = (from + step - 1).min(rows);
        c.query_drop(format!(
            "INSERT INTO t SELECT seq, CONCAT('name ', seq), seq % 1000, seq / 100, '2024-01-01 00:00:00.5', seq % 2 FROM seq_{from}_to_{to}"
        ))
        .await
        .expect("burst");
        from = to + 1;
    }
    drop(c);
    println!(
        "burst: {rows} rows inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let source = BinlogSource::new(conn.clone(), opts(&db, &start, 9901)).expect("source");
    let stats = source.stats();
    let (mut em, mut rx) = Emitter::for_test(1000, 64);
    let task = tokio::spawn(async move { source.read(&Part::whole(), None, &mut em).await });
    let mut n = 0u64;
    let mut first: Option<Instant> = None;
    while n < rows {
        match rx.recv().await {
            Some(Emitted::Records(r)) => {
                first.get_or_insert_with(Instant::now);
                n += r.len() as u64;
            }
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    task.abort();
    println!(
        "decode: {n} row events in {secs:.2} s = {:.0} row events/s ({} binlog events)",
        n as f64 / secs,
        stats.events.load(Ordering::Relaxed)
    );
}

/// Wraps a sink and records, per written row, ack time - the row's `t_us` column, and per
/// batch its rows and the time the sink took to write it.
struct LagSink {
    inner: Arc<dyn Sink>,
    lags_us: Mutex<Vec<i64>>,
    writes: Mutex<Vec<(usize, i64)>>,
}

#[async_trait]
impl Sink for LagSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(ctx).await
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let started = now_us();
        let out = self.inner.write(batch).await?;
        let now = now_us();
        self.writes
            .lock()
            .unwrap()
            .push((batch.len(), now - started));
        let mut l = self.lags_us.lock().unwrap();
        for r in &batch.records {
            if let Some(t) = r.get("t_us").and_then(|v| v.as_i64()) {
                l.push(now - t);
            }
        }
        Ok(out)
    }
}

fn tuned() -> PipelineConfig {
    PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 3,
        batch_size: 500,
        linger: Duration::from_millis(5),
        ..Default::default()
    }
}

async fn lag(
    target: &str,
    sink: Arc<dyn Sink>,
    config: PipelineConfig,
    (rate, secs): (u64, u64),
    id: u32,
) {
    let m = datatrace_testkit::mariadb();
    let db = m.create_database("bench_lag");
    m.exec(&format!(
        "USE `{db}`; CREATE TABLE events (id BIGINT PRIMARY KEY, payload VARCHAR(100), t_us BIGINT)"
    ));
    let conn = connect(m.url_for(&db)).await;
    let start = current_position(&conn).await.expect("position");
    let lag_sink = Arc::new(LagSink {
        inner: sink,
        lags_us: Mutex::new(Vec::new()),
        writes: Mutex::new(Vec::new()),
    });
    let pipeline = Pipeline::new(
        "binlog",
        Arc::new(BinlogSource::new(conn.clone(), opts(&db, &start, id)).expect("source")),
        lag_sink.clone(),
    )
    .config(config);
    let cancel = pipeline.canceller();
    let running = tokio::spawn(pipeline.run());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let conn = conn.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut c = conn.get().await.expect("writer");
            let per_tick = 20u64;
            let tick = Duration::from_micros(1_000_000 * per_tick / rate.max(1));
            let mut next = tokio::time::Instant::now();
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut sql = String::from("INSERT INTO events VALUES ");
                for i in 0..per_tick {
                    id += 1;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "({id}, 'payload of event {id} ..........', {})",
                        now_us()
                    ));
                }
                c.query_drop(sql).await.expect("insert");
                next += tick;
                tokio::time::sleep_until(next).await;
            }
            id
        })
    };
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while (lag_sink.lags_us.lock().unwrap().len() as u64) < written && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    let _ = running.await;
    let mut l = lag_sink.lags_us.lock().unwrap().clone();
    l.sort_unstable();
    let p = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let writes = lag_sink.writes.lock().unwrap().clone();
    let mut took: Vec<i64> = writes.iter().map(|w| w.1).collect();
    took.sort_unstable();
    let q = |x: f64| {
        took.get(((took.len() as f64 * x) as usize).min(took.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "lag into {target}: {} rows at {rate} rows/s for {secs} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         {} batches of {:.1} rows on average, the sink's write p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.len(),
        p(0.50),
        p(0.99),
        p(1.0),
        writes.len(),
        l.len() as f64 / writes.len().max(1) as f64,
        q(0.50),
        q(0.99),
        q(1.0)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let rows = env("BENCH_ROWS", 1_000_000);
        let load = (env("BENCH_RATE", 2000), env("BENCH_SECS", 20));
        if env("BENCH_LAG_ONLY", 0) == 0 {
            decode_throughput(rows).await;
        }
        let m = datatrace_testkit::mariadb();
        let mysql = |name: &str| {
            let dst = m.create_database(name);
            async move {
                let sink = MySqlSink::new(
                    connect(m.url_for(&dst)).await,
                    SinkOptions {
                        database: Some(dst),
                        create_table: true,
                        ..Default::default()
                    },
                )
                .expect("sink");
                Arc::new(sink)
            }
        };
        let sink = mysql("bench_lag_dst").await;
        lag(
            "MySQL, defaults",
            sink,
            PipelineConfig::default(),
            load,
            9902,
        )
        .await;
        let sink = mysql("bench_lag_tuned").await;
        lag("MySQL, tuned", sink, tuned(), load, 9904).await;
        let ep = datatrace_testkit::bulk::BulkEndpoint::start();
        let es = datatrace_es::EsSink::connect(
            &datatrace_es::ConnectionConfig::new([ep.url()]),
            datatrace_es::SinkConfig {
                version: Some(datatrace_es::VersionSource::Position),
                ..Default::default()
            },
        )
        .await
        .expect("es sink");
        lag(
            "the bulk endpoint (ES sink), defaults",
            Arc::new(es),
            PipelineConfig::default(),
            load,
            9903,
        )
        .await;
    });
}

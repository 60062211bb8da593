//! Kafka benchmarks against the testkit's MariaDB, Kafka broker and search engine.
//!
//! `cargo bench -p datatrace-kafka --bench kafka` (env `BENCH_ROWS`, default 200000;
//! `BENCH_RATE` rows/s and `BENCH_SECS` for the lag run, default 2000 and 15).
//!
//! 1. MySQL -> Kafka: a burst of `BENCH_ROWS` inserted rows read by the binlog source from the
//!    position before the burst and written as Debezium events by the Kafka sink (6
//!    partitions, idempotent producer, acks=all), beside the same stream into a sink that
//!    discards (the binlog side's own cost).
//! 2. Kafka -> Elasticsearch: the events read back by 1 and by 2 workers of one consumer
//!    group (two pipelines in this process) into the engine (OpenSearch by default), beside
//!    Kafka -> discard (the consumer side's own cost).
//! 3. End-to-end lag at a steady rate: MySQL -> Kafka -> Elasticsearch, both pipelines
//!    running, a writer inserting `BENCH_RATE` rows/s, each carrying its insert time; lag =
//!    when the Elasticsearch sink acknowledged the row - its insert time (after one warm-up
//!    row has gone through both pipelines).
//!
//! CPU seconds are this process's (user + system, all threads: DataTrace and librdkafka);
//! the broker, MariaDB and the engine run in their own processes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datatrace_core::testing::DiscardSink;
use datatrace_core::{
    Batch, MemoryCheckpointStore, Outcome, Pipeline, PipelineConfig, PrepareContext, Sink,
    SinkError, TableChange,
};
use datatrace_es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace_kafka::{KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig};
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace_mysql::{BinlogPosition, ConnectionConfig, MySqlConnection};
use datatrace_testkit::procstat;
use mysql_async::prelude::Queryable;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Counts written records; optionally records each row's lag from its `t_us` column.
struct Counting {
    inner: Arc<dyn Sink>,
    written: AtomicU64,
    lags_us: Option<Mutex<Vec<i64>>>,
}

#[async_trait]
impl Sink for Counting {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(ctx).await
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let out = self.inner.write(batch).await?;
        self.written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(l) = &self.lags_us {
            let now = now_us();
            let mut l = l.lock().unwrap();
            for r in &batch.records {
                if let Some(t) = r.get("t_us").and_then(|v| v.as_i64()) {
                    l.push(now - t);
                }
            }
        }
        Ok(out)
    }
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        self.inner.table_change(change).await
    }
}

fn counting(inner: Arc<dyn Sink>, lags: bool) -> Arc<Counting> {
    Arc::new(Counting {
        inner,
        written: AtomicU64::new(0),
        lags_us: lags.then(|| Mutex::new(Vec::new())),
    })
}

fn opts(db: &str, start: &BinlogPosition, id: u32) -> CdcOptions {
    CdcOptions {
        server_id: id,
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        ..CdcOptions::tables([format!("{db}.*")])
    }
}

fn stream_config() -> PipelineConfig {
    PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 2,
        batch_size: 1000,
        linger: Duration::from_millis(5),
        ..Default::default()
    }
}

/// Runs `source` -> `sink` until `n` records are written; returns (seconds, CPU seconds).
async fn until_written(
    source: Arc<dyn datatrace_core::Source>,
    sink: Arc<Counting>,
    n: u64,
    config: PipelineConfig,
) -> (f64, f64) {
    let pipeline = Pipeline::new("bench", source, sink.clone())
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .config(config);
    let cancel = pipeline.canceller();
    let (t, c) = (Instant::now(), procstat::cpu_secs("self"));
    let running = tokio::spawn(pipeline.run());
    while sink.written.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = (t.elapsed().as_secs_f64(), procstat::cpu_secs("self") - c);
    cancel.cancel();
    let _ = running.await;
    r
}

/// The Kafka sink with its default producer settings, overridden by `properties`.
fn kafka_sink(prefix: &str, properties: &[(&str, &str)]) -> Arc<dyn Sink> {
    let mut c = KafkaSinkConfig::new(datatrace_testkit::kafka().bootstrap());
    c.topic_prefix = prefix.into();
    c.partitions = 6;
    for (k, v) in properties {
        c.properties.insert(k.to_string(), v.to_string());
    }
    Arc::new(KafkaSink::new(c).expect("kafka sink"))
}

async fn es_sink(index: &str) -> Arc<dyn Sink> {
    let es = EsConnection::new([datatrace_testkit::engine().url()]);
    Arc::new(
        EsSink::connect(
            &es,
            SinkConfig {
                index: index.into(),
                max_docs: 1000,
                max_in_flight: 2,
                ..Default::default()
            },
        )
        .await
        .expect("es sink"),
    )
}

fn row(name: &str, rows: u64, secs: f64, cpu: f64) {
    println!(
        "| {name} | {:.0} | {:.2} | {secs:.1} |",
        rows as f64 / secs,
        cpu / rows as f64 * 1e6
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = env("BENCH_ROWS", 200_000);
    let m = datatrace_testkit::mariadb();
    let db = m.create_database("bench_kafka");
    m.exec(&format!(
        "USE `{db}`; CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(10,2), created DATETIME(6), flag TINYINT(1), t_us BIGINT)"
    ));
    let conn = MySqlConnection::connect(&ConnectionConfig::new(m.url_for(&db)))
        .await
        .expect("connect");
    let start = current_position(&conn).await.expect("position");
    let mut c = conn.get().await.expect("conn");
    let mut from = 1u64;
    while from <= rows {
        let to = (from + 49_999).min(rows);
        c.query_drop(format!(
            "INSERT INTO t SELECT seq, CONCAT('name ', seq), seq % 1000, seq / 100, '2024-01-01 00:00:00.5', seq % 2, 0 FROM seq_{from}_to_{to}"
        ))
        .await
        .expect("burst");
        from = to + 1;
    }
    drop(c);
    println!("{rows} rows of 7 columns inserted in a burst; the binlog source reads them from before it\n");
    println!("| run | events/s | CPU s / 1M events (DataTrace + librdkafka) | time s |");
    println!("|---|---|---|---|");

    // 1. MySQL -> discard and MySQL -> Kafka
    let source =
        || Arc::new(BinlogSource::new(conn.clone(), opts(&db, &start, 9801)).expect("source"));
    let (s, cpu) = until_written(
        source(),
        counting(Arc::new(DiscardSink::new()), false),
        rows,
        stream_config(),
    )
    .await;
    row("MySQL binlog -> discard (baseline)", rows, s, cpu);
    // the producer settings before lz4 and the longer linger, beside the defaults
    let (s, cpu) = until_written(
        source(),
        counting(
            kafka_sink(
                &datatrace_testkit::unique_name("bench"),
                &[("compression.type", "none"), ("linger.ms", "5")],
            ),
            false,
        ),
        rows,
        stream_config(),
    )
    .await;
    row(
        "MySQL binlog -> Kafka, previous producer settings (no compression, linger 5 ms)",
        rows,
        s,
        cpu,
    );
    let prefix = datatrace_testkit::unique_name("bench");
    let (s, cpu) = until_written(
        source(),
        counting(kafka_sink(&prefix, &[]), false),
        rows,
        stream_config(),
    )
    .await;
    row(
        "MySQL binlog -> Kafka (Debezium JSON with schemas)",
        rows,
        s,
        cpu,
    );
    let topic = format!("{prefix}.{db}.t");

    // 2. Kafka -> discard, Kafka -> Elasticsearch with 1 and 2 workers
    let kafka_source = |group: &str| {
        let mut c =
            KafkaSourceConfig::new(datatrace_testkit::kafka().bootstrap(), group, &[&topic]);
        c.stop_when_idle_ms = Some(60_000);
        Arc::new(KafkaSource::new(c).expect("source"))
    };
    let worker_config = PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 2,
        batch_size: 1000,
        linger: Duration::from_millis(20),
        ..Default::default()
    };
    let g = datatrace_testkit::unique_name("g");
    let (s, cpu) = until_written(
        kafka_source(&g),
        counting(Arc::new(DiscardSink::new()), false),
        rows,
        worker_config.clone(),
    )
    .await;
    row("Kafka -> discard, 1 worker (baseline)", rows, s, cpu);
    for workers in [1usize, 2] {
        let g = datatrace_testkit::unique_name("g");
        let index = datatrace_testkit::unique_name("bench-kafka");
        let sink = counting(es_sink(&index).await, false);
        let mut runs = Vec::new();
        let (t, c0) = (Instant::now(), procstat::cpu_secs("self"));
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..workers {
            let p = Pipeline::new("bench", kafka_source(&g), sink.clone())
                .checkpoints(Arc::new(MemoryCheckpointStore::new()))
                .config(worker_config.clone());
            let cancel = p.canceller();
            runs.push((cancel, tokio::spawn(p.run())));
        }
        while sink.written.load(Ordering::Relaxed) < rows {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (s, cpu) = (t.elapsed().as_secs_f64(), procstat::cpu_secs("self") - c0);
        stop.store(true, Ordering::Relaxed);
        for (cancel, r) in runs {
            cancel.cancel();
            let _ = r.await;
        }
        row(
            &format!(
                "Kafka -> {} ({workers} worker{})",
                datatrace_testkit::engine().flavor(),
                if workers > 1 { "s" } else { "" }
            ),
            rows,
            s,
            cpu,
        );
    }

    // 3. lag at a steady rate, MySQL -> Kafka -> Elasticsearch
    let rate = env("BENCH_RATE", 2000);
    let secs = env("BENCH_SECS", 15);
    let lag_db = m.create_database("bench_kafka_lag");
    m.exec(&format!(
        "USE `{lag_db}`; CREATE TABLE events (id BIGINT PRIMARY KEY, payload VARCHAR(100), t_us BIGINT)"
    ));
    let lconn = MySqlConnection::connect(&ConnectionConfig::new(m.url_for(&lag_db)))
        .await
        .expect("connect");
    let lstart = current_position(&lconn).await.expect("position");
    let lprefix = datatrace_testkit::unique_name("lag");
    let reader = Pipeline::new(
        "reader",
        Arc::new(BinlogSource::new(lconn.clone(), opts(&lag_db, &lstart, 9802)).expect("source")),
        kafka_sink(&lprefix, &[]),
    )
    .checkpoints(Arc::new(MemoryCheckpointStore::new()))
    .config(stream_config());
    let reader_cancel = reader.canceller();
    let reader_run = tokio::spawn(reader.run());
    let ltopic = format!("{lprefix}.{lag_db}.events");
    let lag_sink = counting(
        es_sink(&datatrace_testkit::unique_name("bench-lag")).await,
        true,
    );
    let mut wc = KafkaSourceConfig::new(
        datatrace_testkit::kafka().bootstrap(),
        datatrace_testkit::unique_name("lag"),
        &[&ltopic],
    );
    wc.wait_for_topics_ms = 60_000;
    let worker = Pipeline::new(
        "worker",
        Arc::new(KafkaSource::new(wc).expect("source")),
        lag_sink.clone(),
    )
    .checkpoints(Arc::new(MemoryCheckpointStore::new()))
    .config(PipelineConfig {
        linger: Duration::from_millis(5),
        ..worker_config.clone()
    });
    let worker_cancel = worker.canceller();
    let worker_run = tokio::spawn(worker.run());
    let mut wconn = lconn.get().await.expect("writer");
    // Warm-up: one row through both pipelines (the topic is created by the first event and the
    // worker joins its group), so the steady run below measures the stream, not start-up.
    wconn
        .query_drop(format!(
            "INSERT INTO events VALUES (0, 'warm-up', {})",
            now_us()
        ))
        .await
        .expect("insert");
    let warm = Instant::now() + Duration::from_secs(120);
    while lag_sink.written.load(Ordering::Relaxed) < 1 && Instant::now() < warm {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        lag_sink.written.load(Ordering::Relaxed) >= 1,
        "the warm-up row did not arrive"
    );
    lag_sink.lags_us.as_ref().unwrap().lock().unwrap().clear();
    let per_tick = 20u64;
    let tick = Duration::from_micros(1_000_000 * per_tick / rate.max(1));
    let mut next = tokio::time::Instant::now();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut id = 0u64;
    while Instant::now() < until {
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
        wconn.query_drop(sql).await.expect("insert");
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while lag_sink.written.load(Ordering::Relaxed) < id + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader_cancel.cancel();
    worker_cancel.cancel();
    let _ = reader_run.await;
    let _ = worker_run.await;
    let mut l = lag_sink.lags_us.as_ref().unwrap().lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "\nlag MySQL -> Kafka -> {} at {rate} rows/s for {secs} s ({} rows): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        datatrace_testkit::engine().flavor(),
        l.len(),
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    for d in [&db, &lag_db] {
        m.exec(&format!("DROP DATABASE `{d}`"));
    }
}

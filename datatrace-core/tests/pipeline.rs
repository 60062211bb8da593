//! Runner behaviour: backpressure, linger, per-key order, rate limits, progress, dead letters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datatrace_core::testing::{CollectingSink, GeneratorSource, MemorySource};
use datatrace_core::{
    progress_channel, Batch, CancellationToken, Column, DataType, DeadLetterQueue, Emitter,
    ErrorPolicy, FileDeadLetterQueue, Op, Outcome, Part, Pipeline, PipelineConfig, Position,
    ProgressKind, RateLimit, Record, RunStatus, Schema, Sink, SinkError, Source, TransformError,
    UnitState, Value,
};
use tokio::sync::Semaphore;

/// Emits rows 0..n and counts every record handed to the emitter.
struct CountingSource {
    n: u64,
    emitted: Arc<AtomicU64>,
    inner: GeneratorSource,
}

#[async_trait]
impl Source for CountingSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..self.n {
            self.emitted.fetch_add(1, Ordering::SeqCst);
            out.emit(self.inner.row(i)).await?;
        }
        Ok(())
    }
}

/// A sink that writes only while it holds permits.
struct GatedSink {
    gate: Arc<Semaphore>,
    written: AtomicU64,
}

#[async_trait]
impl Sink for GatedSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| SinkError::Fatal(e.to_string().into()))?;
        drop(permit);
        self.written.fetch_add(batch.len() as u64, Ordering::SeqCst);
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_sink_stops_the_source_after_the_channels_fill() {
    let emitted = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let sink = Arc::new(GatedSink {
        gate: gate.clone(),
        written: AtomicU64::new(0),
    });
    let source = Arc::new(CountingSource {
        n: 20_000,
        emitted: emitted.clone(),
        inner: GeneratorSource::new(20_000, 4, 8),
    });
    let batch = 100u64;
    let config = PipelineConfig {
        batch_size: batch as usize,
        channel_capacity: 2,
        sink_concurrency: 2,
        ..Default::default()
    };
    let run = tokio::spawn(
        Pipeline::new("bp", source, sink.clone())
            .config(config)
            .run(),
    );

    // Wait until the source stalls: two samples 300 ms apart are equal, once the channels
    // have filled (a source merely slowed down by a loaded machine is not stalled).
    let mut last = u64::MAX;
    let started = Instant::now();
    let stalled_at = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = emitted.load(Ordering::SeqCst);
        if now == last && now >= batch * 3 {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the channels never filled: the source stopped at {now}"
        );
        last = now;
    };
    // Bound: the emitter's chunk + source channel (2) + the dispatcher's pending batch and the
    // one it is sending + worker channel (2) + one batch in each of 2 workers.
    let bound = batch * (1 + 2 + 2 + 2 + 2 + 1);
    println!("source stalled after {stalled_at} records (bound {bound})");
    assert!(
        stalled_at <= bound,
        "source ran ahead: {stalled_at} > {bound}"
    );
    assert!(
        stalled_at >= batch * 3,
        "the channels should fill: {stalled_at}"
    );
    assert_eq!(sink.written.load(Ordering::SeqCst), 0);

    // Resume the sink: everything flows to the end.
    gate.add_permits(1_000_000);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written, 20_000);
    assert_eq!(emitted.load(Ordering::SeqCst), 20_000);
}

/// Emits a few records, then waits for a signal before finishing.
struct SlowSource {
    release: Arc<tokio::sync::Notify>,
    inner: GeneratorSource,
}

#[async_trait]
impl Source for SlowSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..5 {
            out.emit(self.inner.row(i)).await?;
        }
        out.flush().await?;
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_partial_batch_is_written_after_the_linger_time() {
    let release = Arc::new(tokio::sync::Notify::new());
    let sink = Arc::new(CollectingSink::new());
    let source = Arc::new(SlowSource {
        release: release.clone(),
        inner: GeneratorSource::new(5, 2, 4),
    });
    let config = PipelineConfig {
        batch_size: 1000,
        linger: Duration::from_millis(50),
        ..Default::default()
    };
    let run = tokio::spawn(
        Pipeline::new("slow", source, sink.clone())
            .config(config)
            .run(),
    );
    // The source is still waiting, yet the 5 records arrive once the linger time has passed.
    let start = Instant::now();
    while sink.len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "linger never flushed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!run.is_finished());
    release.notify_one();
    assert_eq!(run.await.unwrap().unwrap().written, 5);
}

fn kv_schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(
            "kv",
            vec![
                Column::new("k", DataType::Int).not_null(),
                Column::new("v", DataType::Int),
            ],
        )
        .with_primary_key(&["k"])
        .unwrap(),
    )
}

/// Records writes per key, with random delays so workers finish out of order.
#[derive(Default)]
struct OrderSink {
    seen: Mutex<std::collections::HashMap<i64, Vec<i64>>>,
}

#[async_trait]
impl Sink for OrderSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2000))).await;
        let mut seen = self.seen.lock().unwrap();
        for r in &batch.records {
            seen.entry(r.values[0].as_i64().unwrap())
                .or_default()
                .push(r.values[1].as_i64().unwrap());
        }
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioning_by_key_keeps_the_order_of_each_key() {
    let schema = kv_schema();
    // 40 keys, 50 successive updates each, interleaved.
    let records: Vec<Record> = (0..50)
        .flat_map(|v| {
            let schema = schema.clone();
            (0..40).map(move |k| {
                Record::new(
                    Op::Update,
                    schema.clone(),
                    vec![Value::Int(k), Value::Int(v)],
                )
            })
        })
        .collect();
    let sink = Arc::new(OrderSink::default());
    let config = PipelineConfig {
        batch_size: 7,
        sink_concurrency: 4,
        partition_by_key: true,
        ..Default::default()
    };
    let report = Pipeline::new("kv", Arc::new(MemorySource::new(records)), sink.clone())
        .config(config)
        .run()
        .await
        .unwrap();
    assert_eq!(report.written, 2000);
    let seen = sink.seen.lock().unwrap();
    assert_eq!(seen.len(), 40);
    for (k, vs) in seen.iter() {
        assert_eq!(vs, &(0..50).collect::<Vec<_>>(), "key {k} out of order");
    }
}

#[tokio::test]
async fn record_rate_limit_slows_the_run() {
    let sink = Arc::new(CollectingSink::new());
    let config = PipelineConfig {
        batch_size: 50,
        rate_limit: RateLimit {
            records_per_sec: Some(400.0),
            bytes_per_sec: None,
        },
        ..Default::default()
    };
    let start = Instant::now();
    let report = Pipeline::new("rl", Arc::new(GeneratorSource::new(1000, 2, 4)), sink)
        .config(config)
        .run()
        .await
        .unwrap();
    // 400 records of burst, then 600 more at 400/s: at least 1.5 s. (Only a lower bound: a
    // busy machine can make it slower, never faster.)
    assert_eq!(report.written, 1000);
    assert!(
        start.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn progress_events_report_state_and_counts() {
    let (tx, mut rx) = progress_channel(1024);
    let config = PipelineConfig {
        batch_size: 100,
        progress_interval: Duration::from_millis(5),
        ..Default::default()
    };
    Pipeline::new(
        "p",
        Arc::new(GeneratorSource::new(5000, 3, 8)),
        Arc::new(CollectingSink::new()),
    )
    .job("j")
    .config(config)
    .progress(tx)
    .run()
    .await
    .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(matches!(
        events.first().unwrap().kind,
        ProgressKind::State {
            state: UnitState::Running,
            ..
        }
    ));
    assert!(matches!(
        events.last().unwrap().kind,
        ProgressKind::State {
            state: UnitState::Done,
            ..
        }
    ));
    let last_progress = events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            ProgressKind::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_progress.written, 5000);
    assert_eq!(last_progress.read, 5000);
    assert_eq!(last_progress.estimated_total, Some(5000));
    assert!(events.iter().all(|e| &*e.job == "j" && &*e.unit == "p"));
    let json = serde_json::to_string(&events.last().unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"job":"j","unit":"p","event":"state","state":"done"}"#
    );
}

/// Rejects odd ids in the transform stage.
fn reject_odd(r: Record) -> Result<Option<Record>, TransformError> {
    match r.values[0] {
        Value::Int(i) if i % 2 == 1 => Err(TransformError::new(
            r,
            format!("cast of field \"id\": {i} is odd"),
        )),
        _ => Ok(Some(r)),
    }
}

struct RejectOdd;
impl datatrace_core::Transform for RejectOdd {
    fn apply(&self, r: Record) -> Result<Option<Record>, TransformError> {
        reject_odd(r)
    }
}

#[tokio::test]
async fn transform_rejects_go_to_a_file_dead_letter_queue_and_replay() {
    let dir = std::env::temp_dir().join(format!("dt-dlq-{}", std::process::id()));
    let dlq = Arc::new(FileDeadLetterQueue::new(dir.join("dead.ndjson")));
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new("t", Arc::new(GeneratorSource::new(100, 3, 4)), sink.clone())
        .job("j")
        .transform(RejectOdd)
        .config(PipelineConfig {
            error_policy: ErrorPolicy::DeadLetter,
            ..Default::default()
        })
        .dead_letters(dlq.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(
        (report.written, report.rejected, report.dead_lettered),
        (50, 50, 50)
    );
    let entries = dlq.list().await.unwrap();
    assert_eq!(entries.len(), 50);
    let first = &entries[0];
    assert_eq!(
        (
            first.job.as_str(),
            first.unit.as_str(),
            first.stage.as_str()
        ),
        ("j", "t", "transform")
    );
    assert_eq!(first.error, "cast of field \"id\": 1 is odd");
    // The file is NDJSON: one entry per line, readable by other tools.
    let text = std::fs::read_to_string(dlq.path()).unwrap();
    assert_eq!(text.lines().count(), 50);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        line["record"]["values"][0],
        serde_json::json!({"type": "int", "value": 1})
    );

    // Replay into a sink that takes ids below 50 only: those leave the queue, the rest stay.
    struct Picky(CollectingSink);
    #[async_trait]
    impl Sink for Picky {
        async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
            self.0
                .write(&Batch::new(
                    batch
                        .records
                        .iter()
                        .filter(|r| r.values[0].as_i64().unwrap() < 50)
                        .cloned()
                        .collect(),
                ))
                .await?;
            Ok(batch
                .records
                .iter()
                .map(|r| match r.values[0].as_i64().unwrap() < 50 {
                    true => Outcome::Written,
                    false => Outcome::Rejected("still too big".into()),
                })
                .collect())
        }
    }
    let picky = Picky(CollectingSink::new());
    let replay = datatrace_core::dlq::replay(dlq.as_ref(), &picky, Some("t"), 8)
        .await
        .unwrap();
    assert_eq!((replay.written, replay.failed), (25, 25));
    assert_eq!(picky.0.len(), 25);
    let left = dlq.list().await.unwrap();
    assert_eq!(left.len(), 25);
    assert!(left
        .iter()
        .all(|e| e.attempts == 2 && e.error == "still too big"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn dead_letter_policy_without_a_queue_is_a_config_error() {
    let err = Pipeline::new(
        "t",
        Arc::new(GeneratorSource::new(1, 1, 1)),
        Arc::new(CollectingSink::new()),
    )
    .config(PipelineConfig {
        error_policy: ErrorPolicy::DeadLetter,
        ..Default::default()
    })
    .run()
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: unit t: error_policy dead-letter needs a dead-letter queue"
    );
    let err = Pipeline::new(
        "t",
        Arc::new(GeneratorSource::new(1, 1, 1)),
        Arc::new(CollectingSink::new()),
    )
    .config(PipelineConfig {
        batch_size: 0,
        ..Default::default()
    })
    .run()
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: batch_size must be at least 1"
    );
}

/// A sink whose write count tells how many calls were made; fails fatally when told.
struct CountingSink {
    calls: AtomicUsize,
    fail: bool,
}

#[async_trait]
impl Sink for CountingSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(SinkError::Fatal(
                "access denied for user 'x' (injected)".into(),
            ));
        }
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn a_fatal_sink_error_fails_at_once_with_the_unit_named() {
    let sink = Arc::new(CountingSink {
        calls: AtomicUsize::new(0),
        fail: true,
    });
    let err = Pipeline::new(
        "shop.orders",
        Arc::new(GeneratorSource::new(10_000, 2, 2)),
        sink.clone(),
    )
    .run()
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unit shop.orders: sink failed: access denied for user 'x' (injected)"
    );
    assert_eq!(
        sink.calls.load(Ordering::SeqCst),
        1,
        "fatal errors are not retried"
    );
}

/// A source that fails after some records.
struct BrokenSource(GeneratorSource);

#[async_trait]
impl Source for BrokenSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..10 {
            out.emit(self.0.row(i)).await?;
        }
        Err(datatrace_core::Error::source(
            "shop.orders",
            "lost connection to MySQL server during query",
        ))
    }
}

#[tokio::test]
async fn a_source_error_fails_the_unit_with_its_message() {
    let err = Pipeline::new(
        "shop.orders",
        Arc::new(BrokenSource(GeneratorSource::new(10, 2, 2))),
        Arc::new(CollectingSink::new()),
    )
    .run()
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unit shop.orders: source failed: lost connection to MySQL server during query"
    );
}

#[tokio::test]
async fn cancel_before_start_stops_gracefully_and_resume_completes() {
    let store: Arc<dyn datatrace_core::CheckpointStore> =
        Arc::new(datatrace_core::MemoryCheckpointStore::new());
    let token = CancellationToken::new();
    token.cancel();
    let sink = Arc::new(CollectingSink::new());
    let source = Arc::new(GeneratorSource::new(3000, 2, 2));
    let r = Pipeline::new("u", source.clone(), sink.clone())
        .checkpoints(store.clone())
        .cancel_token(token)
        .run()
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Stopped);
    let r = Pipeline::new("u", source.clone(), sink.clone())
        .checkpoints(store.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.resumed, r.written),
        (RunStatus::Completed, true, 3000)
    );
    let r = Pipeline::new("u", source, sink)
        .checkpoints(store)
        .run()
        .await
        .unwrap();
    assert_eq!((r.status, r.written), (RunStatus::AlreadyDone, 0));
}

/// Remembers the schema it was prepared with.
#[derive(Default)]
struct PreparedSink {
    schema: Mutex<Option<Arc<Schema>>>,
}

#[async_trait]
impl Sink for PreparedSink {
    async fn prepare(&self, ctx: &datatrace_core::PrepareContext) -> Result<(), SinkError> {
        *self.schema.lock().unwrap() = ctx.schema.clone();
        Ok(())
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn the_sink_is_prepared_with_the_schema_after_the_transforms() {
    use datatrace_core::transforms::{DropFields, Rename};
    let sink = Arc::new(PreparedSink::default());
    Pipeline::new("t", Arc::new(GeneratorSource::new(10, 4, 4)), sink.clone())
        .transform(Rename::new([("c1", "amount")]))
        .transform(DropFields::new(["c2"]))
        .transform(|r: Record| Some(r))
        .run()
        .await
        .unwrap();
    let schema = sink.schema.lock().unwrap().clone().unwrap();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "amount", "c3"]);
    assert_eq!(schema.primary_key_names(), ["id"]);

    // A transform that cannot handle the schema fails before anything is written.
    let err = Pipeline::new(
        "t",
        Arc::new(GeneratorSource::new(10, 4, 4)),
        Arc::new(PreparedSink::default()),
    )
    .transform(Rename::new([("nope", "x")]))
    .run()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("invalid configuration: unit t: transform 1: "),
        "{err}"
    );
    assert!(err.contains("\"nope\""), "{err}");
}

/// Records the size of every batch it gets.
#[derive(Default)]
struct SizeSink {
    sizes: Mutex<Vec<usize>>,
}

#[async_trait]
impl Sink for SizeSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        self.sizes.lock().unwrap().push(batch.len());
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn batches_also_close_on_bytes() {
    let sink = Arc::new(SizeSink::default());
    // Rows of id + one 100-character string: about 116 bytes each by the estimate.
    let source = Arc::new(GeneratorSource::new(1000, 3, 100));
    Pipeline::new("b", source, sink.clone())
        .config(PipelineConfig {
            batch_size: 1000,
            max_batch_bytes: Some(10_000),
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    let sizes = sink.sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
    assert!(sizes.len() > 5, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n < 100), "{sizes:?}");
}

/// Counts writes; slow, so a run lasts.
#[derive(Default)]
struct SlowCountSink {
    writes: AtomicUsize,
}

#[async_trait]
impl Sink for SlowCountSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_stops_its_tasks() {
    let sink = Arc::new(SlowCountSink::default());
    let run = Pipeline::new(
        "d",
        Arc::new(GeneratorSource::new(1_000_000, 2, 4)),
        sink.clone(),
    )
    .config(PipelineConfig {
        batch_size: 10,
        sink_concurrency: 2,
        ..Default::default()
    })
    .run();
    // Let it start, then drop the future.
    let _ = tokio::time::timeout(Duration::from_millis(100), run).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = sink.writes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.writes.load(Ordering::SeqCst),
        after_drop,
        "tasks kept writing"
    );
}

/// Writes a batch every 200 ms.
struct PacedSink;

#[async_trait]
impl Sink for PacedSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn the_rate_does_not_drop_to_zero_between_batches() {
    let (tx, mut rx) = progress_channel(4096);
    Pipeline::new(
        "paced",
        Arc::new(GeneratorSource::new(800, 2, 2)),
        Arc::new(PacedSink),
    )
    .config(PipelineConfig {
        batch_size: 100,
        progress_interval: Duration::from_millis(40),
        ..Default::default()
    })
    .progress(tx)
    .run()
    .await
    .unwrap();
    let mut rates = Vec::new();
    // Events with the same count as the one before: sent between two writes.
    let mut between = 0;
    let mut previous = None;
    while let Ok(e) = rx.try_recv() {
        if let ProgressKind::Progress(p) = e.kind {
            if p.written > 0 && p.written < 800 {
                rates.push(p.rate);
                if previous == Some(p.written) {
                    between += 1;
                }
                previous = Some(p.written);
            }
        }
    }
    // Events come about 5 times per write; measured over one interval those between writes
    // would say 0. (How many come depends on the machine's load; that some come between
    // writes, 200 ms apart, does not.)
    assert!(between >= 2, "{between} events between writes: {rates:?}");
    assert!(rates.iter().all(|&r| r > 0.0), "{rates:?}");
}

/// Emits ten changes committed five seconds ago, declares a checkpoint, then stays idle
/// (like a change stream with nothing new) until released.
struct IdleStream {
    release: Arc<tokio::sync::Notify>,
    inner: GeneratorSource,
}

#[async_trait]
impl Source for IdleStream {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 5000;
        for i in 0..10 {
            let mut r = self.inner.row(i);
            r.op = Op::Insert;
            r.position = Some(Position {
                state: serde_json::json!({ "pos": i }),
                ordinal: Some(i),
                ts_ms: Some(ts),
            });
            out.emit(r).await?;
        }
        out.checkpoint(Position::new(serde_json::json!({ "pos": 10 })))
            .await?;
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_saves_its_checkpoint_and_reports_no_lag() {
    let store: Arc<dyn datatrace_core::CheckpointStore> =
        Arc::new(datatrace_core::MemoryCheckpointStore::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (tx, mut rx) = progress_channel(4096);
    let run = tokio::spawn(
        Pipeline::new(
            "idle",
            Arc::new(IdleStream {
                release: release.clone(),
                inner: GeneratorSource::new(10, 2, 2),
            }),
            Arc::new(CollectingSink::new()),
        )
        .checkpoints(store.clone())
        .progress(tx)
        .config(PipelineConfig {
            linger: Duration::from_millis(10),
            checkpoint_interval: Duration::from_millis(300),
            progress_interval: Duration::from_millis(20),
            ..Default::default()
        })
        .run(),
    );
    // Nothing arrives after the checkpoint, yet it is saved once its interval has passed.
    let start = Instant::now();
    loop {
        let cp = store.load("default", "idle").await.unwrap();
        let pos = cp.and_then(|c| c.parts[0].position.clone());
        if pos.is_some_and(|p| p.state["pos"] == 10) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "checkpoint never saved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything read is written: the stream has caught up, and its progress says so with a
    // lag of 0, not 5 s (waiting for that event, not for a fixed time a loaded machine may
    // not give the progress ticker).
    let start = Instant::now();
    let mut last = None;
    loop {
        let left = Duration::from_secs(60).saturating_sub(start.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(e)) => {
                if let ProgressKind::Progress(p) = e.kind {
                    if p.written == 10 && p.lag_ms == Some(0) {
                        break;
                    }
                    last = Some(p);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("no progress with the lag at 0: {other:?}, last {last:?}"),
        }
    }
    release.notify_one();
    run.await.unwrap().unwrap();
}

/// Emits rows 0..n with a checkpoint after every 10, and notes which positions the runner
/// declares acknowledged, with how many records the sink had written by then.
struct AckedSource {
    inner: GeneratorSource,
    sink: Arc<CollectingSink>,
    acked: Mutex<Vec<(u64, usize)>>,
}

#[async_trait]
impl Source for AckedSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..200u64 {
            out.emit(self.inner.row(i)).await?;
            if i % 10 == 9 {
                out.checkpoint(Position::new((i + 1).into())).await?;
            }
        }
        Ok(())
    }

    async fn acknowledged(&self, _: &Part, position: &Position) {
        let upto = position.state.as_u64().unwrap();
        self.acked.lock().unwrap().push((upto, self.sink.len()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_hear_of_each_position_in_order_once_everything_before_it_is_written() {
    let sink = Arc::new(CollectingSink::new());
    let source = Arc::new(AckedSource {
        inner: GeneratorSource::new(200, 3, 8),
        sink: sink.clone(),
        acked: Mutex::new(Vec::new()),
    });
    Pipeline::new("acked", source.clone(), sink.clone())
        .config(PipelineConfig {
            batch_size: 7,
            sink_concurrency: 3,
            checkpoint_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    let acked = source.acked.lock().unwrap().clone();
    let positions: Vec<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(
        positions,
        (1..=20).map(|i| i * 10).collect::<Vec<_>>(),
        "all, in order, at once (not at checkpoint saves)"
    );
    for (upto, written) in acked {
        assert!(
            written as u64 >= upto,
            "position {upto} acknowledged with {written} written"
        );
    }
}

#[test]
fn default_parallelism_is_automatic_for_snapshots_and_ordered_for_streams() {
    let auto = datatrace_core::auto_parallelism();
    assert!((2..=4).contains(&auto), "{auto}");
    let c = PipelineConfig::default();
    assert_eq!((c.read_parallelism, c.sink_concurrency), (0, 0));
    // A snapshot (unordered source): several readers and writers.
    assert_eq!((c.readers(false), c.writers(false)), (auto, auto));
    // A change stream: one reader, one writer, unless partitioned by key.
    assert_eq!((c.readers(true), c.writers(true)), (1, 1));
    let partitioned = PipelineConfig {
        partition_by_key: true,
        ..Default::default()
    };
    assert_eq!(partitioned.writers(true), auto);
    // Set by hand: as set.
    let set = PipelineConfig {
        read_parallelism: 3,
        sink_concurrency: 5,
        ..Default::default()
    };
    assert_eq!((set.readers(true), set.writers(true)), (3, 5));
    assert!(set.validate().is_ok() && c.validate().is_ok());
}

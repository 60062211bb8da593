//! A sink that fails at random (transient and permanent failures) and runs cancelled at random
//! points, then resumed, over many seeds: every record ends up written or rejected exactly as
//! the error policy says, and no checkpoint ever passes a record that was not acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::testing::MemorySource;
use datatrace_core::{
    Batch, CancellationToken, CheckpointStore, Column, DataType, DeadLetterQueue, Error,
    ErrorPolicy, MemoryCheckpointStore, MemoryDeadLetterQueue, Outcome, Pipeline, PipelineConfig,
    Record, RetryPolicy, RunStatus, Schema, Sink, SinkError, UnitCheckpoint, UnitState, Value,
};

const N: usize = 1500;

fn records() -> Vec<Record> {
    let schema = Arc::new(
        Schema::new(
            "items",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("name", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    (0..N)
        .map(|i| {
            Record::read(
                schema.clone(),
                vec![Value::Int(i as i64), Value::from(format!("n{i}"))],
            )
        })
        .collect()
}

/// Every 37th record is bad data that the sink always rejects.
fn is_poison(id: i64) -> bool {
    id % 37 == 5
}

fn id_of(r: &Record) -> i64 {
    r.values[0].as_i64().unwrap()
}

#[derive(Default)]
struct Ledger {
    written: HashMap<i64, u32>,
    rejected: HashSet<i64>,
}

/// Fails whole batches transiently, makes single records retryable, rejects poison records,
/// and cancels the run after a random number of calls.
struct FlakySink {
    rng: Mutex<fastrand::Rng>,
    ledger: Arc<Mutex<Ledger>>,
    cancel: Mutex<Option<(CancellationToken, u32)>>,
}

#[async_trait]
impl Sink for FlakySink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let (delay, transient, dice): (u64, bool, Vec<u32>) = {
            let mut rng = self.rng.lock().unwrap();
            (
                rng.u64(0..300),
                rng.u32(0..10) == 0,
                batch.records.iter().map(|_| rng.u32(0..100)).collect(),
            )
        };
        {
            let mut c = self.cancel.lock().unwrap();
            if let Some((token, left)) = c.as_mut() {
                if *left == 0 {
                    token.cancel();
                } else {
                    *left -= 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_micros(delay)).await;
        if transient {
            return Err(SinkError::Transient("connection reset (injected)".into()));
        }
        let mut ledger = self.ledger.lock().unwrap();
        Ok(batch
            .records
            .iter()
            .zip(dice)
            .map(|(r, d)| {
                let id = id_of(r);
                if is_poison(id) {
                    ledger.rejected.insert(id);
                    Outcome::Rejected(format!("value out of range for id {id} (injected)").into())
                } else if d < 8 {
                    Outcome::Retryable("429 too many requests (injected)".into())
                } else {
                    *ledger.written.entry(id).or_default() += 1;
                    Outcome::Written
                }
            })
            .collect())
    }
}

/// Checks at every save that the checkpoint covers only acknowledged records.
struct VerifyingStore {
    inner: MemoryCheckpointStore,
    ledger: Arc<Mutex<Ledger>>,
    saves: Mutex<u32>,
}

fn covered(cp: &UnitCheckpoint) -> Vec<usize> {
    let mut out = Vec::new();
    for p in &cp.parts {
        let from = p.part.spec["from"].as_u64().unwrap() as usize;
        let to = p.part.spec["to"].as_u64().unwrap() as usize;
        let upto = if p.done {
            to
        } else {
            p.position
                .as_ref()
                .map_or(from, |pos| pos.state["next"].as_u64().unwrap() as usize)
        };
        out.extend(from..upto);
    }
    out
}

#[async_trait]
impl CheckpointStore for VerifyingStore {
    async fn load(&self, job: &str, unit: &str) -> datatrace_core::Result<Option<UnitCheckpoint>> {
        self.inner.load(job, unit).await
    }
    async fn save(&self, job: &str, unit: &str, cp: &UnitCheckpoint) -> datatrace_core::Result<()> {
        {
            let ledger = self.ledger.lock().unwrap();
            for i in covered(cp) {
                let id = i as i64;
                assert!(
                    ledger.written.contains_key(&id) || ledger.rejected.contains(&id),
                    "checkpoint passes record {id}, which was never acknowledged"
                );
            }
        }
        *self.saves.lock().unwrap() += 1;
        self.inner.save(job, unit, cp).await
    }
    async fn clear(&self, job: &str, unit: &str) -> datatrace_core::Result<()> {
        self.inner.clear(job, unit).await
    }
    async fn list(&self, job: &str) -> datatrace_core::Result<Vec<(String, UnitCheckpoint)>> {
        self.inner.list(job).await
    }
}

struct Outcomes {
    ledger: Arc<Mutex<Ledger>>,
    dlq: Arc<MemoryDeadLetterQueue>,
    runs: u32,
    last_error: Option<Error>,
}

async fn run_until_done(seed: u64, policy: ErrorPolicy, max_runs: u32) -> Outcomes {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let store = Arc::new(VerifyingStore {
        inner: MemoryCheckpointStore::new(),
        ledger: ledger.clone(),
        saves: Mutex::new(0),
    });
    let dlq = Arc::new(MemoryDeadLetterQueue::new());
    let source = Arc::new(MemorySource::new(records()).checkpoint_every(7));
    let mut rng = fastrand::Rng::with_seed(seed);
    let config = PipelineConfig {
        batch_size: 1 + rng.usize(0..60),
        linger: Duration::from_millis(rng.u64(1..20)),
        channel_capacity: 1 + rng.usize(0..3),
        max_parts: 1 + rng.usize(0..5),
        read_parallelism: 1 + rng.usize(0..3),
        sink_concurrency: 1 + rng.usize(0..4),
        partition_by_key: rng.bool(),
        retry: RetryPolicy::new(1000, Duration::from_micros(200), Duration::from_millis(2)),
        error_policy: policy,
        checkpoint_interval: Duration::ZERO,
        ..Default::default()
    };
    let mut runs = 0;
    let mut last_error = None;
    while runs < max_runs {
        runs += 1;
        let token = CancellationToken::new();
        // Cancel after a random number of sink calls in most runs; let the last ones finish.
        let cancel_after = (runs < max_runs - 2).then(|| rng.u32(0..40));
        let sink = Arc::new(FlakySink {
            rng: Mutex::new(fastrand::Rng::with_seed(seed * 1000 + runs as u64)),
            ledger: ledger.clone(),
            cancel: Mutex::new(cancel_after.map(|n| (token.clone(), n))),
        });
        let mut p = Pipeline::new("items", source.clone(), sink)
            .job(format!("chaos-{seed}"))
            .config(config.clone())
            .checkpoints(store.clone())
            .cancel_token(token);
        if policy == ErrorPolicy::DeadLetter {
            p = p.dead_letters(dlq.clone());
        }
        match p.run().await {
            Ok(r) if r.status == RunStatus::Completed || r.status == RunStatus::AlreadyDone => {
                break
            }
            Ok(r) => assert_eq!(r.status, RunStatus::Stopped),
            Err(e) => {
                last_error = Some(e);
                if policy == ErrorPolicy::Fail {
                    break;
                }
            }
        }
    }
    Outcomes {
        ledger,
        dlq,
        runs,
        last_error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_policy_loses_nothing_over_many_seeds() {
    let mut resumed_seeds = 0;
    for seed in 0..24 {
        let o = run_until_done(seed, ErrorPolicy::DeadLetter, 30).await;
        assert!(o.last_error.is_none(), "seed {seed}: {:?}", o.last_error);
        let written: HashSet<i64> = o.ledger.lock().unwrap().written.keys().copied().collect();
        let good: HashSet<i64> = (0..N as i64).filter(|&i| !is_poison(i)).collect();
        let poison: HashSet<i64> = (0..N as i64).filter(|&i| is_poison(i)).collect();
        assert_eq!(written, good, "seed {seed}: written set");
        let dead: HashSet<i64> = o
            .dlq
            .list()
            .await
            .unwrap()
            .iter()
            .map(|d| id_of(&d.record))
            .collect();
        assert_eq!(dead, poison, "seed {seed}: dead letters");
        for d in o.dlq.list().await.unwrap() {
            assert!(d.error.contains("out of range"), "{}", d.error);
            assert!(d.attempts >= 1);
            assert_eq!(d.stage, "sink");
        }
        if o.runs > 1 {
            resumed_seeds += 1;
        }
    }
    // Most seeds were cancelled at least once and resumed.
    assert!(resumed_seeds >= 12, "only {resumed_seeds} seeds resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_policy_writes_the_rest_and_keeps_no_dead_letters() {
    for seed in 100..116 {
        let o = run_until_done(seed, ErrorPolicy::Skip, 30).await;
        assert!(o.last_error.is_none(), "seed {seed}: {:?}", o.last_error);
        let written: HashSet<i64> = o.ledger.lock().unwrap().written.keys().copied().collect();
        let good: HashSet<i64> = (0..N as i64).filter(|&i| !is_poison(i)).collect();
        assert_eq!(written, good, "seed {seed}");
        assert!(o.dlq.list().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_policy_stops_and_never_checkpoints_past_the_bad_record() {
    for seed in 200..212 {
        let o = run_until_done(seed, ErrorPolicy::Fail, 30).await;
        let err = o
            .last_error
            .expect("a poison record must fail the unit")
            .to_string();
        assert!(err.contains("unit items: record with key"), "{err}");
        assert!(err.contains("(sink): value out of range for id"), "{err}");
        // The verifying store asserted at every save that nothing unacknowledged was passed.
    }
}

#[tokio::test]
async fn failed_unit_is_marked_failed_with_its_error() {
    let store = Arc::new(MemoryCheckpointStore::new());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let sink = Arc::new(FlakySink {
        rng: Mutex::new(fastrand::Rng::with_seed(1)),
        ledger,
        cancel: Mutex::new(None),
    });
    let err = Pipeline::new("items", Arc::new(MemorySource::new(records())), sink)
        .checkpoints(store.clone())
        .config(PipelineConfig {
            retry: RetryPolicy::new(100, Duration::from_micros(100), Duration::from_millis(1)),
            ..Default::default()
        })
        .run()
        .await
        .unwrap_err();
    let cp = store.load("default", "items").await.unwrap().unwrap();
    assert_eq!(cp.state, UnitState::Failed);
    assert_eq!(cp.error.as_deref(), Some(err.to_string().as_str()));
}

//! Jobs: concurrency limit, per-unit state, resume skipping done units.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::testing::{CollectingSink, GeneratorSource};
use datatrace_core::{
    Batch, CheckpointStore, FileCheckpointStore, Job, Outcome, Sink, SinkError, UnitSpec, UnitState,
};

/// Tracks how many units write at the same time; can be told to fail.
struct TrackingSink {
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
    fail: AtomicBool,
    inner: CollectingSink,
}

#[async_trait]
impl Sink for TrackingSink {
    async fn prepare(&self, _: &datatrace_core::PrepareContext) -> Result<(), SinkError> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        Ok(())
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.fail.load(Ordering::SeqCst) {
            self.active.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::Fatal("table is read only (injected)".into()));
        }
        self.inner.write(batch).await
    }
    async fn finish(&self) -> Result<(), SinkError> {
        self.active.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_job_skips_done_units_and_resumes_failed_ones() {
    let dir = std::env::temp_dir().join(format!("dt-job-{}", std::process::id()));
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&dir));
    let active = Arc::new(AtomicUsize::new(0));
    let max_active = Arc::new(AtomicUsize::new(0));
    let sinks: Vec<Arc<TrackingSink>> = (0..5)
        .map(|i| {
            Arc::new(TrackingSink {
                active: active.clone(),
                max_active: max_active.clone(),
                fail: AtomicBool::new(i == 3),
                inner: CollectingSink::new(),
            })
        })
        .collect();
    let build = || {
        let mut job = Job::new("copy").concurrency(2).checkpoints(store.clone());
        for (i, s) in sinks.iter().enumerate() {
            job = job.unit(UnitSpec::new(
                format!("t{i}"),
                Arc::new(GeneratorSource::new(2000, 3, 8)),
                s.clone(),
            ));
        }
        job
    };
    let report = build().run().await.unwrap();
    assert!(
        max_active.load(Ordering::SeqCst) <= 2,
        "concurrency limit exceeded"
    );
    assert!(report.has_failures());
    let states: Vec<UnitState> = report.units.iter().map(|u| u.state).collect();
    assert_eq!(
        states,
        [
            UnitState::Done,
            UnitState::Done,
            UnitState::Done,
            UnitState::Failed,
            UnitState::Done
        ]
    );
    assert_eq!(
        report.units[3].error.as_deref(),
        Some("unit t3: sink failed: table is read only (injected)")
    );
    let cp = store.load("copy", "t3").await.unwrap().unwrap();
    assert_eq!(cp.state, UnitState::Failed);

    // Fix the sink and run again: done units are not touched, t3 completes.
    sinks[3].fail.store(false, Ordering::SeqCst);
    let before: Vec<usize> = sinks.iter().map(|s| s.inner.len()).collect();
    let report = build().run().await.unwrap();
    assert!(report.is_complete());
    for (i, s) in sinks.iter().enumerate() {
        if i == 3 {
            assert_eq!(s.inner.len(), 2000);
            assert!(report.units[i].report.as_ref().unwrap().resumed);
        } else {
            assert_eq!(s.inner.len(), before[i], "unit t{i} was redone");
        }
    }
    assert_eq!(report.written(), 2000);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn duplicate_unit_names_are_rejected() {
    let s = Arc::new(CollectingSink::new());
    let g = Arc::new(GeneratorSource::new(1, 1, 1));
    let err = Job::new("j")
        .unit(UnitSpec::new("a", g.clone(), s.clone()))
        .unit(UnitSpec::new("a", g, s))
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: job j: unit \"a\" appears twice"
    );
}

/// Records the order in which units start.
struct OrderSink {
    name: String,
    started: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait]
impl Sink for OrderSink {
    async fn prepare(&self, _: &datatrace_core::PrepareContext) -> Result<(), SinkError> {
        self.started.lock().unwrap().push(self.name.clone());
        Ok(())
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::task::yield_now().await;
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_start_in_the_order_they_were_added() {
    // A unit that waits for the ones before it (a change stream waiting for its snapshots)
    // must never take the only slot first.
    for round in 0..10 {
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let names: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
        let mut job = Job::new(format!("order-{round}")).concurrency(1);
        for n in &names {
            job = job.unit(UnitSpec::new(
                n.clone(),
                Arc::new(GeneratorSource::new(50, 2, 2)),
                Arc::new(OrderSink {
                    name: n.clone(),
                    started: started.clone(),
                }),
            ));
        }
        assert!(job.run().await.unwrap().is_complete());
        assert_eq!(*started.lock().unwrap(), names, "round {round}");
    }
}

//! The committer's channel is bounded: a checkpoint store that stops answering stops the
//! source soon after, instead of letting acknowledgements and marks queue without limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    CheckpointStore, Emitter, MemoryCheckpointStore, Part, Pipeline, PipelineConfig, Position,
    RunStatus, Source, UnitCheckpoint,
};
use tokio::sync::Semaphore;

/// Declares `n` checkpoints and nothing else, counting them.
struct CheckpointingSource {
    n: u64,
    declared: Arc<AtomicU64>,
}

#[async_trait]
impl Source for CheckpointingSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..self.n {
            out.checkpoint(Position::new(serde_json::json!(i))).await?;
            self.declared.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A store whose saves wait for permits (the first one, the run's start, passes).
struct GatedStore {
    gate: Semaphore,
    inner: MemoryCheckpointStore,
    saves: AtomicU64,
}

#[async_trait]
impl CheckpointStore for GatedStore {
    async fn load(&self, job: &str, unit: &str) -> datatrace_core::Result<Option<UnitCheckpoint>> {
        self.inner.load(job, unit).await
    }
    async fn save(&self, job: &str, unit: &str, cp: &UnitCheckpoint) -> datatrace_core::Result<()> {
        if self.saves.fetch_add(1, Ordering::SeqCst) > 0 {
            self.gate.acquire().await.expect("open").forget();
        }
        self.inner.save(job, unit, cp).await
    }
    async fn clear(&self, job: &str, unit: &str) -> datatrace_core::Result<()> {
        self.inner.clear(job, unit).await
    }
    async fn list(&self, job: &str) -> datatrace_core::Result<Vec<(String, UnitCheckpoint)>> {
        self.inner.list(job).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_checkpoint_store_stops_the_source() {
    let n = 200_000;
    let declared = Arc::new(AtomicU64::new(0));
    let store = Arc::new(GatedStore {
        gate: Semaphore::new(0),
        inner: MemoryCheckpointStore::new(),
        saves: AtomicU64::new(0),
    });
    let run = tokio::spawn(
        Pipeline::new(
            "marks",
            Arc::new(CheckpointingSource {
                n,
                declared: declared.clone(),
            }),
            Arc::new(CollectingSink::new()),
        )
        .checkpoints(store.clone())
        .config(PipelineConfig {
            checkpoint_interval: Duration::ZERO,
            ..Default::default()
        })
        .run(),
    );
    // Wait until the source stops moving.
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = declared.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(
        last < 10_000,
        "the source declared {last} of {n} checkpoints while the store was stalled"
    );
    store.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(declared.load(Ordering::SeqCst), n);
    let cp = store.inner.load("default", "marks").await.unwrap().unwrap();
    assert_eq!(
        cp.parts[0].position.as_ref().map(|p| p.state.clone()),
        Some(serde_json::json!(n - 1))
    );
}

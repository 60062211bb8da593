//! CDC latency by default: a batch closes at the end of each source transaction (a checkpoint)
//! when nothing more is waiting, instead of lingering; run with tokio's paused clock, so the
//! time a batch waited is exact and the test has no wall-clock limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::testing::GeneratorSource;
use datatrace_core::{
    Batch, Emitter, Outcome, Part, Pipeline, PipelineConfig, Position, Sink, SinkError, Source,
};
use tokio::sync::Notify;
use tokio::time::Instant;

const LINGER: Duration = Duration::from_secs(3600);

/// Three transactions of `size` rows, each followed by a checkpoint; after each it waits until
/// the sink has written it (as a change stream waits for the next event).
struct Transactions {
    rows: GeneratorSource,
    size: u64,
    written: Arc<Notify>,
    sent_at: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait]
impl Source for Transactions {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for tx in 0..3u64 {
            for i in 0..self.size {
                out.emit(self.rows.row(tx * self.size + i)).await?;
            }
            self.sent_at.lock().unwrap().push(Instant::now());
            out.checkpoint(Position::of(&serde_json::json!({ "tx": tx })))
                .await?;
            self.written.notified().await;
        }
        Ok(())
    }
}

/// Records when each batch arrives, and wakes the source.
struct Clocked {
    written: Arc<Notify>,
    batches: Mutex<Vec<(Instant, usize)>>,
}

#[async_trait]
impl Sink for Clocked {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        self.batches
            .lock()
            .unwrap()
            .push((Instant::now(), batch.len()));
        self.written.notify_one();
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test(start_paused = true)]
async fn a_caught_up_stream_writes_each_transaction_without_lingering() {
    let written = Arc::new(Notify::new());
    let sent_at = Arc::new(Mutex::new(Vec::new()));
    let source = Arc::new(Transactions {
        rows: GeneratorSource::new(3 * 7, 3, 8),
        size: 7,
        written: written.clone(),
        sent_at: sent_at.clone(),
    });
    let sink = Arc::new(Clocked {
        written,
        batches: Mutex::new(Vec::new()),
    });
    let report = Pipeline::new("linger", source, sink.clone())
        .config(PipelineConfig {
            batch_size: 1000,
            linger: LINGER,
            ..Default::default()
        })
        .run()
        .await
        .expect("run");
    assert_eq!(report.written, 21);
    let batches = sink.batches.lock().unwrap().clone();
    let sent_at = sent_at.lock().unwrap().clone();
    assert_eq!(
        batches.iter().map(|b| b.1).collect::<Vec<_>>(),
        vec![7, 7, 7],
        "one batch per transaction"
    );
    for ((at, _), sent) in batches.iter().zip(&sent_at) {
        let waited = at.duration_since(*sent);
        assert!(
            waited < LINGER,
            "a transaction waited {waited:?} for the linger ({LINGER:?}) although the stream was caught up"
        );
    }
}

//! Batches close by bytes with the default settings: wide rows make batches of fewer rows, so
//! memory and request sizes stay bounded whatever `batch_size` says.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datatrace_core::builtin::GeneratorSource;
use datatrace_core::{
    Batch, Outcome, Pipeline, PipelineConfig, Sink, SinkError, DEFAULT_MAX_BATCH_BYTES,
};

/// Records (rows, estimated bytes, widest row) of every batch it gets.
#[derive(Default)]
struct BytesSink {
    batches: Mutex<Vec<(usize, usize, usize)>>,
}

#[async_trait]
impl Sink for BytesSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let widest = batch
            .records
            .iter()
            .map(|r| r.approx_size())
            .max()
            .unwrap_or(0);
        self.batches
            .lock()
            .unwrap()
            .push((batch.len(), batch.approx_size(), widest));
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn wide_rows_make_smaller_batches_by_default() {
    let config = PipelineConfig::default();
    assert_eq!(config.max_batch_bytes, Some(DEFAULT_MAX_BATCH_BYTES));
    let sink = Arc::new(BytesSink::default());
    // 300 rows with a 200,000-character string each: 60 MB in all, 200 MB in one batch of
    // the default 1,000 rows if batches closed by count only.
    let source = Arc::new(GeneratorSource::new(300, 3, 200_000));
    let report = Pipeline::new("wide", source, sink.clone())
        .config(config.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(report.written, 300);
    let batches = sink.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().map(|b| b.0).sum::<usize>(), 300);
    for &(rows, bytes, widest) in &batches {
        // A batch closes at the row that reaches the limit: at most one row above it.
        assert!(
            bytes < DEFAULT_MAX_BATCH_BYTES + widest,
            "a batch of {rows} rows and {bytes} bytes: {batches:?}"
        );
        assert!(rows < config.batch_size, "{batches:?}");
    }
    assert!(
        batches.len() >= 300 * 200_000 / DEFAULT_MAX_BATCH_BYTES,
        "{batches:?}"
    );
}

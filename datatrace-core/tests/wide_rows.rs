//! Batches close by bytes with the default settings: wide rows, and rows of many columns,
//! make batches of fewer rows, so memory and request sizes stay bounded whatever
//! `batch_size` says.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datatrace_core::builtin::GeneratorSource;
use datatrace_core::{
    Batch, Outcome, Pipeline, PipelineConfig, Sink, SinkError, DEFAULT_MAX_BATCH_BYTES,
};

/// Records (rows, estimated bytes, widest row) of every batch it gets, and (rows, estimated
/// memory, largest row's) by [`datatrace_core::Record::footprint`].
#[derive(Default)]
struct BytesSink {
    batches: Mutex<Vec<(usize, usize, usize)>>,
    footprints: Mutex<Vec<(usize, usize, usize)>>,
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
        let sizes = batch.records.iter().map(|r| r.footprint());
        self.footprints.lock().unwrap().push((
            batch.len(),
            sizes.clone().sum(),
            sizes.max().unwrap_or(0),
        ));
        Ok(vec![Outcome::Written; batch.len()])
    }
}

/// Runs `rows` generated rows through a pipeline with the default settings; returns the sink
/// with what it saw of each batch.
async fn copy_with_defaults(name: &str, source: GeneratorSource, rows: u64) -> Arc<BytesSink> {
    let sink = Arc::new(BytesSink::default());
    let report = Pipeline::new(name, Arc::new(source), sink.clone())
        .config(PipelineConfig::default())
        .run()
        .await
        .unwrap();
    assert_eq!(report.written, rows);
    sink
}

#[tokio::test]
async fn wide_rows_make_smaller_batches_by_default() {
    let config = PipelineConfig::default();
    assert_eq!(config.max_batch_bytes, Some(DEFAULT_MAX_BATCH_BYTES));
    // 300 rows with a 200,000-character string each: 60 MB in all, 600 MB in one batch of
    // the default 3,000 rows if batches closed by count only.
    let sink = copy_with_defaults("wide", GeneratorSource::new(300, 3, 200_000), 300).await;
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

#[tokio::test]
async fn rows_of_many_small_values_count_their_memory() {
    // 400 short values a row: about 2.4 KB of data, but 40 bytes of slot each in memory, so
    // about 18 KB a row. Counted by data alone, a batch would close at about 1,700 rows and
    // hold 30 MB.
    let sink = copy_with_defaults("many", GeneratorSource::new(3000, 400, 1), 3000).await;
    let batches = sink.footprints.lock().unwrap().clone();
    assert_eq!(batches.iter().map(|b| b.0).sum::<usize>(), 3000);
    for &(rows, memory, largest) in &batches {
        assert!(
            memory < DEFAULT_MAX_BATCH_BYTES + largest,
            "a batch of {rows} rows and {memory} bytes in memory: {batches:?}"
        );
    }
    assert!(
        batches.len() >= 3000 * 16_000 / DEFAULT_MAX_BATCH_BYTES,
        "{batches:?}"
    );
}

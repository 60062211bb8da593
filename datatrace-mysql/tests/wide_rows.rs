//! Very wide rows (large BLOB and TEXT values) with the default settings: batches close by
//! bytes (`max_batch_bytes`, 4 MiB) instead of at 1,000 rows, so the bulk path's in-memory
//! file and the `INSERT` path's statements stay bounded, and every byte arrives.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use datatrace_core::{
    Batch, Outcome, Pipeline, PipelineConfig, PrepareContext, Sink, SinkError,
    DEFAULT_MAX_BATCH_BYTES,
};
use datatrace_mysql::{MySqlSink, SinkOptions, SourceOptions};

/// Forwards to a MySQL sink and records (rows, estimated bytes, widest row) per batch.
struct Measured {
    inner: Arc<MySqlSink>,
    batches: Mutex<Vec<(usize, usize, usize)>>,
}

#[async_trait]
impl Sink for Measured {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(ctx).await
    }
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
        self.inner.write(batch).await
    }
    async fn finish(&self) -> Result<(), SinkError> {
        self.inner.finish().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wide_rows_go_in_batches_bounded_by_bytes() {
    let src = db().create_database("wide_src");
    // 40 rows of a 600 kB BLOB (NUL, newline, backslash, tab, 0xFF, CR bytes) and a 600 kB text: 48 MB in all, one batch
    // of 1,000 rows by count alone.
    exec(&format!(
        "USE `{src}`; CREATE TABLE w (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT, n INT) DEFAULT CHARSET=utf8mb4;
         INSERT INTO w SELECT seq, REPEAT(UNHEX(CONCAT(LPAD(HEX(seq), 2, '0'), '000A5C09FF0D4E')), 600000 DIV 8),
           RPAD(CONCAT('row ', seq, ' é\\t\\\\N '), 600000, 'wide text '), seq FROM seq_1_to_40"
    ));
    for load_data in [true, false] {
        let dst = db().create_database("wide_dst");
        let k = sink(
            &dst,
            SinkOptions {
                create_table: true,
                load_data,
                ..Default::default()
            },
        )
        .await;
        let measured = Arc::new(Measured {
            inner: k.clone(),
            batches: Mutex::new(Vec::new()),
        });
        let config = PipelineConfig::default();
        let report = Pipeline::new(
            format!("{src}.w"),
            source(&src, "w", SourceOptions::default()).await,
            measured.clone(),
        )
        .config(config.clone())
        .run()
        .await
        .expect("copy");
        assert_eq!(
            (report.written, report.rejected),
            (40, 0),
            "load_data {load_data}"
        );
        assert_eq!(k.loaded_rows(), if load_data { 40 } else { 0 });
        assert_same(&src, &dst, "w", "id");
        let batches = measured.batches.lock().unwrap().clone();
        assert!(batches.len() >= 10, "{batches:?}");
        for &(rows, bytes, widest) in &batches {
            assert!(
                bytes < DEFAULT_MAX_BATCH_BYTES + widest && rows < config.batch_size,
                "load_data {load_data}: a batch of {rows} rows, {bytes} bytes: {batches:?}"
            );
        }
    }
}

//! Pipeline overhead: generator -> one transform -> discarding sink, 10-column rows.
//!
//! Run with `cargo bench --bench pipeline`. Everything runs on a single-threaded tokio runtime,
//! so the numbers are records per second on one core.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datatrace::testing::{DiscardSink, GeneratorSource};
use datatrace::{Pipeline, PipelineConfig, Record, Value};

const ROWS: u64 = 200_000;

fn bench_pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for batch in [1usize, 100, 1000] {
        for workers in [1usize, 4] {
            let rows = if batch == 1 { ROWS / 10 } else { ROWS };
            group.throughput(Throughput::Elements(rows));
            let id = BenchmarkId::new(format!("batch{batch}"), format!("workers{workers}"));
            group.bench_with_input(id, &(batch, workers), |b, &(batch, workers)| {
                b.to_async(&rt).iter(|| async move {
                    let sink = Arc::new(DiscardSink::new());
                    let config = PipelineConfig {
                        batch_size: batch,
                        sink_concurrency: workers,
                        ..Default::default()
                    };
                    // One cheap transform: negate the first int column.
                    let negate = |mut r: Record| {
                        if let Value::Int(i) = r.values[1] {
                            r.values[1] = Value::Int(-i);
                        }
                        Some(r)
                    };
                    let report = Pipeline::new(
                        "bench",
                        Arc::new(GeneratorSource::new(rows, 10, 16)),
                        sink.clone(),
                    )
                    .transform(negate)
                    .config(config)
                    .run()
                    .await
                    .expect("run");
                    assert_eq!(report.written, rows);
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);

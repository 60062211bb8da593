//! Adaptive concurrency (`cargo test -p datatrace-es --test adaptive_concurrency`), against
//! the real engine behind the fault proxy, which holds each request 40 ms (a remote cluster)
//! and takes at most 3 requests at once, answering more with 429
//! `es_rejected_execution_exception` like a full write queue. The sink's limit grows past
//! its start, halves at the rejections and stays near the capacity: a fraction of the
//! rejections a fixed limit of 16 gets, and every document lands exactly once in both runs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use datatrace_core::testing::GeneratorSource;
use datatrace_core::{Pipeline, PipelineConfig, RetryPolicy, RunStatus};
use datatrace_es::{EsSink, SinkConfig, SinkStats};
use datatrace_testkit::{engine, unique_name, FaultProxy};

const ROWS: u64 = 20_000;

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

/// Copies `ROWS` generated rows through `proxy` into a new index; returns the sink's
/// counters and the rejections the proxy answered.
async fn copy(proxy: &FaultProxy, adaptive: bool) -> (SinkStats, u64) {
    let index = unique_name(if adaptive {
        "arc-adaptive"
    } else {
        "arc-fixed"
    });
    let mut c = conn(&proxy.url());
    c.retry = quick_retries();
    let sink = Arc::new(
        EsSink::connect(
            &c,
            SinkConfig {
                index: index.clone(),
                max_docs: 100,
                max_in_flight: 16,
                adaptive_concurrency: adaptive,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    // The index exists before the faults start: only bulk requests meet them.
    proxy.clear();
    let before = proxy.stats().injected;
    proxy.set_latency(Duration::from_millis(40));
    proxy.set_capacity(Some(3));
    let report = Pipeline::new(
        index.as_str(),
        Arc::new(GeneratorSource::new(ROWS, 6, 40)),
        sink.clone(),
    )
    .config(PipelineConfig {
        batch_size: 1000,
        sink_concurrency: 2,
        retry: quick_retries(),
        ..Default::default()
    })
    .run()
    .await
    .expect("rejections never fail the copy");
    let injected = proxy.stats().injected - before;
    proxy.clear();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written, ROWS);
    assert_eq!(all_docs(&index).len() as u64, ROWS, "index {index}");
    assert_eq!(count(&index), ROWS, "duplicates in {index}");
    (sink.stats(), injected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_concurrency_backs_off_under_429s_and_lands_everything_once() {
    let proxy = FaultProxy::start(engine().addr());
    let (adaptive, adaptive_rejected) = copy(&proxy, true).await;
    let (fixed, fixed_rejected) = copy(&proxy, false).await;
    eprintln!(
        "adaptive: {adaptive:?}, {adaptive_rejected} rejected; fixed: {fixed:?}, {fixed_rejected} rejected"
    );
    // Adaptive: grew from 2, met the capacity, halved, and never went past the max.
    assert!(adaptive.concurrency_highest > 2, "{adaptive:?}");
    assert!(adaptive.concurrency_highest <= 16, "{adaptive:?}");
    assert!(adaptive.concurrency_decreases > 0, "{adaptive:?}");
    assert!(adaptive_rejected > 0, "the capacity was never reached");
    // Fixed: 16 all along, so most requests above the capacity are rejected.
    assert_eq!(fixed.concurrency_decreases, 0);
    assert_eq!((fixed.concurrency_lowest, fixed.concurrency), (16, 16));
    assert!(
        adaptive_rejected * 2 < fixed_rejected,
        "adaptive {adaptive_rejected} rejections, fixed {fixed_rejected}"
    );
}

//! Back-pressure is not failure (`cargo test back_pressure`), against the real engine behind
//! the fault proxy, with the pipelines' default retry budget (10 minutes per batch, any
//! number of attempts; only the backoff steps are shortened to keep the test quick):
//! 30% of bulk requests answered 429 or 503 for a whole copy of 20,000 documents; a 4-second
//! outage of 429s with `Retry-After: 1`, which the retries honour (a budget of 10 attempts
//! per record, the old default, gave up after about a second of this); and a search engine
//! that loses every connection for 3 seconds (a restart). Every document lands exactly once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use datatrace_core::testing::GeneratorSource;
use datatrace_core::{Pipeline, PipelineConfig, RateLimit, RetryPolicy, RunStatus};
use datatrace_es::{EsSink, SinkConfig};
use datatrace_testkit::{engine, unique_name, FaultProxy};

/// The default policy (time budget, unbounded attempts) with short backoff steps.
fn default_budget() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

async fn copy(
    proxy: &FaultProxy,
    index: &str,
    rows: u64,
    rate: Option<f64>,
) -> datatrace_core::RunReport {
    let mut c = conn(&proxy.url());
    c.retry = default_budget();
    let sink = EsSink::connect(
        &c,
        SinkConfig {
            index: index.into(),
            max_docs: 100,
            max_in_flight: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Pipeline::new(
        index,
        Arc::new(GeneratorSource::new(rows, 6, 40)),
        Arc::new(sink),
    )
    .config(PipelineConfig {
        batch_size: 500,
        sink_concurrency: 2,
        retry: default_budget(),
        rate_limit: RateLimit {
            records_per_sec: rate,
            bytes_per_sec: None,
        },
        ..Default::default()
    })
    .run()
    .await
    .expect("back-pressure never fails the copy")
}

fn landed_once(index: &str, rows: u64) {
    assert_eq!(all_docs(index).len() as u64, rows, "index {index}");
    assert_eq!(count(index), rows, "duplicates in {index}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_30_percent_429_and_503_never_fail_a_unit() {
    let proxy = FaultProxy::start(engine().addr());
    let rows = 20_000;
    for status in [429, 503] {
        let index = unique_name(&format!("bp-{status}"));
        proxy.clear();
        proxy.set_http_error_rate(status, 0.3);
        let report = copy(&proxy, &index, rows, None).await;
        proxy.clear();
        assert_eq!(report.status, RunStatus::Completed);
        assert_eq!(report.written, rows);
        assert!(report.retried > 0, "{status}: nothing was retried");
        landed_once(&index, rows);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_an_outage_with_retry_after_is_waited_out() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("bp-outage");
    let rows = 3000;
    proxy.set_http_error_rate(429, 1.0);
    proxy.set_retry_after(Some(1));
    let outage = {
        let started = std::time::Instant::now();
        async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            started.elapsed()
        }
    };
    let copy = copy(&proxy, &index, rows, None);
    tokio::pin!(copy);
    // The copy cannot finish during the outage; then the proxy lets everything through.
    let report = tokio::select! {
        r = &mut copy => panic!("finished during the outage: {r:?}"),
        _ = outage => {
            let injected = proxy.stats().injected;
            proxy.clear();
            // Retry-After: 1 s between the attempts of each of the (at most 3 + 2) requests
            // in flight: about 4 each in 4 s; without it, 10-200 ms backoff makes dozens.
            assert!(injected <= 30, "{injected} rejected attempts: Retry-After was not honoured");
            copy.await
        }
    };
    assert_eq!(report.status, RunStatus::Completed);
    landed_once(&index, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_a_restarted_search_engine_loses_nothing() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("bp-restart");
    let rows = 6000;
    let restart = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Every connection is lost and every answer too, for 3 s (the requests reach the
        // engine: a retry writes the same documents again, by id).
        proxy.set_drop_rate(1.0);
        proxy.drop_connections();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.clear();
    };
    // 3,000 rows/s: the copy takes 2 s without the restart.
    let (report, ()) = tokio::join!(copy(&proxy, &index, rows, Some(3000.0)), restart);
    assert_eq!(report.status, RunStatus::Completed);
    assert!(proxy.stats().dropped > 0, "{:?}", proxy.stats());
    landed_once(&index, rows);
}

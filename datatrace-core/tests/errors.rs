//! Typed errors cross the Sink boundary: a connector's own error type (and its source chain)
//! reaches the run's error and the job's report; retries honour a server's suggested delay
//! and a batch's time budget.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datatrace_core::testing::GeneratorSource;
use datatrace_core::{
    Batch, Cause, Error, ErrorPolicy, Job, Outcome, Pipeline, PipelineConfig, RetryPolicy,
    RunStatus, Sink, SinkError, UnitSpec, UnitState,
};

/// A connector's own error type, with a source of its own.
#[derive(Debug, thiserror::Error)]
#[error("vendor error {code}")]
struct VendorError {
    code: u16,
    #[source]
    io: std::io::Error,
}

fn vendor(code: u16) -> VendorError {
    VendorError {
        code,
        io: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied by the server"),
    }
}

/// Fails every batch with a fatal vendor error.
struct FatalSink;

#[async_trait]
impl Sink for FatalSink {
    async fn write(&self, _: &Batch) -> Result<Vec<Outcome>, SinkError> {
        Err(SinkError::fatal(vendor(1045)))
    }
}

/// Rejects every record with a vendor error.
struct RejectingSink;

#[async_trait]
impl Sink for RejectingSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        Ok(batch
            .records
            .iter()
            .map(|_| Outcome::Rejected(Cause::new(vendor(1406)).with_message("data too long")))
            .collect())
    }
}

#[tokio::test]
async fn a_connector_error_survives_to_the_run_error() {
    let e = Pipeline::new(
        "u",
        Arc::new(GeneratorSource::new(10, 2, 4)),
        Arc::new(FatalSink),
    )
    .run()
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Sink { .. }), "{e:?}");
    assert!(e.to_string().contains("vendor error 1045"), "{e}");
    let v = e
        .find_source::<VendorError>()
        .expect("the vendor error in the chain");
    assert_eq!(v.code, 1045);
    // The vendor error's own source follows it.
    let io = e.find_source::<std::io::Error>().expect("its source too");
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn a_rejected_record_keeps_its_connector_error() {
    let e = Pipeline::new(
        "u",
        Arc::new(GeneratorSource::new(10, 2, 4)),
        Arc::new(RejectingSink),
    )
    .config(PipelineConfig {
        error_policy: ErrorPolicy::Fail,
        ..Default::default()
    })
    .run()
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
    assert!(e.to_string().contains("data too long"), "{e}");
    assert_eq!(e.find_source::<VendorError>().map(|v| v.code), Some(1406));
}

#[tokio::test]
async fn the_job_report_keeps_the_unit_error() {
    let report = Job::new("j")
        .unit(UnitSpec::new(
            "bad",
            Arc::new(GeneratorSource::new(10, 2, 4)),
            Arc::new(FatalSink),
        ))
        .run()
        .await
        .unwrap();
    let unit = &report.units[0];
    assert_eq!(unit.state, UnitState::Failed);
    let failure = unit.failure().expect("the run's error");
    assert_eq!(
        failure.find_source::<VendorError>().map(|v| v.code),
        Some(1045)
    );
    assert_eq!(
        unit.error.as_deref(),
        Some(failure.to_string().as_str()),
        "the text form is the error's"
    );
}

/// Retryable until `ok_after` writes have been tried, asking for `delay` each time.
struct BusySink {
    calls: AtomicU32,
    ok_after: u32,
    delay: Option<Duration>,
    whole_batch: bool,
}

#[async_trait]
impl Sink for BusySink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.ok_after {
            return Ok(vec![Outcome::Written; batch.len()]);
        }
        let mut cause = Cause::from("429 too many requests");
        if let Some(d) = self.delay {
            cause = cause.retry_after(d);
        }
        if self.whole_batch {
            return Err(SinkError::Transient(cause));
        }
        Ok(vec![Outcome::Retryable(cause); batch.len()])
    }
}

fn quick() -> PipelineConfig {
    PipelineConfig {
        retry: RetryPolicy::new(10, Duration::from_millis(1), Duration::from_millis(2)),
        ..Default::default()
    }
}

#[tokio::test]
async fn retries_wait_the_delay_the_server_asks_for() {
    for whole_batch in [false, true] {
        let sink = Arc::new(BusySink {
            calls: AtomicU32::new(0),
            ok_after: 2,
            delay: Some(Duration::from_millis(300)),
            whole_batch,
        });
        let started = Instant::now();
        let report = Pipeline::new("u", Arc::new(GeneratorSource::new(10, 2, 4)), sink.clone())
            .config(quick())
            .run()
            .await
            .unwrap();
        assert_eq!(report.status, RunStatus::Completed);
        assert_eq!(report.written, 10);
        assert_eq!(sink.calls.load(Ordering::SeqCst), 3);
        // Two retries, each after the server's 300 ms rather than the policy's 2 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "retried after {:?} (whole batch: {whole_batch})",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_batch_retries_within_its_time_budget() {
    let sink = Arc::new(BusySink {
        calls: AtomicU32::new(0),
        ok_after: u32::MAX,
        delay: None,
        whole_batch: false,
    });
    let e = Pipeline::new("u", Arc::new(GeneratorSource::new(10, 2, 4)), sink.clone())
        .config(PipelineConfig {
            retry: RetryPolicy::new(
                u32::MAX,
                Duration::from_millis(5),
                Duration::from_millis(10),
            )
            .with_max_elapsed(Duration::from_millis(300)),
            ..Default::default()
        })
        .run()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("10 records still failing after"), "{msg}");
    assert!(msg.contains("429 too many requests"), "{msg}");
    // Bounded by time, not by a count of attempts.
    assert!(sink.calls.load(Ordering::SeqCst) > 10, "{msg}");
}

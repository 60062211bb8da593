//! What the tasks of one run share: cancellation, settings, counters, the error policy.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use tokio_util::sync::CancellationToken;

use super::tracker::Runs;
use super::{ErrorPolicy, PipelineConfig};
use crate::cause::Cause;
use crate::dlq::{DeadLetter, DeadLetterQueue};
use crate::error::{Error, Result};
use crate::progress::Counters;
use crate::record::{Position, Record};
use crate::sink::Sink;
use crate::temporal::Timestamp;

/// Cancellation state shared by a run's tasks.
pub(super) struct Shared {
    /// Stops the readers: cancelled by a graceful stop or a failure.
    pub(super) halt: CancellationToken,
    /// Stops everything at once: cancelled by a failure.
    pub(super) abort: CancellationToken,
    /// The user's graceful stop.
    pub(super) stop: CancellationToken,
    pub(super) failure: Mutex<Option<Error>>,
}

impl Shared {
    /// Records the first failure and stops the run.
    pub(super) fn fail(&self, e: Error) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.halt.cancel();
        self.abort.cancel();
    }
}

/// Stops a run's spawned tasks when the run's future is dropped (or finishes).
pub(super) struct StopOnDrop(pub(super) Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.halt.cancel();
        self.0.abort.cancel();
    }
}

/// Batches handed to the sink workers and not yet finished: a table change waits for none.
#[derive(Default)]
pub(super) struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    pub(super) fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn done(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Returns once no batch is in flight.
    pub(super) async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// What the tasks of a run share.
pub(super) struct Ctx {
    pub(super) job: String,
    pub(super) unit: String,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) dlq: Option<Arc<dyn DeadLetterQueue>>,
    pub(super) config: PipelineConfig,
    pub(super) counters: Arc<Counters>,
    pub(super) shared: Arc<Shared>,
    pub(super) in_flight: InFlight,
}

impl Ctx {
    pub(super) fn dead_letter(
        &self,
        stage: &str,
        record: Record,
        error: Cause,
        attempts: u32,
    ) -> DeadLetter {
        DeadLetter {
            job: self.job.clone(),
            unit: self.unit.clone(),
            stage: stage.into(),
            record,
            error: error.into(),
            attempts,
            time: Timestamp::now(),
        }
    }

    /// Applies the error policy to rejected records; `Ok` means they are handled.
    pub(super) async fn reject(
        &self,
        stage: &'static str,
        rejected: Vec<(Record, Cause, u32)>,
    ) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        let n = rejected.len() as u64;
        if self.config.error_policy != ErrorPolicy::Fail {
            if let Some((record, reason, _)) = rejected.first() {
                let _ = self
                    .counters
                    .first_rejection
                    .set(format!("key {}: {reason}", record.key_string(",")));
            }
        }
        match self.config.error_policy {
            ErrorPolicy::Fail => {
                let (record, reason, _) = rejected.into_iter().next().expect("not empty");
                Err(Error::Rejected {
                    unit: self.unit.clone(),
                    key: record.key_string(","),
                    stage,
                    reason,
                })
            }
            ErrorPolicy::Skip => {
                for (record, reason, _) in &rejected {
                    tracing::warn!(unit = %self.unit, key = %record.key_string(","), stage, %reason, "record skipped");
                }
                self.counters.rejected.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            ErrorPolicy::DeadLetter => {
                let dlq = self.dlq.as_ref().expect("checked at start");
                let entries = rejected
                    .into_iter()
                    .map(|(r, why, attempts)| self.dead_letter(stage, r, why, attempts))
                    .collect();
                dlq.put(entries).await?;
                self.counters.rejected.fetch_add(n, Ordering::Relaxed);
                self.counters.dead_lettered.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

/// A batch on its way to a sink worker, with the sequence numbers it covers.
pub(super) struct WorkItem {
    pub(super) batch: crate::record::Batch,
    pub(super) runs: Runs,
    pub(super) bytes: usize,
}

/// What the dispatcher and the workers tell the committer.
pub(super) enum CommitMsg {
    /// Records with sequence numbers below `at` cover `position` of `part` / finish it.
    Mark {
        at: u64,
        part: usize,
        position: Option<Position>,
        done: bool,
    },
    /// These sequence numbers are resolved.
    Ack(Runs),
}

/// The message of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Runs `f`; a panic inside it becomes [`Error::Panicked`] for `task` of `unit`.
pub(super) async fn unwind<T>(
    unit: &str,
    task: &'static str,
    f: impl Future<Output = Result<T>>,
) -> Result<T> {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => Err(Error::Panicked {
            unit: unit.to_string(),
            task,
            message: panic_message(&*payload),
        }),
    }
}

/// Waits for a task of the run; a panic in it fails the run (never dropped silently).
pub(super) async fn join<T>(
    shared: &Shared,
    unit: &str,
    task: &'static str,
    handle: tokio::task::JoinHandle<T>,
) -> Option<T> {
    match handle.await {
        Ok(v) => Some(v),
        Err(e) => {
            let message = match e.try_into_panic() {
                Ok(payload) => panic_message(&*payload),
                Err(e) => e.to_string(),
            };
            tracing::error!(unit, task, %message, "a task of the run panicked");
            shared.fail(Error::Panicked {
                unit: unit.to_string(),
                task,
                message,
            });
            None
        }
    }
}

//! The sink workers: write batches with retries and resolve every record under the policy.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::context::{unwind, CommitMsg, Ctx, WorkItem};
use crate::cause::Cause;
use crate::error::{Error, Result};
use crate::record::{Batch, Record};
use crate::retry::Retry;
use crate::sink::{Outcome, SinkError};

pub(super) async fn worker_loop(
    ctx: Arc<Ctx>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<WorkItem>>>,
    commit_tx: mpsc::Sender<CommitMsg>,
) {
    let abort = ctx.shared.abort.clone();
    loop {
        let item = {
            let mut rx = rx.lock().await;
            tokio::select! {
                biased;
                _ = abort.cancelled() => None,
                item = rx.recv() => item,
            }
        };
        let Some(item) = item else { return };
        let written = unwind(&ctx.unit, "sink", write_batch(&ctx, item.batch)).await;
        ctx.in_flight.done();
        match written {
            Ok(()) => {
                ctx.counters
                    .bytes
                    .fetch_add(item.bytes as u64, Ordering::Relaxed);
                // The committer never waits on workers: a full channel only slows them.
                let _ = commit_tx.send(CommitMsg::Ack(item.runs)).await;
            }
            Err(Error::Cancelled) => return,
            Err(e) => {
                tracing::error!(unit = %ctx.unit, error = %e, "sink failed");
                ctx.shared.fail(e);
                return;
            }
        }
    }
}

/// Waits before the next attempt of `retry`'s operation; [`Error::Cancelled`] when the run
/// stops or fails meanwhile, `Ok(false)` when the retry budget is spent.
async fn pause(ctx: &Ctx, retry: &mut Retry, cause: &Cause) -> Result<bool> {
    let Some(delay) = retry.failed(cause.suggested_delay()) else {
        return Ok(false);
    };
    tokio::select! {
        biased;
        _ = ctx.shared.abort.cancelled() => Err(Error::Cancelled),
        _ = ctx.shared.stop.cancelled() => Err(Error::Cancelled),
        _ = tokio::time::sleep(delay) => Ok(true),
    }
}

/// Has the sink apply a table change, retrying transient errors like a batch.
pub(super) async fn apply_table_change(ctx: &Ctx, change: &crate::TableChange) -> Result<()> {
    let mut retry = ctx.config.retry.start();
    loop {
        let cause = match ctx.sink.table_change(change).await {
            Ok(()) => {
                tracing::info!(unit = %ctx.unit, %change, "table change applied");
                return Ok(());
            }
            Err(e @ SinkError::Fatal(_)) => return Err(Error::sink(&ctx.unit, "", e)),
            Err(SinkError::Transient(cause)) => cause,
        };
        if !pause(ctx, &mut retry, &cause).await? {
            let doing = format!("{change}: still failing after {}", retry.describe());
            return Err(Error::sink(&ctx.unit, &doing, SinkError::Transient(cause)));
        }
        tracing::debug!(unit = %ctx.unit, attempt = retry.failures(), %change, %cause, "retrying the table change");
    }
}

/// What one write of a batch left to do.
struct Written {
    /// Records to write again.
    again: Vec<Record>,
    /// Why (the last retryable outcome).
    cause: Option<Cause>,
}

/// Sorts the outcomes of one write: counts the written, keeps the rejected, returns the
/// records to retry.
fn sort_outcomes(
    ctx: &Ctx,
    pending: Batch,
    outcomes: Vec<Outcome>,
    attempt: u32,
    rejected: &mut Vec<(Record, Cause, u32)>,
) -> Result<Written> {
    if outcomes.len() != pending.len() {
        return Err(Error::Sink {
            unit: ctx.unit.clone(),
            message: format!(
                "sink returned {} outcomes for a batch of {} records",
                outcomes.len(),
                pending.len()
            ),
            cause: None,
        });
    }
    let mut again = Vec::new();
    let mut cause: Option<Cause> = None;
    let mut written = 0u64;
    let mut newest_ts = None;
    for (record, outcome) in pending.records.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Written => {
                written += 1;
                if let Some(ts) = record.position.as_ref().and_then(|p| p.ts_ms) {
                    newest_ts = Some(newest_ts.map_or(ts, |n: i64| n.max(ts)));
                }
            }
            Outcome::Rejected(why) => rejected.push((record, why, attempt)),
            Outcome::Retryable(why) => {
                // The longest delay any record's answer asked for is honoured.
                let longer = match (&cause, why.suggested_delay()) {
                    (None, _) => true,
                    (Some(c), Some(d)) => c.suggested_delay().is_none_or(|c| d > c),
                    (Some(_), None) => false,
                };
                if longer {
                    cause = Some(why);
                }
                again.push(record);
            }
        }
    }
    let counters = &ctx.counters;
    counters.written.fetch_add(written, Ordering::Relaxed);
    if let Some(ts) = newest_ts {
        counters.last_ts_ms.fetch_max(ts, Ordering::Relaxed);
    }
    Ok(Written { again, cause })
}

/// Writes a batch with retries; resolves every record (written, or rejected under the policy)
/// or fails. The batch has one retry budget (attempts and time) for all its records.
pub(super) async fn write_batch(ctx: &Ctx, batch: Batch) -> Result<()> {
    let mut retry = ctx.config.retry.start();
    let mut pending = batch;
    let mut rejected: Vec<(Record, Cause, u32)> = Vec::new();
    loop {
        let attempt = retry.failures() + 1;
        let cause = match ctx.sink.write(&pending).await {
            Err(e @ SinkError::Fatal(_)) => return Err(Error::sink(&ctx.unit, "", e)),
            Err(SinkError::Transient(cause)) => cause,
            Ok(outcomes) => {
                let w = sort_outcomes(ctx, pending, outcomes, attempt, &mut rejected)?;
                pending = Batch::new(w.again);
                match w.cause {
                    None => break,
                    Some(cause) => cause,
                }
            }
        };
        if !pause(ctx, &mut retry, &cause).await? {
            let doing = format!(
                "{} records still failing after {}",
                pending.len(),
                retry.describe()
            );
            return Err(Error::sink(&ctx.unit, &doing, SinkError::Transient(cause)));
        }
        ctx.counters
            .retried
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        tracing::debug!(unit = %ctx.unit, attempt, records = pending.len(), %cause, "retrying");
    }
    ctx.reject("sink", rejected).await
}

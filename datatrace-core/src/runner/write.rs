//! The sink workers: write batches with retries and resolve every record under the policy.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::context::{CommitMsg, Ctx};
use super::dispatch::WorkItem;
use crate::error::{Error, Result};
use crate::record::{Batch, Record};
use crate::sink::{Outcome, Sink, SinkError};

pub(super) async fn worker_loop(
    ctx: Arc<Ctx>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<WorkItem>>>,
    commit_tx: mpsc::UnboundedSender<CommitMsg>,
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
        let written = write_batch(&ctx, item.batch).await;
        ctx.in_flight.done();
        match written {
            Ok(()) => {
                ctx.counters
                    .bytes
                    .fetch_add(item.bytes as u64, Ordering::Relaxed);
                let _ = commit_tx.send(CommitMsg::Ack(item.runs));
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

/// Waits the retry policy's backoff before attempt `attempt + 1`; [`Error::Cancelled`] when
/// the run stops or fails meanwhile.
async fn pause(ctx: &Ctx, attempt: u32) -> Result<()> {
    tokio::select! {
        biased;
        _ = ctx.shared.abort.cancelled() => Err(Error::Cancelled),
        _ = ctx.shared.stop.cancelled() => Err(Error::Cancelled),
        _ = tokio::time::sleep(ctx.config.retry.backoff(attempt)) => Ok(()),
    }
}

/// Has the sink apply a table change, retrying transient errors like a batch.
pub(super) async fn apply_table_change(ctx: &Ctx, change: &crate::TableChange) -> Result<()> {
    let retry = ctx.config.retry;
    let mut attempt: u32 = 1;
    loop {
        let reason = match ctx.sink.table_change(change).await {
            Ok(()) => {
                tracing::info!(unit = %ctx.unit, %change, "table change applied");
                return Ok(());
            }
            Err(SinkError::Fatal(message)) => {
                return Err(Error::Sink {
                    unit: ctx.unit.clone(),
                    message,
                })
            }
            Err(SinkError::Transient(reason)) => reason,
        };
        if attempt >= retry.max_attempts {
            return Err(Error::Sink {
                unit: ctx.unit.clone(),
                message: format!("{change}: still failing after {attempt} attempts: {reason}"),
            });
        }
        tracing::debug!(unit = %ctx.unit, attempt, %change, %reason, "retrying the table change");
        pause(ctx, attempt).await?;
        attempt += 1;
    }
}

/// Writes a batch with retries; resolves every record (written, or rejected under the policy)
/// or fails.
pub(super) async fn write_batch(ctx: &Ctx, batch: Batch) -> Result<()> {
    let retry = ctx.config.retry;
    let counters = &ctx.counters;
    let mut pending = batch;
    let mut rejected: Vec<(Record, String, u32)> = Vec::new();
    let mut attempt: u32 = 1;
    loop {
        let reason = match ctx.sink.write(&pending).await {
            Err(SinkError::Fatal(msg)) => {
                return Err(Error::Sink {
                    unit: ctx.unit.clone(),
                    message: msg,
                })
            }
            Err(SinkError::Transient(msg)) => msg,
            Ok(outcomes) => {
                if outcomes.len() != pending.len() {
                    return Err(Error::Sink {
                        unit: ctx.unit.clone(),
                        message: format!(
                            "sink returned {} outcomes for a batch of {} records",
                            outcomes.len(),
                            pending.len()
                        ),
                    });
                }
                let mut again = Vec::new();
                let mut last_reason = String::new();
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
                            last_reason = why;
                            again.push(record);
                        }
                    }
                }
                counters.written.fetch_add(written, Ordering::Relaxed);
                if let Some(ts) = newest_ts {
                    counters.last_ts_ms.fetch_max(ts, Ordering::Relaxed);
                }
                pending = Batch::new(again);
                if pending.is_empty() {
                    break;
                }
                last_reason
            }
        };
        if attempt >= retry.max_attempts {
            return Err(Error::Sink {
                unit: ctx.unit.clone(),
                message: format!(
                    "{} records still failing after {attempt} attempts: {reason}",
                    pending.len()
                ),
            });
        }
        counters
            .retried
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        tracing::debug!(unit = %ctx.unit, attempt, records = pending.len(), %reason, "retrying");
        pause(ctx, attempt).await?;
        attempt += 1;
    }
    ctx.reject("sink", rejected).await
}

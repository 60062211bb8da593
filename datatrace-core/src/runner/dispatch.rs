//! The dispatcher: numbers records, applies transforms, forms batches by size, bytes and
//! linger, applies rate limits and routes batches to workers (by key when asked).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::context::CommitMsg;
use super::context::Ctx;
use super::rate::RateLimiter;
use super::tracker::Runs;
use crate::error::{Error, Result};
use crate::record::{Batch, Position, Record};
use crate::source::SourceMsg;
use crate::transform::Transform;

#[derive(Default)]
pub(super) struct PendingBatch {
    pub(super) records: Vec<Record>,
    pub(super) runs: Runs,
    pub(super) bytes: usize,
    pub(super) since: Option<Instant>,
}

pub(super) struct WorkItem {
    pub(super) batch: Batch,
    pub(super) runs: Runs,
    pub(super) bytes: usize,
}

pub(super) struct Dispatcher<'a> {
    pub(super) ctx: Arc<Ctx>,
    pub(super) transforms: &'a [Arc<dyn Transform>],
    pub(super) pending: Vec<PendingBatch>,
    /// Sequence numbers resolved without a write (filtered, skipped, dead-lettered).
    pub(super) loose: Runs,
    pub(super) next_seq: u64,
    pub(super) worker_txs: Vec<mpsc::Sender<WorkItem>>,
    pub(super) commit_tx: mpsc::UnboundedSender<CommitMsg>,
    pub(super) limiter: Option<RateLimiter>,
}

impl Dispatcher<'_> {
    pub(super) async fn run(&mut self, mut rx: mpsc::Receiver<SourceMsg>) -> Result<()> {
        let abort = self.ctx.shared.abort.clone();
        let linger = self.ctx.config.linger;
        loop {
            let deadline = self
                .pending
                .iter()
                .filter_map(|p| p.since)
                .min()
                .map(|t| tokio::time::Instant::from_std(t + linger));
            let msg = tokio::select! {
                biased;
                _ = abort.cancelled() => return Ok(()),
                msg = rx.recv() => msg,
                _ = sleep_until_opt(deadline) => {
                    self.flush_expired(linger).await?;
                    continue;
                }
            };
            match msg {
                None => break,
                Some(SourceMsg::Records(records)) => self.records(records).await?,
                Some(SourceMsg::Checkpoint(part, position)) => {
                    self.mark(part, Some(position), false)
                }
                Some(SourceMsg::Done(part)) => self.mark(part, None, true),
                Some(SourceMsg::TableChange(change)) => {
                    if !self.table_change(change).await? {
                        // Stopped while applying it: nothing after it may be written first.
                        break;
                    }
                }
            }
        }
        for w in 0..self.pending.len() {
            self.send(w).await?;
        }
        self.ack_loose();
        Ok(())
    }

    pub(super) fn mark(&mut self, part: usize, position: Option<Position>, done: bool) {
        self.ack_loose();
        let _ = self.commit_tx.send(CommitMsg::Mark {
            at: self.next_seq,
            part,
            position,
            done,
        });
    }

    pub(super) fn ack_loose(&mut self) {
        if !self.loose.is_empty() {
            let _ = self
                .commit_tx
                .send(CommitMsg::Ack(std::mem::take(&mut self.loose)));
        }
    }

    pub(super) async fn records(&mut self, records: Vec<Record>) -> Result<()> {
        let counters = self.ctx.counters.clone();
        counters
            .read
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let batch_size = self.ctx.config.batch_size;
        let max_batch_bytes = self.ctx.config.max_batch_bytes;
        let partitioned = self.pending.len() > 1;
        for record in records {
            let seq = self.next_seq;
            self.next_seq += 1;
            match apply_all(self.transforms, record) {
                Ok(Some(record)) => {
                    let w = if partitioned {
                        (record.key_hash() % self.pending.len() as u64) as usize
                    } else {
                        0
                    };
                    let p = &mut self.pending[w];
                    if p.records.is_empty() {
                        p.since = Some(Instant::now());
                        p.records.reserve(batch_size);
                    }
                    p.bytes += record.approx_size();
                    p.records.push(record);
                    p.runs.push(seq);
                    if p.records.len() >= batch_size
                        || max_batch_bytes.is_some_and(|max| p.bytes >= max)
                    {
                        self.send(w).await?;
                    }
                }
                Ok(None) => {
                    counters.filtered.fetch_add(1, Ordering::Relaxed);
                    self.loose.push(seq);
                }
                Err(e) => {
                    let record = *e.record;
                    self.ctx
                        .reject("transform", vec![(record, e.message, 1)])
                        .await?;
                    self.loose.push(seq);
                }
            }
        }
        Ok(())
    }

    pub(super) async fn flush_expired(&mut self, linger: Duration) -> Result<()> {
        let now = Instant::now();
        for w in 0..self.pending.len() {
            if self.pending[w].since.is_some_and(|t| now >= t + linger) {
                self.send(w).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn send(&mut self, w: usize) -> Result<()> {
        let p = std::mem::take(&mut self.pending[w]);
        if p.records.is_empty() {
            return Ok(());
        }
        if let Some(l) = &self.limiter {
            tokio::select! {
                biased;
                _ = self.ctx.shared.abort.cancelled() => return Ok(()),
                _ = l.acquire(p.records.len(), p.bytes) => {}
            }
        }
        let item = WorkItem {
            batch: Batch::new(p.records),
            runs: p.runs,
            bytes: p.bytes,
        };
        // Counted before the send: a worker may finish the batch before `send` returns.
        self.ctx.in_flight.add();
        let sent = tokio::select! {
            biased;
            _ = self.ctx.shared.abort.cancelled() => None,
            r = self.worker_txs[w].send(item) => Some(r.is_ok()),
        };
        if sent != Some(true) {
            self.ctx.in_flight.done();
        }
        match sent {
            None | Some(true) => Ok(()),
            // Workers leave during a graceful stop; the batch stays unacknowledged and is
            // read again on resume.
            Some(false) if self.ctx.shared.stop.is_cancelled() => Ok(()),
            Some(false) => Err(Error::Sink {
                unit: self.ctx.unit.clone(),
                message: "all sink workers stopped".into(),
            }),
        }
    }
}

impl Dispatcher<'_> {
    /// A table change is a barrier: the records before it are written, then the sink applies
    /// it alone (retrying transient errors), then the records after it go on. Its sequence
    /// number is resolved only once it is applied, so no checkpoint passes it before.
    /// Returns false when the run stopped before the change was applied.
    async fn table_change(&mut self, change: crate::TableChange) -> Result<bool> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let change = table_change_all(self.transforms, change).map_err(|message| Error::Sink {
            unit: self.ctx.unit.clone(),
            message,
        })?;
        if let Some(change) = change {
            for w in 0..self.pending.len() {
                self.send(w).await?;
            }
            let ctx = self.ctx.clone();
            tokio::select! {
                biased;
                _ = ctx.shared.abort.cancelled() => return Ok(false),
                _ = ctx.in_flight.drained() => {}
            }
            match super::write::apply_table_change(&ctx, &change).await {
                Ok(()) => {}
                Err(Error::Cancelled) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.loose.push(seq);
        self.ack_loose();
        Ok(true)
    }
}

/// Applies transforms in order until one drops or rejects the record.
pub(super) fn apply_all(
    transforms: &[Arc<dyn Transform>],
    mut record: Record,
) -> Result<Option<Record>, crate::transform::TransformError> {
    for t in transforms {
        match t.apply(record)? {
            Some(r) => record = r,
            None => return Ok(None),
        }
    }
    Ok(Some(record))
}

/// Passes a table change through the transforms in order until one drops or refuses it.
fn table_change_all(
    transforms: &[Arc<dyn Transform>],
    mut change: crate::TableChange,
) -> Result<Option<crate::TableChange>, String> {
    for t in transforms {
        match t.table_change(change)? {
            Some(c) => change = c,
            None => return Ok(None),
        }
    }
    Ok(Some(change))
}

pub(super) async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

//! The dispatcher: numbers records, applies transforms, forms batches by size, bytes and
//! linger, applies rate limits and routes batches to workers (by key when asked).
//!
//! A batch closes when it is full (`batch_size`, `max_batch_bytes`), when its `linger`
//! expires, or at a checkpoint of the source (the end of a source transaction for change
//! streams) when nothing more is waiting in the source's channel: a caught-up stream writes
//! every transaction at once instead of holding it for the linger, while a backlog still
//! fills whole batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::mpsc;

use super::context::{CommitMsg, Ctx, WorkItem};
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
    /// The records' estimated memory ([`Record::footprint`]): what `max_batch_bytes` bounds.
    pub(super) footprint: usize,
    pub(super) since: Option<Instant>,
}

pub(super) struct Dispatcher<'a> {
    pub(super) ctx: Arc<Ctx>,
    pub(super) transforms: &'a [Arc<dyn Transform>],
    pub(super) pending: Vec<PendingBatch>,
    /// Sequence numbers resolved without a write (filtered, skipped, dead-lettered).
    pub(super) loose: Runs,
    pub(super) next_seq: u64,
    pub(super) worker_txs: Vec<mpsc::Sender<WorkItem>>,
    pub(super) commit_tx: mpsc::Sender<CommitMsg>,
    pub(super) limiter: Option<RateLimiter>,
    /// The worker of the run of key-changing updates being dispatched, if any.
    pub(super) moving: Option<usize>,
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
                .map(|t| t + linger);
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
                    self.mark(part, Some(position), false).await;
                    if rx.is_empty() {
                        // Caught up at a transaction's end: no reason to linger.
                        for w in 0..self.pending.len() {
                            self.send(w).await?;
                        }
                    }
                }
                Some(SourceMsg::Done(part)) => self.mark(part, None, true).await,
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
        self.ack_loose().await;
        Ok(())
    }

    /// Hands a message to the committer, waiting while its channel is full (it never waits
    /// on the dispatcher, so this cannot deadlock); gives up when the run aborts.
    async fn to_committer(&self, msg: CommitMsg) {
        tokio::select! {
            biased;
            _ = self.ctx.shared.abort.cancelled() => {}
            _ = self.commit_tx.send(msg) => {}
        }
    }

    pub(super) async fn mark(&mut self, part: usize, position: Option<Position>, done: bool) {
        self.ack_loose().await;
        let msg = CommitMsg::Mark {
            at: self.next_seq,
            part,
            position,
            done,
        };
        self.to_committer(msg).await;
    }

    pub(super) async fn ack_loose(&mut self) {
        if !self.loose.is_empty() {
            let runs = std::mem::take(&mut self.loose);
            self.to_committer(CommitMsg::Ack(runs)).await;
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
                    let n = self.pending.len() as u64;
                    let mut w = if partitioned {
                        (record.key_hash() % n) as usize
                    } else {
                        0
                    };
                    // Rows that move to another key (key-changing updates) must not be
                    // overtaken by, nor overtake, changes of their old or new key on other
                    // workers: a run of them goes to one worker in order, after every
                    // earlier batch is written, and the records after the run wait until it
                    // is written (two waits per run, not per row).
                    if partitioned {
                        let moves = record.changes_key()
                            && (self.moving.is_some()
                                || record
                                    .before_key_hash()
                                    .is_some_and(|h| (h % n) as usize != w));
                        match (moves, self.moving) {
                            (true, Some(m)) => w = m,
                            (true, None) => {
                                if !self.drain().await? {
                                    return Ok(());
                                }
                                self.moving = Some(w);
                            }
                            (false, Some(_)) => {
                                self.moving = None;
                                if !self.drain().await? {
                                    return Ok(());
                                }
                            }
                            (false, None) => {}
                        }
                    }
                    let p = &mut self.pending[w];
                    if p.records.is_empty() {
                        p.since = Some(Instant::now());
                        // Never preallocated from the configured size alone.
                        p.records
                            .reserve(batch_size.min(crate::source::PREALLOCATE));
                    }
                    let (bytes, footprint) = record.sizes();
                    p.bytes += bytes;
                    p.footprint += footprint;
                    p.records.push(record);
                    p.runs.push(seq);
                    if p.records.len() >= batch_size
                        || max_batch_bytes.is_some_and(|max| p.footprint >= max)
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
                        .reject("transform", vec![(record, e.message.into(), 1)])
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
                cause: None,
            }),
        }
    }
}

impl Dispatcher<'_> {
    /// Sends every pending batch and waits until all of them are written. False when the
    /// run stopped meanwhile.
    async fn drain(&mut self) -> Result<bool> {
        self.moving = None;
        for w in 0..self.pending.len() {
            self.send(w).await?;
        }
        let ctx = self.ctx.clone();
        tokio::select! {
            biased;
            _ = ctx.shared.abort.cancelled() => Ok(false),
            _ = ctx.in_flight.drained() => Ok(true),
        }
    }

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
            cause: None,
        })?;
        if let Some(change) = change {
            if !self.drain().await? {
                return Ok(false);
            }
            let ctx = self.ctx.clone();
            match super::write::apply_table_change(&ctx, &change).await {
                Ok(()) => {}
                Err(Error::Cancelled) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.loose.push(seq);
        self.ack_loose().await;
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

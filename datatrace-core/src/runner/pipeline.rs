//! [`Pipeline`]: runs one unit from a source through transforms into a sink.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::rate::RateLimiter;
use super::tracker::{AckTracker, Runs};
use super::{ErrorPolicy, PipelineConfig, RunReport, RunStatus};
use crate::checkpoint::{
    CheckpointStore, MemoryCheckpointStore, PartState, UnitCheckpoint, UnitState,
};
use crate::dlq::{DeadLetter, DeadLetterQueue};
use crate::error::{Error, Result};
use crate::progress::{Counters, ProgressEvent, ProgressKind, ProgressSender};
use crate::record::{Batch, Position, Record};
use crate::sink::{Outcome, PrepareContext, Sink, SinkError};
use crate::source::{Emitter, Source, SourceMsg};
use crate::temporal::Timestamp;
use crate::transform::Transform;

/// One unit's run from a [`Source`] through [`Transform`]s into a [`Sink`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datatrace_core::Result<()> {
/// use std::sync::Arc;
/// use datatrace_core::testing::{CollectingSink, GeneratorSource};
/// use datatrace_core::{Pipeline, Record, RunStatus};
///
/// let sink = Arc::new(CollectingSink::new());
/// let report = Pipeline::new("numbers", Arc::new(GeneratorSource::new(10_000, 4, 16)), sink.clone())
///     .transform(|r: Record| Some(r))
///     .run()
///     .await?;
/// assert_eq!(report.status, RunStatus::Completed);
/// assert_eq!(report.written, 10_000);
/// assert_eq!(sink.len(), 10_000);
/// # Ok(()) }
/// ```
pub struct Pipeline {
    job: String,
    unit: String,
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    transforms: Vec<Arc<dyn Transform>>,
    config: PipelineConfig,
    checkpoints: Arc<dyn CheckpointStore>,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    progress: Option<ProgressSender>,
    cancel: CancellationToken,
}

impl Pipeline {
    /// A pipeline for `unit` with default settings, an in-memory checkpoint store and job
    /// name `default`.
    pub fn new(unit: impl Into<String>, source: Arc<dyn Source>, sink: Arc<dyn Sink>) -> Self {
        Pipeline {
            job: "default".into(),
            unit: unit.into(),
            source,
            sink,
            transforms: Vec::new(),
            config: PipelineConfig::default(),
            checkpoints: Arc::new(MemoryCheckpointStore::new()),
            dlq: None,
            progress: None,
            cancel: CancellationToken::new(),
        }
    }

    /// The job this unit belongs to (the checkpoint key is job and unit).
    pub fn job(mut self, job: impl Into<String>) -> Self {
        self.job = job.into();
        self
    }

    /// Adds a transform after the ones already added.
    pub fn transform(mut self, t: impl Transform + 'static) -> Self {
        self.transforms.push(Arc::new(t));
        self
    }

    /// Adds shared transforms after the ones already added.
    pub fn transforms(mut self, ts: impl IntoIterator<Item = Arc<dyn Transform>>) -> Self {
        self.transforms.extend(ts);
        self
    }

    /// The settings.
    pub fn config(mut self, config: PipelineConfig) -> Self {
        self.config = config;
        self
    }

    /// Where checkpoints are loaded from and saved to.
    pub fn checkpoints(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.checkpoints = store;
        self
    }

    /// Where rejected records go under [`ErrorPolicy::DeadLetter`].
    pub fn dead_letters(mut self, dlq: Arc<dyn DeadLetterQueue>) -> Self {
        self.dlq = Some(dlq);
        self
    }

    /// Where progress events are published.
    pub fn progress(mut self, sender: ProgressSender) -> Self {
        self.progress = Some(sender);
        self
    }

    /// Uses this token for cancellation: cancelling it stops the run gracefully (reading
    /// stops, what was read is written and checkpointed, the run returns
    /// [`RunStatus::Stopped`]).
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The token that stops this run gracefully.
    pub fn canceller(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn event(&self, kind: ProgressKind) {
        if let Some(p) = &self.progress {
            let _ = p.send(ProgressEvent {
                job: self.job.as_str().into(),
                unit: self.unit.as_str().into(),
                kind,
            });
        }
    }

    async fn save(&self, cp: &mut UnitCheckpoint) -> Result<()> {
        cp.updated_at = Timestamp::now();
        self.checkpoints.save(&self.job, &self.unit, cp).await
    }

    /// Runs the unit to its end (or until cancelled), resuming from its checkpoint.
    pub async fn run(self) -> Result<RunReport> {
        self.config.validate()?;
        if self.config.error_policy == ErrorPolicy::DeadLetter && self.dlq.is_none() {
            return Err(Error::Config(format!(
                "unit {}: error_policy dead-letter needs a dead-letter queue",
                self.unit
            )));
        }
        let started = Instant::now();
        let previous = self.checkpoints.load(&self.job, &self.unit).await?;
        let (resumed, parts, base_written) = match previous {
            Some(cp) if cp.state == UnitState::Done => {
                return Ok(self.report(RunStatus::AlreadyDone, false, &Counters::new(), started));
            }
            Some(cp) if !cp.parts.is_empty() => (true, cp.parts, cp.written),
            _ => {
                let parts = self.source.split(self.config.max_parts).await?;
                let parts = parts
                    .into_iter()
                    .map(|part| PartState {
                        part,
                        position: None,
                        done: false,
                    })
                    .collect();
                (false, parts, 0)
            }
        };
        let mut cp = UnitCheckpoint {
            state: UnitState::Running,
            parts,
            error: None,
            written: base_written,
            updated_at: Timestamp::now(),
        };
        self.save(&mut cp).await?;
        self.event(ProgressKind::State {
            state: UnitState::Running,
            error: None,
        });
        if resumed {
            tracing::info!(job = %self.job, unit = %self.unit, "resuming from checkpoint");
        }

        let counters = Counters::new();
        let result = match self.prepare(resumed).await {
            Ok(()) => self.execute(&mut cp, &counters).await,
            Err(e) => Err(e),
        };
        let all_done = cp.parts.iter().all(|p| p.done);
        let result = match result {
            Ok(()) if all_done => self.sink.finish().await.map_err(|e| Error::Sink {
                unit: self.unit.clone(),
                message: e.to_string(),
            }),
            other => other,
        };
        cp.written = base_written + counters.written.load(Ordering::Relaxed);
        let estimated = self.source.estimate_rows().await;
        match result {
            Err(e) => {
                cp.state = UnitState::Failed;
                cp.error = Some(e.to_string());
                self.save(&mut cp).await?;
                self.final_events(
                    &counters,
                    estimated,
                    base_written,
                    UnitState::Failed,
                    Some(e.to_string()),
                );
                Err(e)
            }
            Ok(()) => {
                let (state, status) = if all_done {
                    (UnitState::Done, RunStatus::Completed)
                } else {
                    (UnitState::Running, RunStatus::Stopped)
                };
                cp.state = state;
                self.save(&mut cp).await?;
                self.final_events(&counters, estimated, base_written, state, None);
                Ok(self.report(status, resumed, &counters, started))
            }
        }
    }

    fn final_events(
        &self,
        counters: &Counters,
        estimated: Option<u64>,
        base_written: u64,
        state: UnitState,
        error: Option<String>,
    ) {
        let mut snap = counters.snapshot(estimated, 0.0);
        snap.written += base_written;
        self.event(ProgressKind::Progress(snap));
        self.event(ProgressKind::State { state, error });
    }

    async fn prepare(&self, resumed: bool) -> Result<()> {
        // The sink sees the shape of the records it will get: after the transforms.
        let mut schema = self.source.schema().await?;
        if let Some(s) = schema.as_mut() {
            for (i, t) in self.transforms.iter().enumerate() {
                *s = t.output_schema(s).map_err(|e| {
                    Error::Config(format!("unit {}: transform {}: {e}", self.unit, i + 1))
                })?;
            }
        }
        let ctx = PrepareContext {
            unit: self.unit.clone(),
            schema,
            resumed,
        };
        self.sink.prepare(&ctx).await.map_err(|e| Error::Sink {
            unit: self.unit.clone(),
            message: format!("preparing the target: {e}"),
        })
    }

    fn report(
        &self,
        status: RunStatus,
        resumed: bool,
        c: &Counters,
        started: Instant,
    ) -> RunReport {
        RunReport {
            unit: self.unit.clone(),
            status,
            resumed,
            read: c.read.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            filtered: c.filtered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            duration: started.elapsed(),
        }
    }

    /// Runs readers, dispatcher, workers and committer; leaves the final part states in `cp`.
    async fn execute(&self, cp: &mut UnitCheckpoint, counters: &Arc<Counters>) -> Result<()> {
        let cfg = &self.config;
        let shared = Arc::new(Shared {
            halt: self.cancel.child_token(),
            abort: CancellationToken::new(),
            stop: self.cancel.clone(),
            failure: Mutex::new(None),
        });
        // If this future is dropped mid-run, its spawned tasks stop too.
        let _stop_on_drop = StopOnDrop(shared.clone());
        let ctx = Arc::new(Ctx {
            job: self.job.clone(),
            unit: self.unit.clone(),
            sink: self.sink.clone(),
            dlq: self.dlq.clone(),
            config: cfg.clone(),
            counters: counters.clone(),
            shared: shared.clone(),
        });

        let (src_tx, src_rx) = mpsc::channel::<SourceMsg>(cfg.channel_capacity);
        let (commit_tx, commit_rx) = mpsc::unbounded_channel::<CommitMsg>();

        // Committer.
        let committer = {
            let parts = cp.parts.clone();
            let store = self.checkpoints.clone();
            let ctx = ctx.clone();
            let base = UnitCheckpoint {
                parts: Vec::new(),
                ..cp.clone()
            };
            tokio::spawn(commit_loop(ctx, commit_rx, parts, store, base))
        };

        // Sink workers.
        let workers_n = cfg.sink_concurrency;
        let mut worker_txs = Vec::new();
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        let channels = if cfg.partition_by_key { workers_n } else { 1 };
        let mut receivers = Vec::new();
        for _ in 0..channels {
            let (tx, rx) = mpsc::channel::<WorkItem>(cfg.channel_capacity);
            worker_txs.push(tx);
            receivers.push(Arc::new(tokio::sync::Mutex::new(rx)));
        }
        for w in 0..workers_n {
            let rx = receivers[w % channels].clone();
            workers.push(tokio::spawn(worker_loop(
                ctx.clone(),
                rx,
                commit_tx.clone(),
            )));
        }
        drop(receivers);

        // Readers.
        let todo: VecDeque<usize> = cp
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.done)
            .map(|(i, _)| i)
            .collect();
        let todo = Arc::new(Mutex::new(todo));
        let parts = Arc::new(cp.parts.clone());
        let mut readers = Vec::new();
        for _ in 0..cfg.read_parallelism {
            readers.push(tokio::spawn(read_loop(
                ctx.clone(),
                self.source.clone(),
                parts.clone(),
                todo.clone(),
                src_tx.clone(),
            )));
        }
        drop(src_tx);

        // Progress.
        let ticker = self.progress.clone().map(|p| {
            let done = CancellationToken::new();
            let handle = tokio::spawn(progress_loop(
                p,
                self.job.as_str().into(),
                self.unit.as_str().into(),
                counters.clone(),
                self.source.clone(),
                cfg.progress_interval,
                cp.written,
                done.clone(),
            ));
            (done, handle)
        });

        // Dispatcher runs here.
        let limiter = cfg
            .rate_limit
            .is_limited()
            .then(|| RateLimiter::new(cfg.rate_limit));
        let mut dispatcher = Dispatcher {
            ctx: ctx.clone(),
            transforms: &self.transforms,
            pending: (0..channels).map(|_| PendingBatch::default()).collect(),
            loose: Runs::default(),
            next_seq: 0,
            worker_txs,
            commit_tx: commit_tx.clone(),
            limiter,
        };
        drop(commit_tx);
        if let Err(e) = dispatcher.run(src_rx).await {
            shared.fail(e);
        }
        drop(dispatcher);

        for r in readers {
            let _ = r.await;
        }
        for w in workers {
            let _ = w.await;
        }
        let final_parts = committer
            .await
            .map_err(|e| Error::Checkpoint(format!("committer task failed: {e}")))?;
        if let Some((done, handle)) = ticker {
            done.cancel();
            let _ = handle.await;
        }
        match final_parts {
            Ok(parts) => cp.parts = parts,
            Err(e) => shared.fail(e),
        }
        let failure = shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Cancellation state shared by a run's tasks.
struct Shared {
    /// Stops the readers: cancelled by a graceful stop or a failure.
    halt: CancellationToken,
    /// Stops everything at once: cancelled by a failure.
    abort: CancellationToken,
    /// The user's graceful stop.
    stop: CancellationToken,
    failure: Mutex<Option<Error>>,
}

impl Shared {
    /// Records the first failure and stops the run.
    fn fail(&self, e: Error) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.halt.cancel();
        self.abort.cancel();
    }
}

/// Stops a run's spawned tasks when the run's future is dropped (or finishes).
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.halt.cancel();
        self.0.abort.cancel();
    }
}

/// What the tasks of a run share.
struct Ctx {
    job: String,
    unit: String,
    sink: Arc<dyn Sink>,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    config: PipelineConfig,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
}

impl Ctx {
    fn dead_letter(&self, stage: &str, record: Record, error: String, attempts: u32) -> DeadLetter {
        DeadLetter {
            job: self.job.clone(),
            unit: self.unit.clone(),
            stage: stage.into(),
            record,
            error,
            attempts,
            time: Timestamp::now(),
        }
    }

    /// Applies the error policy to rejected records; `Ok` means they are handled.
    async fn reject(
        &self,
        stage: &'static str,
        rejected: Vec<(Record, String, u32)>,
    ) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        let n = rejected.len() as u64;
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

enum CommitMsg {
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

async fn read_loop(
    ctx: Arc<Ctx>,
    source: Arc<dyn Source>,
    parts: Arc<Vec<PartState>>,
    todo: Arc<Mutex<VecDeque<usize>>>,
    tx: mpsc::Sender<SourceMsg>,
) {
    let halt = &ctx.shared.halt;
    loop {
        if halt.is_cancelled() {
            return;
        }
        let Some(idx) = todo.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            return;
        };
        let state = &parts[idx];
        let mut emitter = Emitter::new(idx, ctx.config.batch_size, tx.clone(), halt.clone());
        let result = source
            .read(&state.part, state.position.clone(), &mut emitter)
            .await;
        match result {
            Ok(()) => {
                if emitter.finish().await.is_err() {
                    return;
                }
            }
            Err(_) if halt.is_cancelled() => return,
            Err(Error::Cancelled) => return,
            Err(e) => {
                tracing::error!(unit = %ctx.unit, part = %state.part.id, error = %e, "source failed");
                ctx.shared.fail(e);
                return;
            }
        }
    }
}

#[derive(Default)]
struct PendingBatch {
    records: Vec<Record>,
    runs: Runs,
    bytes: usize,
    since: Option<Instant>,
}

struct WorkItem {
    batch: Batch,
    runs: Runs,
    bytes: usize,
}

struct Dispatcher<'a> {
    ctx: Arc<Ctx>,
    transforms: &'a [Arc<dyn Transform>],
    pending: Vec<PendingBatch>,
    /// Sequence numbers resolved without a write (filtered, skipped, dead-lettered).
    loose: Runs,
    next_seq: u64,
    worker_txs: Vec<mpsc::Sender<WorkItem>>,
    commit_tx: mpsc::UnboundedSender<CommitMsg>,
    limiter: Option<RateLimiter>,
}

impl Dispatcher<'_> {
    async fn run(&mut self, mut rx: mpsc::Receiver<SourceMsg>) -> Result<()> {
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
            }
        }
        for w in 0..self.pending.len() {
            self.send(w).await?;
        }
        self.ack_loose();
        Ok(())
    }

    fn mark(&mut self, part: usize, position: Option<Position>, done: bool) {
        self.ack_loose();
        let _ = self.commit_tx.send(CommitMsg::Mark {
            at: self.next_seq,
            part,
            position,
            done,
        });
    }

    fn ack_loose(&mut self) {
        if !self.loose.is_empty() {
            let _ = self
                .commit_tx
                .send(CommitMsg::Ack(std::mem::take(&mut self.loose)));
        }
    }

    async fn records(&mut self, records: Vec<Record>) -> Result<()> {
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

    async fn flush_expired(&mut self, linger: Duration) -> Result<()> {
        let now = Instant::now();
        for w in 0..self.pending.len() {
            if self.pending[w].since.is_some_and(|t| now >= t + linger) {
                self.send(w).await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, w: usize) -> Result<()> {
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
        tokio::select! {
            biased;
            _ = self.ctx.shared.abort.cancelled() => Ok(()),
            r = self.worker_txs[w].send(item) => match r {
                Ok(()) => Ok(()),
                // Workers leave during a graceful stop; the batch stays unacknowledged and is
                // read again on resume.
                Err(_) if self.ctx.shared.stop.is_cancelled() => Ok(()),
                Err(_) => Err(Error::Sink {
                    unit: self.ctx.unit.clone(),
                    message: "all sink workers stopped".into(),
                }),
            },
        }
    }
}

/// Applies transforms in order until one drops or rejects the record.
fn apply_all(
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

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn worker_loop(
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
        match write_batch(&ctx, item.batch).await {
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

/// Writes a batch with retries; resolves every record (written, or rejected under the policy)
/// or fails.
async fn write_batch(ctx: &Ctx, batch: Batch) -> Result<()> {
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
        let delay = retry.backoff(attempt);
        tokio::select! {
            biased;
            _ = ctx.shared.abort.cancelled() => return Err(Error::Cancelled),
            _ = ctx.shared.stop.cancelled() => return Err(Error::Cancelled),
            _ = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
    }
    ctx.reject("sink", rejected).await
}

async fn commit_loop(
    ctx: Arc<Ctx>,
    mut rx: mpsc::UnboundedReceiver<CommitMsg>,
    mut parts: Vec<PartState>,
    store: Arc<dyn CheckpointStore>,
    base: UnitCheckpoint,
) -> Result<Vec<PartState>> {
    let mut tracker = AckTracker::default();
    let mut marks: VecDeque<(u64, usize, Option<Position>, bool)> = VecDeque::new();
    let mut dirty = false;
    let mut last_save = Instant::now();
    let interval = ctx.config.checkpoint_interval;
    while let Some(msg) = rx.recv().await {
        match msg {
            CommitMsg::Mark {
                at,
                part,
                position,
                done,
            } => marks.push_back((at, part, position, done)),
            CommitMsg::Ack(runs) => tracker.ack(&runs),
        }
        while marks.front().is_some_and(|m| m.0 <= tracker.watermark()) {
            let (_, part, position, done) = marks.pop_front().expect("checked");
            if let Some(p) = parts.get_mut(part) {
                if position.is_some() {
                    p.position = position;
                }
                p.done |= done;
                dirty = true;
            }
        }
        if dirty && last_save.elapsed() >= interval && !ctx.shared.abort.is_cancelled() {
            let cp = UnitCheckpoint {
                parts: parts.clone(),
                written: base.written + ctx.counters.written.load(Ordering::Relaxed),
                updated_at: Timestamp::now(),
                ..base.clone()
            };
            if let Err(e) = store.save(&ctx.job, &ctx.unit, &cp).await {
                ctx.shared.fail(e);
            }
            dirty = false;
            last_save = Instant::now();
        }
    }
    Ok(parts)
}

#[allow(clippy::too_many_arguments)]
async fn progress_loop(
    sender: ProgressSender,
    job: Arc<str>,
    unit: Arc<str>,
    counters: Arc<Counters>,
    source: Arc<dyn Source>,
    interval: Duration,
    base_written: u64,
    done: CancellationToken,
) {
    let estimated = source.estimate_rows().await;
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = Instant::now();
        let written = counters.written.load(Ordering::Relaxed);
        let rate = (written - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-6);
        last = (now, written);
        let mut snap = counters.snapshot(estimated, rate);
        snap.written += base_written;
        let _ = sender.send(ProgressEvent {
            job: job.clone(),
            unit: unit.clone(),
            kind: ProgressKind::Progress(snap),
        });
    }
}

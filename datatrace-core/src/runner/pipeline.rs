//! [`Pipeline`]: runs one unit from a source through transforms into a sink.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::rate::RateLimiter;
use super::tracker::Runs;
use super::{ErrorPolicy, PipelineConfig, RunReport, RunStatus};
use crate::checkpoint::{
    CheckpointStore, MemoryCheckpointStore, PartState, UnitCheckpoint, UnitState,
};
use crate::dlq::DeadLetterQueue;
use crate::error::{Error, Result};
use crate::progress::{Counters, ProgressEvent, ProgressKind, ProgressSender};
use crate::sink::{PrepareContext, Sink};
use crate::source::{Source, SourceMsg};
use crate::temporal::Timestamp;
use crate::transform::Transform;

use super::commit::commit_loop;
use super::context::{join, unwind, CommitMsg, Ctx, Shared, StopOnDrop, WorkItem};
use super::dispatch::{Dispatcher, PendingBatch};
use super::read::read_loop;
use super::ticker::progress_loop;
use super::write::worker_loop;

/// Messages the committer's channel holds (marks and acknowledgements, each a few words).
const COMMIT_CHANNEL_CAPACITY: usize = 1024;

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
        let Some((resumed, parts, base_written)) = self.starting_parts().await? else {
            return Ok(self.report(RunStatus::AlreadyDone, false, &Counters::new(), started));
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
        let (result, prepared) = match self.prepare(resumed && self.source.resumes_exactly()).await
        {
            Ok(ctx) => (self.execute(&mut cp, &counters).await, Some(ctx)),
            Err(e) => (Err(e), None),
        };
        let all_done = cp.parts.iter().all(|p| p.done);
        let result = match (result, prepared) {
            (Ok(()), Some(ctx)) if all_done => self
                .sink
                .finish_unit(&ctx)
                .await
                .map_err(|e| Error::sink(&self.unit, "", e)),
            (other, _) => other,
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

    /// Where the unit starts: its checkpoint's parts (resumed) or the source's split, with
    /// the records written before; `None` when the checkpoint says it is done.
    async fn starting_parts(&self) -> Result<Option<(bool, Vec<PartState>, u64)>> {
        Ok(match self.checkpoints.load(&self.job, &self.unit).await? {
            Some(cp) if cp.state == UnitState::Done => None,
            Some(cp) if !cp.parts.is_empty() => Some((true, cp.parts, cp.written)),
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
                Some((false, parts, 0))
            }
        })
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

    async fn prepare(&self, resumed: bool) -> Result<PrepareContext> {
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
        self.sink
            .prepare(&ctx)
            .await
            .map_err(|e| Error::sink(&self.unit, "preparing the target", e))?;
        Ok(ctx)
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
            in_flight: Default::default(),
        });

        let (src_tx, src_rx) = mpsc::channel::<SourceMsg>(cfg.channel_capacity);
        // Bounded: a committer slowed by its checkpoint store slows the run instead of
        // queueing acknowledgements without limit.
        let (commit_tx, commit_rx) = mpsc::channel::<CommitMsg>(COMMIT_CHANNEL_CAPACITY);

        // The committer: saves checkpoints behind the acknowledged watermark.
        let base = UnitCheckpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let committer = tokio::spawn(commit_loop(
            ctx.clone(),
            commit_rx,
            cp.parts.clone(),
            self.checkpoints.clone(),
            base,
            self.source.clone(),
        ));

        // Sink workers, each fed by one channel (by key) or all by one.
        let (worker_txs, workers) =
            spawn_workers(&ctx, &commit_tx, cfg.writers(self.source.ordered()));

        let readers = self.spawn_readers(&ctx, cp, src_tx);
        let ticker = self.spawn_ticker(counters, cp.written);

        // The dispatcher runs here (and the transforms with it).
        let mut dispatcher = self.dispatcher(&ctx, worker_txs, commit_tx.clone());
        drop(commit_tx);
        // Transforms run here: a panic in one fails the run like any task's.
        if let Err(e) = unwind(&self.unit, "dispatcher", dispatcher.run(src_rx)).await {
            shared.fail(e);
        }
        drop(dispatcher);

        for r in readers {
            join(&shared, &self.unit, "source", r).await;
        }
        for w in workers {
            join(&shared, &self.unit, "sink", w).await;
        }
        let final_parts = join(&shared, &self.unit, "committer", committer).await;
        if let Some((done, handle)) = ticker {
            done.cancel();
            join(&shared, &self.unit, "progress ticker", handle).await;
        }
        match final_parts {
            Some(Ok(parts)) => cp.parts = parts,
            Some(Err(e)) => shared.fail(e),
            None => {}
        }
        let failure = shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        failure.map_or(Ok(()), Err)
    }

    /// The dispatcher feeding `worker_txs` (one pending batch per channel).
    fn dispatcher(
        &self,
        ctx: &Arc<Ctx>,
        worker_txs: Vec<mpsc::Sender<WorkItem>>,
        commit_tx: mpsc::Sender<CommitMsg>,
    ) -> Dispatcher<'_> {
        let rate = self.config.rate_limit;
        Dispatcher {
            ctx: ctx.clone(),
            transforms: &self.transforms,
            pending: worker_txs.iter().map(|_| PendingBatch::default()).collect(),
            loose: Runs::default(),
            next_seq: 0,
            worker_txs,
            commit_tx,
            limiter: rate.is_limited().then(|| RateLimiter::new(rate)),
            moving: None,
        }
    }

    /// The part readers: `read_parallelism` tasks taking the parts not done off one queue.
    fn spawn_readers(
        &self,
        ctx: &Arc<Ctx>,
        cp: &UnitCheckpoint,
        src_tx: mpsc::Sender<SourceMsg>,
    ) -> Vec<JoinHandle<()>> {
        let todo: VecDeque<usize> = cp
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.done)
            .map(|(i, _)| i)
            .collect();
        let todo = Arc::new(Mutex::new(todo));
        let parts = Arc::new(cp.parts.clone());
        (0..self.config.readers(self.source.ordered()))
            .map(|_| {
                tokio::spawn(read_loop(
                    ctx.clone(),
                    self.source.clone(),
                    parts.clone(),
                    todo.clone(),
                    src_tx.clone(),
                ))
            })
            .collect()
    }

    /// The progress ticker (with the token that ends it), when progress is published.
    fn spawn_ticker(
        &self,
        counters: &Arc<Counters>,
        written_before: u64,
    ) -> Option<(CancellationToken, JoinHandle<()>)> {
        self.progress.clone().map(|p| {
            let done = CancellationToken::new();
            let handle = tokio::spawn(progress_loop(
                p,
                self.job.as_str().into(),
                self.unit.as_str().into(),
                counters.clone(),
                self.source.clone(),
                self.config.progress_interval,
                written_before,
                done.clone(),
            ));
            (done, handle)
        })
    }
}

/// `workers_n` sink workers and the senders of their channels: one channel per worker when records
/// are routed by key (`partition_by_key`), else one shared by all.
fn spawn_workers(
    ctx: &Arc<Ctx>,
    commit_tx: &mpsc::Sender<CommitMsg>,
    workers_n: usize,
) -> (Vec<mpsc::Sender<WorkItem>>, Vec<JoinHandle<()>>) {
    let cfg = &ctx.config;
    let channels = if cfg.partition_by_key { workers_n } else { 1 };
    let mut worker_txs = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..channels {
        let (tx, rx) = mpsc::channel::<WorkItem>(cfg.channel_capacity);
        worker_txs.push(tx);
        receivers.push(Arc::new(tokio::sync::Mutex::new(rx)));
    }
    let workers = (0..workers_n)
        .map(|w| {
            let rx = receivers[w % channels].clone();
            tokio::spawn(worker_loop(ctx.clone(), rx, commit_tx.clone()))
        })
        .collect();
    (worker_txs, workers)
}

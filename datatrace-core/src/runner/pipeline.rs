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
use super::context::{CommitMsg, Ctx, Shared, StopOnDrop};
use super::dispatch::{Dispatcher, PendingBatch, WorkItem};
use super::read::read_loop;
use super::ticker::progress_loop;
use super::write::worker_loop;

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
            in_flight: Default::default(),
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

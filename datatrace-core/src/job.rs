//! [`Job`]: a set of units (tables, indices) run by a scheduler with a concurrency limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::cause::Cause;
use crate::checkpoint::{CheckpointStore, MemoryCheckpointStore, UnitState};
use crate::dlq::DeadLetterQueue;
use crate::error::Result;
use crate::progress::ProgressSender;
use crate::runner::{Pipeline, PipelineConfig, RunReport, RunStatus};
use crate::sink::Sink;
use crate::source::Source;
use crate::transform::Transform;

/// One unit of a job: what to read, what to write, and what to do in between.
pub struct UnitSpec {
    /// The unit's name, unique in the job (checkpoints are keyed by it).
    pub name: String,
    /// Where records come from.
    pub source: Arc<dyn Source>,
    /// Where they go.
    pub sink: Arc<dyn Sink>,
    /// Applied in order.
    pub transforms: Vec<Arc<dyn Transform>>,
    /// Settings for this unit; the job's when `None`.
    pub config: Option<PipelineConfig>,
}

impl UnitSpec {
    /// A unit without transforms, using the job's settings.
    pub fn new(name: impl Into<String>, source: Arc<dyn Source>, sink: Arc<dyn Sink>) -> Self {
        UnitSpec {
            name: name.into(),
            source,
            sink,
            transforms: Vec::new(),
            config: None,
        }
    }
}

/// How one unit of a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    /// The unit.
    pub unit: String,
    /// Its state after the run.
    pub state: UnitState,
    /// What the run did (absent if it never started).
    pub report: Option<RunReport>,
    /// The error, for failed units.
    pub error: Option<String>,
    /// The error itself, for failed units: its source chain leads to the connector's typed
    /// error (find it with [`Cause::downcast_ref`] on the links of the chain, or
    /// [`crate::Error::find_source`] on [`UnitResult::failure`]). Not serialized.
    #[serde(skip)]
    pub cause: Option<Cause>,
}

impl UnitResult {
    /// The run's error, for failed units.
    pub fn failure(&self) -> Option<&crate::Error> {
        self.cause
            .as_ref()
            .and_then(|c| c.downcast_ref::<crate::Error>())
    }
}

/// What a job run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job.
    pub job: String,
    /// One entry per unit, in the order they were added.
    pub units: Vec<UnitResult>,
    /// Wall time.
    #[serde(with = "crate::runner::millis")]
    pub duration: Duration,
}

impl JobReport {
    /// Whether every unit is done.
    pub fn is_complete(&self) -> bool {
        self.units.iter().all(|u| u.state == UnitState::Done)
    }
    /// Whether any unit failed.
    pub fn has_failures(&self) -> bool {
        self.units.iter().any(|u| u.state == UnitState::Failed)
    }
    /// Records written by this run, over all units.
    pub fn written(&self) -> u64 {
        self.units
            .iter()
            .filter_map(|u| u.report.as_ref())
            .map(|r| r.written)
            .sum()
    }
}

/// Runs units with at most `concurrency` at a time, each with its own checkpoint.
///
/// Units already done (by their checkpoint) are skipped; units that were running or failed
/// resume from their checkpoints. A failing unit does not stop the others.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datatrace_core::Result<()> {
/// use std::sync::Arc;
/// use datatrace_core::testing::{CollectingSink, GeneratorSource};
/// use datatrace_core::{Job, UnitSpec};
///
/// let mut job = Job::new("copy").concurrency(2);
/// for t in ["a", "b", "c"] {
///     job = job.unit(UnitSpec::new(t, Arc::new(GeneratorSource::new(100, 3, 8)), Arc::new(CollectingSink::new())));
/// }
/// let report = job.run().await?;
/// assert!(report.is_complete());
/// assert_eq!(report.written(), 300);
/// # Ok(()) }
/// ```
pub struct Job {
    name: String,
    units: Vec<UnitSpec>,
    concurrency: usize,
    config: PipelineConfig,
    checkpoints: Arc<dyn CheckpointStore>,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    progress: Option<ProgressSender>,
    cancel: CancellationToken,
}

impl Job {
    /// An empty job with one unit at a time and in-memory checkpoints.
    pub fn new(name: impl Into<String>) -> Self {
        Job {
            name: name.into(),
            units: Vec::new(),
            concurrency: 1,
            config: PipelineConfig::default(),
            checkpoints: Arc::new(MemoryCheckpointStore::new()),
            dlq: None,
            progress: None,
            cancel: CancellationToken::new(),
        }
    }
    /// Adds a unit.
    pub fn unit(mut self, unit: UnitSpec) -> Self {
        self.units.push(unit);
        self
    }
    /// How many units run at the same time (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Settings for units that have none of their own.
    pub fn config(mut self, config: PipelineConfig) -> Self {
        self.config = config;
        self
    }
    /// The checkpoint store.
    pub fn checkpoints(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.checkpoints = store;
        self
    }
    /// The dead-letter queue.
    pub fn dead_letters(mut self, dlq: Arc<dyn DeadLetterQueue>) -> Self {
        self.dlq = Some(dlq);
        self
    }
    /// Where progress events go.
    pub fn progress(mut self, sender: ProgressSender) -> Self {
        self.progress = Some(sender);
        self
    }
    /// Uses this token to stop the job gracefully: running units flush and checkpoint, units
    /// not started stay pending.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the units. `Err` only for problems outside the units (the checkpoint store);
    /// unit failures are in the report.
    pub async fn run(self) -> Result<JobReport> {
        let started = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for u in &self.units {
            if !seen.insert(u.name.as_str()) {
                return Err(crate::Error::Config(format!(
                    "job {}: unit {:?} appears twice",
                    self.name, u.name
                )));
            }
        }
        // Units start strictly in the order they were added: a permit is taken here, before
        // the unit's task is spawned. (A unit that waits for earlier ones, like a change stream
        // waiting for its snapshots, can then never take the last slot from them.)
        let sem = Arc::new(Semaphore::new(self.concurrency.min(Semaphore::MAX_PERMITS)));
        let mut handles = Vec::new();
        for spec in self.units {
            let cancel = self.cancel.clone();
            let permit = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                p = sem.clone().acquire_owned() => p.ok(),
            };
            let mut pipeline = Pipeline::new(spec.name.clone(), spec.source, spec.sink)
                .job(self.name.clone())
                .transforms(spec.transforms)
                .config(spec.config.unwrap_or_else(|| self.config.clone()))
                .checkpoints(self.checkpoints.clone())
                .cancel_token(cancel.clone());
            if let Some(d) = &self.dlq {
                pipeline = pipeline.dead_letters(d.clone());
            }
            if let Some(p) = &self.progress {
                pipeline = pipeline.progress(p.clone());
            }
            let store = self.checkpoints.clone();
            let job = self.name.clone();
            let name = spec.name;
            let run = run_unit(pipeline, permit, cancel, store, job, name.clone());
            handles.push((name, tokio::spawn(run)));
        }
        let mut units = Vec::with_capacity(handles.len());
        for (name, h) in handles {
            // A panic escaping a unit's run fails that unit, never the job's other units.
            units.push(h.await.unwrap_or_else(|e| panicked(name, e)));
        }
        Ok(JobReport {
            job: self.name,
            units,
            duration: started.elapsed(),
        })
    }
}

/// Runs one unit once it holds its slot (`permit`); a unit that got none (the job was
/// stopped first) reports the state its checkpoint holds.
async fn run_unit(
    pipeline: Pipeline,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    cancel: CancellationToken,
    store: Arc<dyn CheckpointStore>,
    job: String,
    name: String,
) -> UnitResult {
    let result = |state, report, error: Option<crate::Error>| UnitResult {
        unit: name.clone(),
        state,
        report,
        error: error.as_ref().map(|e| e.to_string()),
        cause: error.map(Cause::new),
    };
    let Some(_permit) = permit.filter(|_| !cancel.is_cancelled()) else {
        let cp = store.load(&job, &name).await.ok().flatten();
        return result(cp.map_or(UnitState::Pending, |c| c.state), None, None);
    };
    match pipeline.run().await {
        Ok(report) => {
            let state = match report.status {
                RunStatus::Completed | RunStatus::AlreadyDone => UnitState::Done,
                RunStatus::Stopped => UnitState::Running,
            };
            result(state, Some(report), None)
        }
        Err(e) => result(UnitState::Failed, None, Some(e)),
    }
}

/// A panic escaping a unit's run fails that unit, never the job's other units.
fn panicked(unit: String, e: tokio::task::JoinError) -> UnitResult {
    let message = match e.try_into_panic() {
        Ok(p) => crate::runner::panic_message(&*p),
        Err(e) => e.to_string(),
    };
    let e = crate::Error::Panicked {
        unit: unit.clone(),
        task: "unit run",
        message,
    };
    UnitResult {
        unit,
        state: UnitState::Failed,
        report: None,
        error: Some(e.to_string()),
        cause: Some(Cause::new(e)),
    }
}

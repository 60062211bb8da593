//! From a [`JobFile`] to a runnable core [`Job`]: the source's connector discovers the units
//! (one per table or index), the target's connector gives each its sink, and the transforms
//! are checked against each unit's schema. No connector is named here: everything goes
//! through [`crate::connectors`].
//!
//! Every error is a [`JobFileError`] naming the file and the key whose value is at fault (the
//! server's URL, the table pattern, the transform), so `validate` and `run` report problems
//! the same way before anything is written.

use std::path::PathBuf;
use std::sync::Arc;

use datatrace_core::transforms::build_specs;
use datatrace_core::{
    CheckpointStore, FileCheckpointStore, FileDeadLetterQueue, Job, PipelineConfig, Record,
    SchemaRef, Sink, Transform, UnitSpec,
};

use crate::connectors::{JobExtra, JobPlan, SourceUnits};
use crate::job_file::{JobFile, JobFileError};

pub mod predict;
pub mod unit;
pub mod unit_sink;

pub use unit::PlannedUnit;

/// A job ready to run: its units and settings.
pub struct Plan {
    /// The job's name.
    pub name: String,
    /// Its units, in discovery order.
    pub units: Vec<PlannedUnit>,
    /// The transforms, shared by every unit.
    pub transforms: Vec<Arc<dyn Transform>>,
    /// Units run at the same time.
    pub concurrency: usize,
    /// The pipeline settings of every unit.
    pub config: PipelineConfig,
    /// Where checkpoints are kept.
    pub checkpoint_dir: PathBuf,
    /// Where dead letters go.
    pub dead_letter_path: PathBuf,
    /// How `check` and `validate` examine a job its source planned whole (denormalized
    /// documents); `None` for one unit per table or index.
    pub extra: Option<Arc<dyn JobExtra>>,
    /// The job's checkpoint store: the one the job was planned with (a `snapshot+cdc`
    /// source's handoff keeps its start there), or one the target keeps itself (a fenced
    /// Kafka writer: in Kafka, committed with the events).
    pub checkpoints: Arc<dyn CheckpointStore>,
}

impl Plan {
    /// The checkpoint store of this job.
    pub fn checkpoint_store(&self) -> Arc<dyn CheckpointStore> {
        self.checkpoints.clone()
    }

    /// The dead-letter queue of this job.
    pub fn dead_letter_queue(&self) -> Arc<FileDeadLetterQueue> {
        Arc::new(FileDeadLetterQueue::new(&self.dead_letter_path))
    }

    /// The core job: every unit with the shared transforms, the job's checkpoint store and
    /// the dead-letter file. Add progress and a cancel token before running it.
    pub fn into_job(self) -> Job {
        let mut job = Job::new(self.name.clone())
            .concurrency(self.concurrency)
            .config(self.config.clone())
            .checkpoints(self.checkpoint_store())
            .dead_letters(self.dead_letter_queue());
        for u in self.units {
            let mut spec = UnitSpec::new(u.name, u.source, u.sink);
            spec.transforms = u.own_transforms;
            spec.transforms.extend(self.transforms.iter().cloned());
            job = job.unit(spec);
        }
        job
    }
}

/// The checkpoint store of a job run from the command line: JSON files under the job
/// file's `[checkpoints] dir`.
pub fn file_store(job: &JobFile) -> Arc<dyn CheckpointStore> {
    Arc::new(FileCheckpointStore::new(&job.checkpoint_dir))
}

/// Plans `job` to run with checkpoints in `store`: discovers its units and checks
/// everything that can be checked before a run (servers reachable, tables and indices
/// present, transforms valid for each schema, targets present or creatable).
pub async fn plan(job: &JobFile, store: Arc<dyn CheckpointStore>) -> Result<Plan, JobFileError> {
    let ctx = job.ctx();
    if let Some(whole) = job.source.plan_job(ctx, &store).await {
        return Ok(planned_whole(job, whole?, store));
    }
    let file = job.file.as_str();
    // A target that keeps the checkpoints (a fenced Kafka writer) is connected first: the
    // source's units keep state in its store too (the snapshot+cdc handoff's start).
    let early = if job.target.keeps_checkpoints() {
        Some(job.target.connect(ctx).await?)
    } else {
        None
    };
    let store = early
        .as_ref()
        .and_then(|t| t.checkpoint_store())
        .unwrap_or(store);
    let SourceUnits {
        units: found,
        endpoint,
    } = job.source.discover(ctx, &store).await?;
    let target = match early {
        Some(t) => t,
        None => job.target.connect(ctx).await?,
    };
    let transforms =
        build_specs(&job.transforms).map_err(|e| JobFileError::new(file, "transforms", e))?;
    let mut units = Vec::with_capacity(found.len());
    for found in found {
        let name = found.name;
        let source = found.source;
        let schema = source
            .schema()
            .await
            .map_err(|e| JobFileError::new(file, "source", job.scrub(&e.to_string())))?;
        let mut transformed = match &schema {
            Some(s) if !job.transforms.is_empty() => Some(check_transforms(job, &name, s)?),
            _ => None,
        };
        let mut own_transforms = found.own_transforms;
        let mut schema = schema;
        if let (true, Some(s)) = (found.own_target, &schema) {
            // Units that share one schema (generated rows): named after their unit, so
            // that each unit gets its own table or index.
            let out = transformed.as_ref().unwrap_or(s);
            transformed = Some(Arc::new(out.renamed(None, name.clone())));
            schema = Some(Arc::new(s.renamed(None, name.clone())));
            let target: Arc<str> = name.as_str().into();
            own_transforms.push(Arc::new(move |mut r: Record| {
                r.target = Some(target.clone());
                Some(r)
            }));
        }
        let estimated_rows = source.estimate_rows().await;
        let same = endpoint
            .as_deref()
            .and_then(|ep| name.split_once('.').map(|(db, t)| (ep, db, t)));
        let (sink, target_name) = target
            .sink_for(ctx, &name, schema.as_ref(), transformed, same)
            .await?;
        units.push(PlannedUnit {
            name,
            target: target_name,
            source,
            sink,
            schema,
            own_transforms,
            estimated_rows,
        });
    }
    let mut config = job.settings.pipeline_config();
    // Change streams keep the order of each key's changes across sink workers.
    if job.source.streams() {
        config.partition_by_key = true;
    }
    target.adjust_config(&mut config);
    Ok(Plan {
        name: job.name.clone(),
        units,
        transforms,
        concurrency: job.settings.concurrency,
        config,
        checkpoint_dir: job.checkpoint_dir.clone(),
        dead_letter_path: job.dead_letter_path.clone(),
        extra: None,
        checkpoints: store,
    })
}

/// A plan from a job its source planned whole.
fn planned_whole(job: &JobFile, whole: JobPlan, store: Arc<dyn CheckpointStore>) -> Plan {
    let mut config = job.settings.pipeline_config();
    if whole.streams {
        config.partition_by_key = true;
    }
    Plan {
        name: job.name.clone(),
        units: whole.units,
        transforms: Vec::new(),
        concurrency: job.settings.concurrency,
        config,
        checkpoint_dir: job.checkpoint_dir.clone(),
        dead_letter_path: job.dead_letter_path.clone(),
        extra: Some(whole.extra),
        checkpoints: store,
    }
}

/// The target's sink on its own (for `dlq replay`): records go where their table or index
/// name routes them.
pub async fn target_sink(job: &JobFile) -> Result<Arc<dyn Sink>, JobFileError> {
    Ok(job.target.connect(job.ctx()).await?.replay_sink())
}

/// Checks the transform chain against a unit's schema; returns the schema records will
/// have, or an error naming the transform's key and the unit.
fn check_transforms(
    job: &JobFile,
    unit: &str,
    schema: &SchemaRef,
) -> Result<SchemaRef, JobFileError> {
    let mut current = schema.clone();
    for (i, spec) in job.transforms.iter().enumerate() {
        current = spec.output_schema(&current).map_err(|e| {
            JobFileError::new(
                &job.file,
                &format!("transforms[{i}]"),
                format!("unit {unit:?}: {e}"),
            )
        })?;
    }
    Ok(current)
}

//! From a [`JobFile`] to a runnable core [`Job`]: connects to the source and target,
//! discovers the units (one per table or index), checks the transforms against each unit's
//! schema, and builds the sources and sinks.
//!
//! Every error is a [`JobFileError`] naming the file and the key whose value is at fault (the
//! server's URL, the table pattern, the transform), so `validate` and `run` report problems
//! the same way before anything is written.

use std::path::PathBuf;
use std::sync::Arc;

use datatrace_core::testing::{DiscardSink, GeneratorSource};
use datatrace_core::transforms::build_specs;
use datatrace_core::{
    FileCheckpointStore, FileDeadLetterQueue, Job, PipelineConfig, SchemaRef, Sink, Source,
    Transform, UnitSpec,
};

use crate::job_file::{JobFile, JobFileError, SourceSpec, TargetSpec};

/// One unit of a planned job.
pub struct PlannedUnit {
    /// The unit's name (checkpoints are keyed by it): the table or index.
    pub name: String,
    /// What it is written to (table or index name), for people.
    pub target: String,
    /// Its reader.
    pub source: Arc<dyn Source>,
    /// Its writer.
    pub sink: Arc<dyn Sink>,
    /// The source's schema, when known before reading.
    pub schema: Option<SchemaRef>,
    /// How many records the source expects, when it can tell.
    pub estimated_rows: Option<u64>,
}

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
}

impl Plan {
    /// The checkpoint store of this job.
    pub fn checkpoint_store(&self) -> Arc<FileCheckpointStore> {
        Arc::new(FileCheckpointStore::new(&self.checkpoint_dir))
    }

    /// The dead-letter queue of this job.
    pub fn dead_letter_queue(&self) -> Arc<FileDeadLetterQueue> {
        Arc::new(FileDeadLetterQueue::new(&self.dead_letter_path))
    }

    /// The core job: every unit with the shared transforms, the file checkpoint store and
    /// the dead-letter file. Add progress and a cancel token before running it.
    pub fn into_job(self) -> Job {
        let mut job = Job::new(self.name.clone())
            .concurrency(self.concurrency)
            .config(self.config.clone())
            .checkpoints(self.checkpoint_store())
            .dead_letters(self.dead_letter_queue());
        for u in self.units {
            let mut spec = UnitSpec::new(u.name, u.source, u.sink);
            spec.transforms = self.transforms.clone();
            job = job.unit(spec);
        }
        job
    }
}

/// Plans `job`: discovers its units and checks everything that can be checked before a
/// run (servers reachable, tables and indices present, transforms valid for each schema).
pub async fn plan(job: &JobFile) -> Result<Plan, JobFileError> {
    let file = job.file.as_str();
    let sources = discover_sources(job).await?;
    let transforms =
        build_specs(&job.transforms).map_err(|e| JobFileError::new(file, "transforms", e))?;
    let mut units = Vec::with_capacity(sources.len());
    for (name, source) in sources {
        let schema = source
            .schema()
            .await
            .map_err(|e| JobFileError::new(file, "source", job.scrub(&e.to_string())))?;
        if let Some(schema) = &schema {
            check_transforms(job, &name, schema)?;
        }
        let estimated_rows = source.estimate_rows().await;
        let (sink, target) = target_for(job, &name).await?;
        units.push(PlannedUnit {
            name,
            target,
            source,
            sink,
            schema,
            estimated_rows,
        });
    }
    Ok(Plan {
        name: job.name.clone(),
        units,
        transforms,
        concurrency: job.settings.concurrency,
        config: job.settings.pipeline_config(),
        checkpoint_dir: job.checkpoint_dir.clone(),
        dead_letter_path: job.dead_letter_path.clone(),
    })
}

/// The target's sink on its own (for `dlq replay`): records go where their table or index
/// name routes them.
pub async fn target_sink(job: &JobFile) -> Result<Arc<dyn Sink>, JobFileError> {
    match &job.target {
        TargetSpec::Discard(_) => Ok(Arc::new(DiscardSink::new())),
    }
}

/// The units of the source, by name.
async fn discover_sources(job: &JobFile) -> Result<Vec<(String, Arc<dyn Source>)>, JobFileError> {
    match &job.source {
        SourceSpec::Generator(g) => Ok(g
            .units
            .iter()
            .map(|u| {
                let s: Arc<dyn Source> = Arc::new(GeneratorSource::new(g.rows, g.columns, g.width));
                (u.clone(), s)
            })
            .collect()),
    }
}

/// The sink and the target's name for unit `unit`.
async fn target_for(job: &JobFile, unit: &str) -> Result<(Arc<dyn Sink>, String), JobFileError> {
    match &job.target {
        TargetSpec::Discard(_) => Ok((Arc::new(DiscardSink::new()), format!("{unit} (discarded)"))),
    }
}

/// Checks the transform chain against a unit's schema; the error names the transform's key
/// and the unit.
fn check_transforms(job: &JobFile, unit: &str, schema: &SchemaRef) -> Result<(), JobFileError> {
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
    Ok(())
}

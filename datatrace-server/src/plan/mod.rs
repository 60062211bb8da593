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
    FileCheckpointStore, FileDeadLetterQueue, Job, PipelineConfig, Record, SchemaRef, Sink, Source,
    Transform, UnitSpec,
};

use crate::job_file::{JobFile, JobFileError, SourceSpec, TargetSpec};

pub mod es;
pub mod mysql;
pub mod unit_sink;

use es::EsTarget;
use mysql::MySqlTarget;

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
    /// Transforms of this unit only, run before the job's (the generator's naming).
    pub own_transforms: Vec<Arc<dyn Transform>>,
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
            spec.transforms = u.own_transforms;
            spec.transforms.extend(self.transforms.iter().cloned());
            job = job.unit(spec);
        }
        job
    }
}

/// Plans `job`: discovers its units and checks everything that can be checked before a
/// run (servers reachable, tables and indices present, transforms valid for each schema,
/// targets present or creatable).
pub async fn plan(job: &JobFile) -> Result<Plan, JobFileError> {
    let file = job.file.as_str();
    let (sources, source_endpoint, snapshot_stamp) = discover_sources(job).await?;
    let target = Target::connect(job).await?;
    let transforms =
        build_specs(&job.transforms).map_err(|e| JobFileError::new(file, "transforms", e))?;
    let mut units = Vec::with_capacity(sources.len());
    for (name, source) in sources {
        let schema = source
            .schema()
            .await
            .map_err(|e| JobFileError::new(file, "source", job.scrub(&e.to_string())))?;
        let mut transformed = match &schema {
            Some(s) if !job.transforms.is_empty() => Some(check_transforms(job, &name, s)?),
            _ => None,
        };
        let mut own_transforms: Vec<Arc<dyn Transform>> = Vec::new();
        if let Some(stamp) = snapshot_stamp
            .as_ref()
            .filter(|_| name != mysql::STREAM_UNIT)
        {
            own_transforms.push(stamp.clone());
        }
        let mut schema = schema;
        if let (SourceSpec::Generator(_), Some(s)) = (&job.source, &schema) {
            // Generated rows all have the schema `generated`: name them after their unit so
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
        let same = source_endpoint
            .as_deref()
            .and_then(|ep| name.split_once('.').map(|(db, t)| (ep, db, t)));
        let (sink, target_name) = target
            .sink_for(job, &name, schema.as_ref(), transformed, same)
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
    Ok(Plan {
        name: job.name.clone(),
        units,
        transforms,
        concurrency: job.settings.concurrency,
        config: {
            let mut c = job.settings.pipeline_config();
            // Change streams keep the order of each key's changes across sink workers.
            if matches!(&job.source, SourceSpec::MySql(m) if m.mode.streams()) {
                c.partition_by_key = true;
            }
            c
        },
        checkpoint_dir: job.checkpoint_dir.clone(),
        dead_letter_path: job.dead_letter_path.clone(),
    })
}

/// The target's sink on its own (for `dlq replay`): records go where their table or index
/// name routes them.
pub async fn target_sink(job: &JobFile) -> Result<Arc<dyn Sink>, JobFileError> {
    Ok(match Target::connect(job).await? {
        Target::MySql(t) => t.replay_sink(),
        Target::Es(t) => t.replay_sink(),
        Target::Discard => Arc::new(DiscardSink::new()),
    })
}

type Discovered = (
    Vec<(String, Arc<dyn Source>)>,
    Option<String>,
    Option<Arc<dyn Transform>>,
);

/// The units of the source, by name, the MySQL source's `host:port` (to refuse copying
/// a table onto itself), and a transform for the table units of `snapshot+cdc` jobs.
async fn discover_sources(job: &JobFile) -> Result<Discovered, JobFileError> {
    match &job.source {
        SourceSpec::MySql(spec) => {
            let (conn, units) = mysql::discover(job, spec).await?;
            let (units, stamp) = mysql::with_stream(job, spec, &conn, units).await?;
            Ok((units, Some(conn.endpoint().to_owned()), stamp))
        }
        SourceSpec::Elasticsearch(spec) => Ok((es::discover(job, spec).await?, None, None)),
        SourceSpec::Generator(g) => Ok((
            g.units
                .iter()
                .map(|u| {
                    let s: Arc<dyn Source> =
                        Arc::new(GeneratorSource::new(g.rows, g.columns, g.width));
                    (u.clone(), s)
                })
                .collect(),
            None,
            None,
        )),
    }
}

/// A connected target.
enum Target {
    MySql(MySqlTarget),
    Es(EsTarget),
    Discard,
}

impl Target {
    async fn connect(job: &JobFile) -> Result<Target, JobFileError> {
        Ok(match &job.target {
            TargetSpec::MySql(spec) => Target::MySql(MySqlTarget::connect(job, spec).await?),
            TargetSpec::Elasticsearch(spec) => Target::Es(EsTarget::connect(job, spec).await?),
            TargetSpec::Discard(_) => Target::Discard,
        })
    }

    /// The sink and the target's name for a unit.
    async fn sink_for(
        &self,
        job: &JobFile,
        unit: &str,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
        source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        match self {
            Target::MySql(t) => t.sink_for(job, schema, transformed, source).await,
            Target::Es(t) => t.sink_for(job, schema, transformed).await,
            Target::Discard => Ok((Arc::new(DiscardSink::new()), format!("{unit} (discarded)"))),
        }
    }
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

//! The connector interface of the server: what a connector provides (job-file sections,
//! planning, `check` support, the web UI's descriptor) and what the server's generic code
//! asks of it. See [`super`] for how to write and register one.

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::transforms::TransformSpec;
use datatrace_core::{CheckpointStore, PipelineConfig, SchemaRef, Sink, Source, Transform};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::check::side::{CheckSource, CheckTarget};
use crate::check::{CheckError, CheckOptions, CheckReport};
use crate::job_file::error::JobFileError;
use crate::job_file::secrets::scrub_text;
use crate::job_file::settings::Settings;
use crate::plan::unit::PlannedUnit;

/// A connector: the `type` of job-file sections it answers to, and how it reads and writes.
///
/// Registered in the [`Registry`](super::Registry); everything the server does with a
/// source or target (job files, planning, `check`, `validate`, data sources and the web UI)
/// goes through this trait and the endpoints it parses.
pub trait Connector: Send + Sync + 'static {
    /// The `type` names it answers to, the canonical one first (`["elasticsearch",
    /// "opensearch"]`).
    fn types(&self) -> &'static [&'static str];

    /// Whether it can be a job's `[source]`.
    fn reads(&self) -> bool {
        false
    }

    /// Whether it can be a job's `[target]`.
    fn writes(&self) -> bool {
        false
    }

    /// Parses a `[source]` section (its keys without `type`); `file` and `at` name the file
    /// and the section's key path in errors.
    fn parse_source(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn SourceEndpoint>, JobFileError> {
        let _ = keys;
        Err(JobFileError::new(
            file,
            at,
            format!("{} is not a source", self.types()[0]),
        ))
    }

    /// Parses a `[target]` section (its keys without `type`).
    fn parse_target(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn TargetEndpoint>, JobFileError> {
        let _ = keys;
        Err(JobFileError::new(
            file,
            at,
            format!("{} is not a target", self.types()[0]),
        ))
    }

    /// How `datatrace serve` offers it: as a data source (a server with a URL and secrets)
    /// or inline (a task's source or target of this type needs no data source). `None`:
    /// not offered by the server.
    fn ui(&self) -> Option<ConnectorUi> {
        None
    }
}

/// How the server and its web UI show a connector.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorUi {
    /// The `type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For people: `MySQL / MariaDB`.
    pub label: &'static str,
    /// Whether it is a data source (a server the UI registers with its URL and secrets);
    /// `false`: used inline in tasks.
    pub data_source: bool,
    /// URL schemes a data source's URL may have (`mysql://`).
    pub url_schemes: &'static [&'static str],
    /// An example URL.
    pub url_example: &'static str,
    /// Whether the data source takes a user name field (else the user is in the URL).
    pub username: bool,
    /// Whether it takes an API key.
    pub api_key: bool,
    /// The source key listing the units (`tables`, `indices`), and its label.
    pub units_key: &'static str,
    /// `Tables`, `Indices`.
    pub units_label: &'static str,
    /// The patterns a data source is probed with (every unit: `*.*`, `*`).
    pub all_units: &'static str,
    /// The target key naming the target of each unit (`table`, `index`), and its label.
    pub target_key: &'static str,
    /// `Target table`, `Target index`.
    pub target_label: &'static str,
    /// Whether a task reading it may stream changes (`incremental`, `full+incremental`), and
    /// the source `mode` values those map to.
    pub stream_modes: Option<(&'static str, &'static str)>,
    /// Keys a task gives for its source or target of this kind beyond the units and the
    /// target naming (Kafka: the consumer group, the topic prefix); the wizard asks for them.
    pub task_fields: &'static [TaskField],
}

/// A key of a task's `source` or `target` that the wizard asks for ([`ConnectorUi::task_fields`]).
#[derive(Debug, Clone, Serialize)]
pub struct TaskField {
    /// `source` or `target`: the side of the task it belongs to.
    pub side: &'static str,
    /// The key in the task's `source` / `target` (`group`).
    pub key: &'static str,
    /// For people: `Consumer group`.
    pub label: &'static str,
    /// The value offered first; `{task}` stands for the task's name.
    pub default: &'static str,
    /// A line of help shown under the field.
    pub hint: &'static str,
}

/// What a connector's endpoint sees of the job it belongs to (the job file, without the
/// parsing machinery).
#[derive(Clone, Copy)]
pub struct JobCtx<'a> {
    /// The job file as given (used in messages).
    pub file: &'a str,
    /// The job's name (checkpoints are kept under it).
    pub name: &'a str,
    /// Where it reads.
    pub source: &'a SourceSpec,
    /// Where it writes.
    pub target: &'a TargetSpec,
    /// The job's transforms.
    pub transforms: &'a [TransformSpec],
    /// Pipeline settings and unit concurrency.
    pub settings: &'a Settings,
    /// The checkpoint directory of the job file.
    pub checkpoint_dir: &'a Path,
    /// The dead-letter file.
    pub dead_letter_path: &'a Path,
    /// Values never to print.
    pub secrets: &'a [String],
}

impl JobCtx<'_> {
    /// `text` with every secret of the job replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        scrub_text(self.secrets, text)
    }

    /// An error at `key` of the job file, its message scrubbed.
    pub fn error(&self, key: &str, message: impl fmt::Display) -> JobFileError {
        JobFileError::new(self.file, key, self.scrub(&message.to_string()))
    }
}

/// One unit a source found.
pub struct SourceUnit {
    /// The unit's name (checkpoints are keyed by it): the table or index.
    pub name: String,
    /// Its reader.
    pub source: Arc<dyn Source>,
    /// Transforms of this unit only, run before the job's.
    pub own_transforms: Vec<Arc<dyn Transform>>,
    /// Writes the unit's records to a target of its own name (the schema is renamed after
    /// the unit, and records are routed to it): for sources whose units share one schema.
    pub own_target: bool,
}

impl SourceUnit {
    /// A unit read by `source`.
    pub fn new(name: impl Into<String>, source: Arc<dyn Source>) -> Self {
        SourceUnit {
            name: name.into(),
            source,
            own_transforms: Vec::new(),
            own_target: false,
        }
    }
}

/// What a source found: its units, in order.
pub struct SourceUnits {
    /// The units.
    pub units: Vec<SourceUnit>,
    /// The server read from (`host:port`), so a target on the same server can refuse to
    /// write a unit onto itself.
    pub endpoint: Option<String>,
}

/// A whole job planned by its source (a source whose units are not one per table, such as
/// denormalized documents).
pub struct JobPlan {
    /// The units.
    pub units: Vec<PlannedUnit>,
    /// Whether each key's changes must keep their order (`partition_by_key`).
    pub streams: bool,
    /// How `check` and `validate` examine the job.
    pub extra: Arc<dyn JobExtra>,
}

/// `check` and `validate` of a job planned by its source ([`JobPlan`]).
#[async_trait]
pub trait JobExtra: Send + Sync {
    /// Compares every unit's target with its source.
    async fn check(&self, job: JobCtx<'_>, opts: &CheckOptions) -> Result<CheckReport, CheckError>;

    /// Lines `validate` adds (`fan-out: ...`), or the error that makes the job invalid.
    async fn validate(&self, job: JobCtx<'_>) -> Result<Vec<String>, JobFileError> {
        let _ = job;
        Ok(Vec::new())
    }
}

/// What "test connection" of a data source found.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// Whether the server answered.
    pub ok: bool,
    /// Its version.
    pub version: Option<String>,
    /// `mariadb`, `mysql`, `elasticsearch`, `opensearch`, ...
    pub flavor: Option<String>,
    /// What else it said (MySQL: the user's grants; Elasticsearch: the cluster name).
    pub details: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl TestResult {
    /// A failed test.
    pub fn failed(error: impl Into<String>) -> Self {
        TestResult {
            ok: false,
            version: None,
            flavor: None,
            details: Vec::new(),
            error: Some(error.into()),
        }
    }
}

/// A parsed `[source]`: settings of one connector, and what the server does with them.
#[async_trait]
pub trait SourceEndpoint: fmt::Debug + Send + Sync + 'static {
    /// The connector's `type`.
    fn kind(&self) -> &'static str;

    /// One line for people, without secrets.
    fn describe(&self) -> String;

    /// Checks what the rest of the job must be for this source (the target's kind, the
    /// transforms), naming the key at fault.
    fn check_job(
        &self,
        file: &str,
        target: &TargetSpec,
        transforms: &[TransformSpec],
    ) -> Result<(), JobFileError> {
        let _ = (file, target, transforms);
        Ok(())
    }

    /// Whether its records are change streams, whose changes of one key must be written in
    /// order (`partition_by_key`).
    fn streams(&self) -> bool {
        false
    }

    /// Finds the units (connecting, listing tables or indices); errors name the key at
    /// fault. `store` is the checkpoint store the job runs with.
    async fn discover(
        &self,
        job: JobCtx<'_>,
        store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError>;

    /// Plans the whole job, for sources whose units are not one per table (`None`: plan
    /// with [`SourceEndpoint::discover`] and the target).
    async fn plan_job(
        &self,
        job: JobCtx<'_>,
        store: &Arc<dyn CheckpointStore>,
    ) -> Option<Result<JobPlan, JobFileError>> {
        let _ = (job, store);
        None
    }

    /// Lines `validate` adds about the source (`stream: ...`).
    async fn validate(&self, job: JobCtx<'_>) -> Vec<String> {
        let _ = job;
        Vec::new()
    }

    /// What may be lossy about this job without being refused, one line per case naming the
    /// fix (MySQL: tables without a key in a stream into MySQL). `validate` prints them as
    /// `warning:` lines; `run` logs them once at start.
    async fn warnings(&self, job: JobCtx<'_>) -> Result<Vec<String>, JobFileError> {
        let _ = job;
        Ok(Vec::new())
    }

    /// For sources that stream changes: where the stream checkpoint of the stopped job
    /// `job_name` in `store` stands against what the server still holds (MySQL: its binlog
    /// retention). `None`: no stream, no checkpoint, or nothing can be at risk.
    async fn stopped_retention(
        &self,
        job: JobCtx<'_>,
        store: &dyn CheckpointStore,
        job_name: &str,
    ) -> Option<StoppedRetention> {
        let _ = (job, store, job_name);
        None
    }

    /// For sources that stream changes: the same source read as a copy (its tables, no
    /// stream), which is what `check` compares with the target. `None`: as it is.
    fn as_copy(&self) -> Option<SourceSpec> {
        None
    }

    /// Why `check` cannot compare this source, if it cannot.
    fn uncheckable(&self) -> Option<String> {
        Some(format!(
            "check compares a source that can be looked up by key with its target; this job's source is {}",
            self.kind()
        ))
    }

    /// Connects for `check`; the result gives each unit's side.
    async fn check_source(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckSourceConn>, JobFileError> {
        Err(job.error(
            "source.type",
            format!("{} sources cannot be checked", self.kind()),
        ))
    }

    /// For data sources: connects and reports what the server is.
    async fn test_connection(&self) -> TestResult {
        TestResult::failed("not a data source")
    }

    /// For data sources: the units it holds (`db.table`, index names), for the task wizard.
    async fn list_units(&self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }

    /// The settings as their own type (for connectors that build on another's settings).
    fn as_any(&self) -> &dyn Any;
}

/// Where a stopped change stream's checkpoint stands against its server
/// ([`SourceEndpoint::stopped_retention`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoppedRetention {
    /// The stream's unit (MySQL: `binlog`, or `documents` for a job of documents).
    pub unit: String,
    /// Seconds until the server may drop the data at the checkpoint, at least (0: dropped
    /// already, a gap); `None` when not at risk or it could not be checked.
    pub time_left_secs: Option<i64>,
    /// Below how many seconds left the task's log warns (the source's setting).
    pub warn_secs: u64,
    /// What was found, for people (secrets removed).
    pub text: String,
}

/// A source connected for `check`.
#[async_trait]
pub trait CheckSourceConn: Send + Sync {
    /// The side of one unit (`unit.name` names the table or index).
    async fn unit(&self, unit: &PlannedUnit) -> Result<Box<dyn CheckSource>, String>;
}

/// A parsed `[target]`.
#[async_trait]
pub trait TargetEndpoint: fmt::Debug + Send + Sync + 'static {
    /// The connector's `type`.
    fn kind(&self) -> &'static str;

    /// One line for people, without secrets.
    fn describe(&self) -> String;

    /// Connects (errors name the key at fault).
    async fn connect(&self, job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError>;

    /// Whether the connected target keeps the job's checkpoints itself
    /// ([`Target::checkpoint_store`]: a fenced Kafka writer commits them with its events);
    /// the planner then connects it before the source, whose units (the `snapshot+cdc`
    /// handoff) keep state in that store too. Connecting such a target must not need the
    /// network.
    fn keeps_checkpoints(&self) -> bool {
        false
    }

    /// Why `check` cannot compare this target, if it cannot.
    fn uncheckable(&self) -> Option<String> {
        Some(format!(
            "check compares a source with a target that can be read back; this job's target is {}",
            self.kind()
        ))
    }

    /// Connects for `check`.
    async fn check_target(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckTargetConn>, JobFileError> {
        Err(job.error(
            "target.type",
            format!("{} targets cannot be checked", self.kind()),
        ))
    }

    /// For data sources: connects and reports what the server is.
    async fn test_connection(&self) -> TestResult {
        TestResult::failed("not a data source")
    }

    /// The settings as their own type.
    fn as_any(&self) -> &dyn Any;
}

/// A target connected for `check`.
#[async_trait]
pub trait CheckTargetConn: Send + Sync {
    /// The side of one unit (`unit.target` names the table or index written).
    async fn unit(
        &self,
        unit: &PlannedUnit,
        source: &dyn CheckSource,
    ) -> Result<Box<dyn CheckTarget>, String>;
}

/// A connected target: the sinks of the job's units.
#[async_trait]
pub trait Target: Send + Sync {
    /// The sink of one unit and, for people, the table or index it writes. `schema` is the
    /// source's schema, `transformed` the records' after the transforms (when they change
    /// it); `same_source` the server and `db.table` the unit reads, to refuse writing a
    /// table onto itself.
    async fn sink_for(
        &self,
        job: JobCtx<'_>,
        unit: &str,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
        same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError>;

    /// The sink for `dlq replay`: records go where their table or index name routes them.
    fn replay_sink(&self) -> Arc<dyn Sink>;

    /// The job's checkpoint store when the target keeps checkpoints itself (committed with
    /// the data, as a fenced Kafka writer does).
    fn checkpoint_store(&self) -> Option<Arc<dyn CheckpointStore>> {
        None
    }

    /// What the target needs of the pipeline settings (a fenced Kafka writer commits its
    /// transactions with the position of the last record written, so its writes follow the
    /// stream's order, one at a time). The default changes nothing.
    fn adjust_config(&self, config: &mut PipelineConfig) {
        let _ = config;
    }

    /// The target as its own type (for connectors that build on another's target).
    fn as_any(&self) -> &dyn Any;
}

/// A job's `[source]`: the endpoint its connector parsed.
#[derive(Debug, Clone)]
pub struct SourceSpec(pub Arc<dyn SourceEndpoint>);

/// A job's `[target]`: the endpoint its connector parsed.
#[derive(Debug, Clone)]
pub struct TargetSpec(pub Arc<dyn TargetEndpoint>);

impl std::ops::Deref for SourceSpec {
    type Target = dyn SourceEndpoint;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::ops::Deref for TargetSpec {
    type Target = dyn TargetEndpoint;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl SourceSpec {
    /// The settings as the connector's own type `T`, if they are one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl TargetSpec {
    /// The settings as the connector's own type `T`, if they are one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

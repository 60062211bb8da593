//! `type = "kafka"`: Debezium change events from a consumer group ([`spec`] for the
//! settings, [`plan`] for the units and the shared producer). In `datatrace serve` a Kafka
//! cluster is a data source (`kafka://` URL, SASL user and password).

pub mod plan;
pub mod spec;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, SchemaRef, Sink};
use datatrace_kafka::ClusterInfo;
use serde_json::{Map, Value};

pub use spec::{KafkaSourceSpec, KafkaTargetSpec};

use super::api::{
    Connector, ConnectorUi, JobCtx, SourceEndpoint, SourceUnit, SourceUnits, Target,
    TargetEndpoint, TaskField, TestResult,
};
use crate::job_file::error::JobFileError;
use plan::KafkaTarget;

/// The Kafka connector.
pub struct KafkaConnector;

impl Connector for KafkaConnector {
    fn types(&self) -> &'static [&'static str] {
        &["kafka"]
    }

    fn reads(&self) -> bool {
        true
    }

    fn writes(&self) -> bool {
        true
    }

    fn parse_source(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn SourceEndpoint>, JobFileError> {
        Ok(Arc::new(spec::parse_source(file, at, keys)?))
    }

    fn parse_target(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn TargetEndpoint>, JobFileError> {
        Ok(Arc::new(spec::parse_target(file, at, keys)?))
    }

    /// A data source (its brokers, and a SASL user whose password is stored encrypted); a
    /// task names the consumer group of a source and the topic prefix of a target.
    fn ui(&self) -> Option<ConnectorUi> {
        Some(ConnectorUi {
            kind: "kafka",
            label: "Kafka (Debezium change events)",
            data_source: true,
            url_schemes: &[spec::SCHEME],
            url_example: "kafka://host:9092,host2:9092",
            username: true,
            api_key: false,
            units_key: "topics",
            units_label: "Topics",
            all_units: "^.*",
            target_key: "",
            target_label: "",
            stream_modes: None,
            task_fields: &[
                TaskField {
                    side: "source",
                    key: "group",
                    label: "Consumer group",
                    default: "{task}",
                    hint: "Tasks and workers of one group share the topics' partitions; the group's committed offsets are where a restart resumes.",
                },
                TaskField {
                    side: "target",
                    key: "topic_prefix",
                    label: "Topic prefix",
                    default: "datatrace",
                    hint: "Each table's changes go to {prefix}.{db}.{table} (Debezium's topic.prefix).",
                },
            ],
        })
    }
}

/// How long a data source's test and topic listing wait for the brokers.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster's metadata, asked off the async runtime.
async fn cluster(spec: &KafkaSourceSpec) -> Result<ClusterInfo, String> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || spec.cluster(METADATA_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[async_trait]
impl SourceEndpoint for KafkaSourceSpec {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn describe(&self) -> String {
        spec::describe_source(self)
    }

    fn streams(&self) -> bool {
        true
    }

    async fn discover(
        &self,
        job: JobCtx<'_>,
        _store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        let units = plan::discover(job, self)?
            .into_iter()
            .map(|(name, source)| SourceUnit::new(name, source))
            .collect();
        Ok(SourceUnits {
            units,
            endpoint: None,
        })
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    async fn test_connection(&self) -> TestResult {
        match cluster(self).await {
            Ok(c) => TestResult {
                ok: true,
                version: None,
                flavor: Some("kafka".into()),
                details: vec![
                    format!("brokers {}", c.brokers.join(", ")),
                    format!("{} topics", c.topics.len()),
                ],
                error: None,
            },
            Err(e) => TestResult::failed(e),
        }
    }

    async fn list_units(&self) -> Result<Vec<String>, String> {
        Ok(cluster(self)
            .await?
            .topics
            .into_iter()
            .map(|t| t.name)
            .collect())
    }

    async fn check_source(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn super::api::CheckSourceConn>, JobFileError> {
        Err(job.error(
            "source.type",
            "kafka sources cannot be checked: compare the target with the database the events came from",
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl TargetEndpoint for KafkaTargetSpec {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn describe(&self) -> String {
        spec::describe_target(self)
    }

    async fn connect(&self, job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError> {
        Ok(Box::new(KafkaTarget::connect(job, self)?))
    }

    fn keeps_checkpoints(&self) -> bool {
        self.fenced
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    async fn check_target(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn super::api::CheckTargetConn>, JobFileError> {
        Err(job.error(
            "target.type",
            "kafka targets cannot be checked: check the consumers' targets instead",
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl Target for KafkaTarget {
    async fn sink_for(
        &self,
        _job: JobCtx<'_>,
        unit: &str,
        _schema: Option<&SchemaRef>,
        _transformed: Option<SchemaRef>,
        _same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        Ok(KafkaTarget::sink_for(self, unit))
    }

    fn replay_sink(&self) -> Arc<dyn Sink> {
        KafkaTarget::replay_sink(self)
    }

    fn checkpoint_store(&self) -> Option<Arc<dyn CheckpointStore>> {
        KafkaTarget::checkpoint_store(self)
    }

    fn adjust_config(&self, config: &mut datatrace_core::PipelineConfig) {
        // A fenced writer commits its transactions with the position of the last record
        // written: its writes follow the stream's order, one at a time.
        if self.is_fenced() {
            config.sink_concurrency = 1;
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

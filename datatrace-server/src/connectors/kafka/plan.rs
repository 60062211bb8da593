//! Planning Kafka sources (one unit: the group's share of the topics) and targets (one sink
//! for every unit: each record goes to its table's topic).

use std::sync::Arc;

use datatrace_core::{CheckpointStore, Sink, Source};
use datatrace_kafka::{KafkaCheckpointStore, KafkaSink, KafkaSource};

use super::spec::{KafkaSourceSpec, KafkaTargetSpec};
use crate::connectors::api::JobCtx;
use crate::connectors::mysql::{MySqlSourceSpec, SourceMode};
use crate::job_file::error::JobFileError;

/// The unit of a Kafka source: the partitions this worker is given, of every topic.
pub const KAFKA_UNIT: &str = "kafka";

/// Units by name, each with its reader.
type Units = Vec<(String, Arc<dyn Source>)>;

/// The single unit of a Kafka source.
pub fn discover(job: JobCtx<'_>, spec: &KafkaSourceSpec) -> Result<Units, JobFileError> {
    let source = KafkaSource::new(spec.clone())
        .map_err(|e| JobFileError::new(job.file, "source", job.scrub(&e.to_string())))?;
    Ok(vec![(KAFKA_UNIT.to_owned(), Arc::new(source))])
}

/// A Kafka target: one producer shared by every unit.
pub struct KafkaTarget {
    sink: Arc<KafkaSink>,
}

impl KafkaTarget {
    /// Creates the producer (the brokers are first contacted when the first unit prepares).
    pub fn connect(job: JobCtx<'_>, spec: &KafkaTargetSpec) -> Result<Self, JobFileError> {
        if spec.fenced {
            if let Some(m) = job.source.get::<MySqlSourceSpec>() {
                if !matches!(m.mode, SourceMode::Cdc | SourceMode::SnapshotCdc) {
                    return Err(JobFileError::new(
                        job.file,
                        "target.fenced",
                        "a fenced Kafka writer takes a source with mode = \"cdc\" or \"snapshot+cdc\" (a one-off copy needs no fence: set fenced = false)",
                    ));
                }
            }
        }
        let sink = KafkaSink::new(spec.clone())
            .map_err(|e| JobFileError::new(job.file, "target", job.scrub(&e.to_string())))?;
        Ok(KafkaTarget {
            sink: Arc::new(sink),
        })
    }

    /// The sink of a unit and, for people, where its records go.
    pub fn sink_for(&self, unit: &str) -> (Arc<dyn Sink>, String) {
        let c = self.sink.config();
        let topics = c.topic.replace("{prefix}", &c.topic_prefix);
        (self.sink.clone(), format!("{unit} -> {topics}"))
    }

    /// The job's checkpoint store for a fenced target: in Kafka, committed with the events.
    pub fn checkpoint_store(&self) -> Option<Arc<dyn CheckpointStore>> {
        self.sink
            .fence()
            .map(|f| Arc::new(KafkaCheckpointStore::new(f.clone())) as Arc<dyn CheckpointStore>)
    }

    /// Whether the target is a fenced writer.
    pub fn is_fenced(&self) -> bool {
        self.sink.fence().is_some()
    }

    /// The sink for replays (records go to their table's topic).
    pub fn replay_sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }
}

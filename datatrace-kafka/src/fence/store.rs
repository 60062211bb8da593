//! [`KafkaCheckpointStore`]: a job's checkpoints in a compacted Kafka topic, each saved in the
//! same transaction as the events written before it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, Error, UnitCheckpoint};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::{Fence, Mark};

/// Checkpoints of a fenced job, kept in Kafka: loading one first waits until this instance
/// is the active writer (see [`Fence`]); saving one commits the open transaction.
pub struct KafkaCheckpointStore {
    fence: Arc<Fence>,
}

impl KafkaCheckpointStore {
    /// The store of `fence`.
    pub fn new(fence: Arc<Fence>) -> Self {
        KafkaCheckpointStore { fence }
    }

    fn key(job: &str, unit: &str) -> String {
        format!("{job}/{unit}")
    }

    async fn ensure_topic(&self) -> Result<(), Error> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.fence.brokers());
        let admin: AdminClient<DefaultClientContext> = c.create().map_err(err)?;
        let topic = self.fence.checkpoints_topic();
        let new =
            NewTopic::new(&topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
        let r = admin
            .create_topics([&new], &AdminOptions::new())
            .await
            .map_err(err)?;
        for r in r {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(Error::Checkpoint(format!(
                        "creating the checkpoints topic {t}: {code}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Every committed checkpoint, by key (the last value of each key).
    async fn read_all(&self) -> Result<BTreeMap<String, Option<Vec<u8>>>, Error> {
        self.fence.acquire().await.map_err(err)?;
        self.ensure_topic().await?;
        let topic = self.fence.checkpoints_topic();
        let brokers = self.fence.brokers().to_string();
        let mut security = ClientConfig::new();
        for (k, v) in self.fence.client().config_map() {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                security.set(k, v);
            }
        }
        tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let mut c = security;
            c.set("bootstrap.servers", &brokers)
                .set("group.id", format!("{topic}.reader"))
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed");
            let consumer: BaseConsumer = c.create().map_err(err)?;
            // the end of what is committed: the last stable offset
            let (_, end) = consumer
                .fetch_watermarks(&topic, 0, Duration::from_secs(15))
                .map_err(err)?;
            let mut out = BTreeMap::new();
            if end == 0 {
                return Ok(out);
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .map_err(err)?;
            consumer.assign(&tpl).map_err(err)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let position = consumer
                    .position()
                    .ok()
                    .and_then(|p| {
                        p.find_partition(&topic, 0)
                            .and_then(|e| e.offset().to_raw())
                    })
                    .unwrap_or(0);
                if position >= end {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(Error::Checkpoint(format!(
                        "reading the checkpoints topic {topic}: not at its end ({end}) within 60 s"
                    )));
                }
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        if let Some(k) = m.key() {
                            out.insert(
                                String::from_utf8_lossy(k).into_owned(),
                                m.payload().map(<[u8]>::to_vec),
                            );
                        }
                        if m.offset() + 1 >= end {
                            break;
                        }
                    }
                    Some(Err(e)) => tracing::warn!("reading {topic}: {e}"),
                    None => {}
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Checkpoint(e.to_string()))?
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("Kafka: {e}"))
}

/// What a commit stores under `{job}/{unit}`: the checkpoint, and the last record written in
/// the transaction it commits (see [`Mark`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Committed {
    checkpoint: UnitCheckpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written: Option<Mark>,
}

fn parse(bytes: &[u8]) -> Result<Committed, serde_json::Error> {
    serde_json::from_slice::<Committed>(bytes).or_else(|_| {
        // the first format: the checkpoint alone
        serde_json::from_slice::<UnitCheckpoint>(bytes).map(|checkpoint| Committed {
            checkpoint,
            written: None,
        })
    })
}

#[async_trait]
impl CheckpointStore for KafkaCheckpointStore {
    async fn load(&self, job: &str, unit: &str) -> datatrace_core::Result<Option<UnitCheckpoint>> {
        let all = self.read_all().await?;
        match all.get(&Self::key(job, unit)) {
            Some(Some(bytes)) => {
                let c = parse(bytes).map_err(|e| {
                    Error::Checkpoint(format!("checkpoint of {job}/{unit} in Kafka: {e}"))
                })?;
                if let Some(mark) = c.written {
                    tracing::info!(
                        ordinal = mark.ordinal,
                        count = mark.count,
                        "resuming after a takeover: records up to the last one committed are skipped"
                    );
                    self.fence.skip_upto(mark);
                }
                Ok(Some(c.checkpoint))
            }
            _ => Ok(None),
        }
    }

    async fn save(
        &self,
        job: &str,
        unit: &str,
        checkpoint: &UnitCheckpoint,
    ) -> datatrace_core::Result<()> {
        // the commit takes the transaction alone: no write is under way, so the mark is the
        // last record of what it commits
        let cp = serde_json::to_string(checkpoint).map_err(|e| Error::Checkpoint(e.to_string()))?;
        self.fence
            .commit_with(&Self::key(job, unit), |written| {
                let mut value = format!("{{\"checkpoint\":{cp}");
                if let Some(m) = written {
                    value.push_str(&format!(
                        ",\"written\":{{\"ordinal\":{},\"count\":{}}}",
                        m.ordinal, m.count
                    ));
                }
                value.push('}');
                Some(value.into_bytes())
            })
            .await
            .map_err(|e| Error::Checkpoint(e.to_string()))
    }

    async fn clear(&self, job: &str, unit: &str) -> datatrace_core::Result<()> {
        self.fence
            .commit_with(&Self::key(job, unit), |_| None)
            .await
            .map_err(|e| Error::Checkpoint(e.to_string()))
    }

    async fn list(&self, job: &str) -> datatrace_core::Result<Vec<(String, UnitCheckpoint)>> {
        let prefix = format!("{job}/");
        let mut out = Vec::new();
        for (k, v) in self.read_all().await? {
            let (Some(unit), Some(bytes)) = (k.strip_prefix(&prefix), v) else {
                continue;
            };
            if let Ok(c) = parse(&bytes) {
                out.push((unit.to_string(), c.checkpoint));
            }
        }
        Ok(out)
    }
}

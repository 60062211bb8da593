//! Topics: finding them, their partitions, and creating missing ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::error::KafkaError;

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// The partition counts of the topics a client has used, creating topics when allowed.
pub(crate) struct Topics {
    admin: Arc<AdminClient<DefaultClientContext>>,
    brokers: String,
    known: Mutex<HashMap<String, i32>>,
}

/// How to create missing topics (`None`: do not).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creation {
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Topics {
    pub(crate) fn new(config: &ClientConfig, brokers: &str) -> Result<Self, KafkaError> {
        let mut admin_config = ClientConfig::new();
        for (k, v) in config.config_map() {
            // producer- and consumer-only settings make the admin client complain
            if !matches!(
                k,
                "enable.idempotence"
                    | "acks"
                    | "partitioner"
                    | "linger.ms"
                    | "message.timeout.ms"
                    | "transactional.id"
                    | "transaction.timeout.ms"
                    | "compression.type"
            ) {
                admin_config.set(k, v);
            }
        }
        let admin = admin_config.create().map_err(|source| KafkaError::Client {
            what: "admin",
            source,
        })?;
        Ok(Topics {
            admin: Arc::new(admin),
            brokers: brokers.to_string(),
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The number of partitions of `topic`, creating it first when missing and `create` is
    /// set.
    pub(crate) async fn partitions(
        &self,
        topic: &str,
        create: Option<Creation>,
    ) -> Result<i32, KafkaError> {
        if let Some(n) = self.cached(topic) {
            return Ok(n);
        }
        if let Some(n) = self.lookup(topic).await? {
            return Ok(n);
        }
        let Some(c) = create else {
            return Err(KafkaError::UnknownTopic {
                topic: topic.to_string(),
                hint: "create it, or set create_topics = true".into(),
            });
        };
        let new = NewTopic::new(
            topic,
            c.partitions,
            TopicReplication::Fixed(c.replication_factor),
        );
        let opts = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| self.unreachable_or(e, format!("creating topic {topic}")))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(KafkaError::Other {
                        context: format!("creating topic {t} ({} partitions)", c.partitions),
                        detail: code.to_string(),
                    })
                }
            }
        }
        // the new topic's metadata takes a moment to reach every broker
        for _ in 0..100 {
            if let Some(n) = self.lookup(topic).await? {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(KafkaError::Other {
            context: format!("creating topic {topic}"),
            detail: "created, but its metadata did not appear within 10 s".into(),
        })
    }

    fn cached(&self, topic: &str) -> Option<i32> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .copied()
    }

    /// Reads the topic's metadata: `Some(partitions)`, or `None` when it does not exist.
    async fn lookup(&self, topic: &str) -> Result<Option<i32>, KafkaError> {
        let n = metadata_partitions(self.admin.clone(), topic, &self.brokers).await?;
        if let Some(n) = n {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(topic.to_string(), n);
        }
        Ok(n)
    }

    fn unreachable_or(&self, e: rdkafka::error::KafkaError, context: String) -> KafkaError {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::BrokerTransportFailure)
            | Some(RDKafkaErrorCode::AllBrokersDown)
            | Some(RDKafkaErrorCode::OperationTimedOut) => KafkaError::Unreachable {
                brokers: self.brokers.clone(),
                detail: e.to_string(),
            },
            _ => KafkaError::Other {
                context,
                detail: e.to_string(),
            },
        }
    }
}

/// The partition count of `topic` from a metadata request (on a blocking thread).
pub(crate) async fn metadata_partitions(
    admin: Arc<AdminClient<DefaultClientContext>>,
    topic: &str,
    brokers: &str,
) -> Result<Option<i32>, KafkaError> {
    // Client::fetch_metadata blocks; metadata requests are rare (once per topic).
    let name = topic.to_string();
    let md = tokio::task::spawn_blocking(move || {
        admin.inner().fetch_metadata(Some(&name), METADATA_TIMEOUT)
    })
    .await
    .map_err(|e| KafkaError::Other {
        context: format!("reading the metadata of topic {topic}"),
        detail: e.to_string(),
    })?;
    let md = md.map_err(|e| match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::BrokerTransportFailure)
        | Some(RDKafkaErrorCode::AllBrokersDown)
        | Some(RDKafkaErrorCode::OperationTimedOut) => KafkaError::Unreachable {
            brokers: brokers.to_string(),
            detail: e.to_string(),
        },
        _ => KafkaError::Other {
            context: format!("reading the metadata of topic {topic}"),
            detail: e.to_string(),
        },
    })?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as i32)),
        None => Ok(None),
        Some(code) => match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => Ok(None),
            other => Err(KafkaError::Other {
                context: format!("reading the metadata of topic {topic}"),
                detail: other.to_string(),
            }),
        },
    }
}

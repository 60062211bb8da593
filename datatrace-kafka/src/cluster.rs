//! What a Kafka cluster holds ([`ClusterInfo`]: brokers and topics), for a server's "test
//! connection" and its list of topics to pick from.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::KafkaSourceConfig;
use crate::error::KafkaError;

/// The brokers and topics of a cluster, as its metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `host:port` of each broker.
    pub brokers: Vec<String>,
    /// Topics (Kafka's own, `__consumer_offsets` and the like, left out), by name.
    pub topics: Vec<TopicInfo>,
}

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: usize,
}

impl KafkaSourceConfig {
    /// Asks the brokers (with this source's connection and security settings) for the
    /// cluster's brokers and topics; blocks for up to `timeout`.
    pub fn cluster(&self, timeout: Duration) -> Result<ClusterInfo, KafkaError> {
        let mut client = self.client();
        // a metadata request joins no group and commits nothing
        client.set("enable.auto.commit", "false");
        let consumer: BaseConsumer = client.create().map_err(|source| KafkaError::Client {
            what: "consumer",
            source,
        })?;
        let md = consumer
            .fetch_metadata(None, timeout)
            .map_err(|e| KafkaError::Unreachable {
                brokers: self.brokers.clone(),
                detail: e.to_string(),
            })?;
        let brokers = md
            .brokers()
            .iter()
            .map(|b| format!("{}:{}", b.host(), b.port()))
            .collect();
        let mut topics: Vec<TopicInfo> = md
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__"))
            .map(|t| TopicInfo {
                name: t.name().to_string(),
                partitions: t.partitions().len(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ClusterInfo { brokers, topics })
    }
}

//! [`KafkaError`]: what goes wrong talking to Kafka, naming the broker, topic or setting.

use rdkafka::error::KafkaError as RdError;

/// Errors of the Kafka connector.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A setting is missing or wrong; the message names it.
    #[error("invalid Kafka setting: {0}")]
    Config(String),
    /// The client could not be created or refused a setting.
    #[error("Kafka client ({what}): {source}")]
    Client {
        /// Which client (`producer`, `consumer`, `admin`).
        what: &'static str,
        /// What librdkafka said.
        #[source]
        source: RdError,
    },
    /// The brokers did not answer.
    #[error("Kafka brokers {brokers} do not answer ({detail}); check `brokers` and that Kafka is running")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// What the client said.
        detail: String,
    },
    /// A topic does not exist and may not be created.
    #[error("Kafka topic {topic:?} does not exist; {hint}")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// What to do about it.
        hint: String,
    },
    /// Anything else Kafka answered, with what was being done.
    #[error("Kafka {context}: {detail}")]
    Other {
        /// What was being done.
        context: String,
        /// What Kafka said.
        detail: String,
    },
}

impl From<KafkaError> for datatrace_core::Error {
    fn from(e: KafkaError) -> Self {
        match e {
            KafkaError::Config(m) => datatrace_core::Error::Config(m),
            other => datatrace_core::Error::Source {
                unit: "kafka".into(),
                source: Box::new(other),
            },
        }
    }
}

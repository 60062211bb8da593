//! # datatrace-kafka
//!
//! DataTrace's Kafka connector: change streams on Apache Kafka in Debezium's JSON format.
//!
//! - [`KafkaSink`] writes records and table changes as Debezium change events to
//!   `{prefix}.{db}.{table}` topics, keyed and partitioned by primary key, with an idempotent
//!   producer and `acks=all`; a batch is acknowledged (and so the checkpoint behind it moves)
//!   only once Kafka's delivery reports for every message of it are in.
//! - [`KafkaSource`] reads such topics, or topics written by Debezium itself, as a member of a
//!   consumer group; the offset of a message is committed only after the pipeline's sink has
//!   acknowledged its record, so a crash or a rebalance loses nothing.
//! - [`debezium`] holds the event format, both ways.
//!
//! The client is rdkafka (librdkafka, built from its bundled sources): the maintained,
//! complete Kafka client for Rust, with the idempotent producer, transactions and the
//! consumer group protocol that this crate relies on.
#![warn(missing_docs)]

pub mod debezium;

mod cluster;
mod config;
mod error;
pub mod fence;
mod sink;
mod source;
mod topics;

pub use cluster::{ClusterInfo, TopicInfo};
pub use config::{BadMessages, KafkaSinkConfig, KafkaSourceConfig};
pub use error::KafkaError;
pub use fence::{Fence, KafkaCheckpointStore};
pub use sink::KafkaSink;
pub use source::{KafkaSource, LagHandle, PartitionLag, SourceStats};

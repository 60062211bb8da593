//! [`PartitionLag`]: how far behind one partition of a partitioned source is.

use serde::{Deserialize, Serialize};

/// The lag of one partition of a partitioned source (a Kafka topic's partition read by a
/// consumer group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset whose record is not yet written (what the group commits).
    pub committed: i64,
    /// The partition's end (high watermark) when last seen.
    pub end: i64,
    /// Messages not yet written: `end - committed`.
    pub lag: i64,
}

//! The pipeline runner: source -> bounded channel -> transforms and batching -> bounded
//! channel -> sink workers, with end-to-end acknowledged checkpoints.
//!
//! ```text
//!  part readers ──chunks──▶ dispatcher ──batches──▶ sink workers ──acks──▶ committer
//!  (Source::read,  bounded   (sequence numbers,      bounded   (retries,         (watermark,
//!   in parallel)             transforms, batching    channel    error policy,     checkpoint
//!                            by size and linger,                dead letters)     saves)
//!                            rate limit, routing)
//! ```
//!
//! Every record gets a sequence number when it enters the dispatcher. A batch remembers the
//! numbers it covers; when a worker has resolved every record of a batch (written, or rejected
//! and handled by the error policy) it acknowledges them to the committer. The committer keeps
//! the watermark below which every number is acknowledged, and a position that a source
//! declared at number `n` (via [`crate::Emitter::checkpoint`]) is committed only once the
//! watermark reaches `n`. With several workers and batches finishing out of order, the highest
//! contiguous acknowledged position wins; nothing unwritten is ever behind a checkpoint.
//!
//! Memory is bounded by the channel capacities times the batch size, whatever the size of the
//! unit: a slow sink fills the channels and the readers wait.

mod commit;
mod context;
pub(crate) use context::panic_message;
mod dispatch;
mod pipeline;
mod rate;
mod read;
mod ticker;
mod tracker;
mod write;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::retry::RetryPolicy;
pub use pipeline::Pipeline;
pub use rate::RateLimit;

/// What happens to a record that a sink or transform rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorPolicy {
    /// Stop the unit with an error naming the record (the default: nothing is lost silently).
    #[default]
    Fail,
    /// Count it, log it, and go on.
    Skip,
    /// Put it in the dead-letter queue, and go on.
    DeadLetter,
}

impl std::str::FromStr for ErrorPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(ErrorPolicy::Fail),
            "skip" => Ok(ErrorPolicy::Skip),
            "dead-letter" | "dead_letter" | "dlq" => Ok(ErrorPolicy::DeadLetter),
            other => Err(format!(
                "unknown error policy {other:?}: expected fail, skip or dead-letter"
            )),
        }
    }
}

/// The default [`PipelineConfig::max_batch_bytes`]: 4 MiB of estimated record memory
/// ([`crate::Record::footprint`]; the data itself is less), under MySQL's default
/// `max_allowed_packet` (16 MiB in MariaDB, 64 MiB in MySQL 8) and a size Elasticsearch's
/// bulk API handles well.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 << 20;

/// The default [`PipelineConfig::batch_size`]: 3,000 records. A batch is one transaction
/// on a MySQL target, and each costs the server a commit and the copy a few round trips:
/// batches of 3,000 rows loaded 1.18x faster than batches of 1,000 and cost the target 0.89x
/// the CPU (copy bench, same run); [`DEFAULT_MAX_BATCH_BYTES`] keeps wider rows to fewer.
pub const DEFAULT_BATCH_SIZE: usize = 3000;

/// Settings of one pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineConfig {
    /// Records per sink batch (and per chunk from the source), at most. Default
    /// [`DEFAULT_BATCH_SIZE`].
    pub batch_size: usize,
    /// Also close a batch (and a source's chunk) once its records' estimated memory
    /// ([`crate::Record::footprint`]: the values plus a slot per value) reaches this many
    /// bytes. Default [`DEFAULT_MAX_BATCH_BYTES`] (4 MiB): wide rows (large text, blob or JSON
    /// values) and rows of many columns make batches of fewer rows, so memory stays bounded
    /// by the channels times this size and a batch stays within the targets' packet and
    /// request limits whatever `batch_size` says. `None`: by count only.
    pub max_batch_bytes: Option<usize>,
    /// How long a partly filled batch may wait for more records before it is written.
    #[serde(with = "millis")]
    pub linger: Duration,
    /// Chunks / batches each of the two channels holds; with `batch_size` this bounds memory.
    pub channel_capacity: usize,
    /// Parts of the unit the source splits into, at most.
    pub max_parts: usize,
    /// Parts read at the same time; 0 (the default): [`auto_parallelism`] for units whose
    /// source is not ordered ([`crate::Source::ordered`]: snapshots), else 1.
    pub read_parallelism: usize,
    /// Sink workers writing at the same time; 0 (the default): [`auto_parallelism`] for
    /// units whose source is not ordered ([`crate::Source::ordered`]: snapshots) or with
    /// `partition_by_key`, else 1 (a change stream keeps its order).
    pub sink_concurrency: usize,
    /// Send all changes of one primary key to the same worker, in order (for change streams).
    pub partition_by_key: bool,
    /// Rate limits.
    pub rate_limit: RateLimit,
    /// Retries of transient sink failures.
    pub retry: RetryPolicy,
    /// What happens to rejected records.
    pub error_policy: ErrorPolicy,
    /// Least time between two checkpoint saves while running (the final save always happens).
    #[serde(with = "millis")]
    pub checkpoint_interval: Duration,
    /// Time between two progress events.
    #[serde(with = "millis")]
    pub progress_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            max_batch_bytes: Some(DEFAULT_MAX_BATCH_BYTES),
            linger: Duration::from_millis(200),
            channel_capacity: 4,
            max_parts: 64,
            read_parallelism: 0,
            sink_concurrency: 0,
            partition_by_key: false,
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            error_policy: ErrorPolicy::Fail,
            checkpoint_interval: Duration::from_millis(500),
            progress_interval: Duration::from_millis(500),
        }
    }
}

/// The parallelism of `read_parallelism = 0` and `sink_concurrency = 0` (auto): the
/// machine's cores, at least 2 (a reader or writer waiting on the network leaves its core to
/// the other) and at most 4 (more writers mostly add lock contention on the target).
pub fn auto_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
}

impl PipelineConfig {
    /// Readers of a unit whose source is `ordered` or not: `read_parallelism`, or when it is
    /// 0, [`auto_parallelism`] (1 for an ordered source: its parts are read one after another,
    /// in order).
    pub fn readers(&self, ordered: bool) -> usize {
        match self.read_parallelism {
            0 if ordered => 1,
            0 => auto_parallelism(),
            n => n,
        }
    }

    /// Writers of a unit whose source is `ordered` or not: `sink_concurrency`, or when it is
    /// 0, [`auto_parallelism`] unless the source is ordered and records are not partitioned
    /// by key (then 1).
    pub fn writers(&self, ordered: bool) -> usize {
        match self.sink_concurrency {
            0 if ordered && !self.partition_by_key => 1,
            0 => auto_parallelism(),
            n => n,
        }
    }

    /// Checks that the numbers make sense; the error names the setting.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = [
            ("batch_size", self.batch_size),
            ("channel_capacity", self.channel_capacity),
            ("max_parts", self.max_parts),
            ("max_batch_bytes", self.max_batch_bytes.unwrap_or(1)),
            ("retry.max_attempts", self.retry.max_attempts as usize),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(crate::Error::Config(format!("{name} must be at least 1")));
            }
        }
        // Tasks and channels are made from these numbers: bound them.
        let bounded = [
            ("batch_size", self.batch_size, 10_000_000),
            ("channel_capacity", self.channel_capacity, 100_000),
            ("max_parts", self.max_parts, 100_000),
            ("read_parallelism", self.read_parallelism, 1024),
            ("sink_concurrency", self.sink_concurrency, 1024),
        ];
        for (name, v, max) in bounded {
            if v > max {
                return Err(crate::Error::Config(format!(
                    "{name} must be at most {max}"
                )));
            }
        }
        for (name, v) in [
            (
                "rate_limit.records_per_sec",
                self.rate_limit.records_per_sec,
            ),
            ("rate_limit.bytes_per_sec", self.rate_limit.bytes_per_sec),
        ] {
            if v.is_some_and(|v| v.is_nan() || v <= 0.0) {
                return Err(crate::Error::Config(format!("{name} must be above 0")));
            }
        }
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every part was read and every record resolved.
    Completed,
    /// Cancelled: what was read was flushed and checkpointed; the next run resumes.
    Stopped,
    /// The unit was already done according to its checkpoint; nothing was read.
    AlreadyDone,
}

/// What a pipeline run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The unit.
    pub unit: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Whether it continued from a checkpoint.
    pub resumed: bool,
    /// Records read from the source.
    pub read: u64,
    /// Records written.
    pub written: u64,
    /// Records rejected (by the sink or a transform) and skipped or dead-lettered.
    pub rejected: u64,
    /// Of the rejected, those put in the dead-letter queue.
    pub dead_lettered: u64,
    /// Records dropped by transforms.
    pub filtered: u64,
    /// Record write attempts retried after a transient failure.
    pub retried: u64,
    /// Bytes written (estimate).
    pub bytes: u64,
    /// Wall time of the run.
    #[serde(with = "millis")]
    pub duration: Duration,
}

impl RunReport {
    /// Written records per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.written as f64 / self.duration.as_secs_f64().max(1e-9)
    }
    /// Written megabytes (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.duration.as_secs_f64().max(1e-9)
    }
}

/// Durations as whole milliseconds in configuration and reports.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

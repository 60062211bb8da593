//! Progress events: what a running unit publishes for progress bars, SSE and metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::checkpoint::UnitState;
pub use crate::lag::PartitionLag;

/// A snapshot of a unit's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitProgress {
    /// Records read from the source.
    pub read: u64,
    /// Records written by the sink.
    pub written: u64,
    /// Records rejected (skipped or dead-lettered).
    pub rejected: u64,
    /// Records dropped by a filter transform.
    pub filtered: u64,
    /// Record write attempts that were retried.
    pub retried: u64,
    /// Bytes written (estimate).
    pub bytes: u64,
    /// Written records per second since the previous event.
    pub rate: f64,
    /// How many records the source expects in all, if it knows.
    pub estimated_total: Option<u64>,
    /// Milliseconds between the source commit and the write of the newest written change
    /// (change streams only).
    pub lag_ms: Option<i64>,
    /// Milliseconds since the unit started.
    pub elapsed_ms: u64,
    /// Seconds until the source may discard data the unit still has to read, at least (a
    /// MySQL change stream: until the binlog at its position may be purged); `None` when
    /// nothing is at risk or the source cannot tell. See [`crate::Source::retention_secs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<i64>,
    /// The first record rejected in this run (skipped or dead-lettered): its key and the
    /// reason, so a run with rejects can say why without reading the dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rejection: Option<String>,
    /// How far behind each partition of a partitioned source is (a Kafka consumer's
    /// assigned partitions); empty for other sources. See [`crate::Source::partition_lag`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionLag>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ProgressKind {
    /// The unit changed state.
    State {
        /// The new state.
        state: UnitState,
        /// The error, for failed units.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// New counters.
    Progress(UnitProgress),
}

/// One event about one unit of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The job.
    pub job: Arc<str>,
    /// The unit.
    pub unit: Arc<str>,
    /// What happened.
    #[serde(flatten)]
    pub kind: ProgressKind,
}

/// The sending side of progress events. Slow receivers miss events (they are snapshots;
/// the next one carries the totals), they never slow the pipeline.
pub type ProgressSender = broadcast::Sender<ProgressEvent>;

/// A progress channel with room for `capacity` unread events per receiver.
pub fn progress_channel(capacity: usize) -> (ProgressSender, broadcast::Receiver<ProgressEvent>) {
    broadcast::channel(capacity.max(1))
}

/// Live counters of a running unit, shared by its tasks.
#[derive(Debug)]
pub(crate) struct Counters {
    pub read: AtomicU64,
    pub written: AtomicU64,
    pub rejected: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub filtered: AtomicU64,
    pub retried: AtomicU64,
    pub bytes: AtomicU64,
    pub last_ts_ms: AtomicI64,
    pub first_rejection: std::sync::OnceLock<String>,
    pub started: Instant,
}

impl Counters {
    pub fn new() -> Arc<Self> {
        Arc::new(Counters {
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_ts_ms: AtomicI64::new(i64::MIN),
            first_rejection: std::sync::OnceLock::new(),
            started: Instant::now(),
        })
    }

    pub fn snapshot(&self, estimated_total: Option<u64>, rate: f64) -> UnitProgress {
        let ts = self.last_ts_ms.load(Ordering::Relaxed);
        UnitProgress {
            read: self.read.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rate,
            estimated_total,
            // Once every record read is resolved the unit has caught up with its source: the
            // lag is zero, not the age of the last change (an idle stream is not behind).
            lag_ms: (ts != i64::MIN).then(|| {
                let read = self.read.load(Ordering::Relaxed);
                let resolved = self.written.load(Ordering::Relaxed)
                    + self.rejected.load(Ordering::Relaxed)
                    + self.filtered.load(Ordering::Relaxed);
                if resolved >= read {
                    0
                } else {
                    (now_ms() - ts).max(0)
                }
            }),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            retention_secs: None,
            first_rejection: self.first_rejection.get().cloned(),
            partitions: Vec::new(),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

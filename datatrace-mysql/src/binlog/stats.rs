//! [`StreamStats`]: the counters of a binlog stream, readable while it runs.

use std::sync::atomic::{AtomicI64, AtomicU64};

/// `StreamStats::retention_secs` when nothing is known or at risk.
pub const NOT_AT_RISK: i64 = i64::MIN;

/// Counters of a stream, readable while it runs.
#[derive(Debug)]
pub struct StreamStats {
    /// Binlog events received.
    pub events: AtomicU64,
    /// Row changes emitted.
    pub rows: AtomicU64,
    /// Transactions committed (checkpoints declared).
    pub transactions: AtomicU64,
    /// Reconnects after a lost connection.
    pub reconnects: AtomicU64,
    /// The ordinal of the last event read.
    pub last_ordinal: AtomicU64,
    /// Binlog gaps met and bridged by copying the tables again (`on_binlog_gap =
    /// "resnapshot"`).
    pub resnapshots: AtomicU64,
    /// Seconds until the binlog at the committed position may be purged, at least
    /// ([`super::retention`]); [`NOT_AT_RISK`] when not at risk or not
    /// checked yet.
    pub retention_secs: AtomicI64,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats {
            events: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_ordinal: AtomicU64::new(0),
            resnapshots: AtomicU64::new(0),
            retention_secs: AtomicI64::new(NOT_AT_RISK),
        }
    }
}

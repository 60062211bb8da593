//! [`CdcOptions`]: settings of a binlog stream, deserializable from a job file.

use datatrace_core::{Op, RetryPolicy};
use serde::{Deserialize, Serialize};

use super::gap::OnBinlogGap;
use crate::config::{TableSelector, ZeroDate};

/// Where a stream starts when it has no checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StartAt {
    /// The server's current position (`SHOW MASTER STATUS`): only changes from now on.
    #[default]
    Current,
    /// A binlog file and offset (the start of a transaction).
    Position {
        /// `binlog.000003`.
        file: String,
        /// The offset (4 for the start of the file).
        pos: u64,
    },
    /// A GTID state: MariaDB `0-1-48` (the stream starts after it) or a MySQL set
    /// `uuid:1-48` (transactions outside the set are streamed).
    Gtid(String),
}

/// Settings of a [`crate::binlog::BinlogSource`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcOptions {
    /// The replica server id this stream registers with; must differ from the server's
    /// and from every other replica's. Default 6401.
    pub server_id: u32,
    /// Tables whose changes are streamed (`db.table` patterns with `*` and `?`).
    pub tables: TableSelector,
    /// Operations streamed. Default all: `insert`, `update`, `delete`.
    pub ops: Vec<Op>,
    /// Where to start without a checkpoint. Default `current`.
    pub start: StartAt,
    /// Resume from the checkpoint's GTID state rather than its file and offset when it has
    /// one: MariaDB's `domain-server-seq` state through `@slave_connect_state`, MySQL's
    /// executed set through `COM_BINLOG_DUMP_GTID` (survives binlog purges, file renames
    /// and failover to another server of the topology). A MySQL stream has a resumable set
    /// when it started at the current position or at a GTID set with `gtid_mode=ON`; one
    /// started at a file and offset resumes by file and offset. Default false.
    pub resume_by_gtid: bool,
    /// Seconds between the server's heartbeats on an idle stream; no event for three
    /// periods means the connection is dead and the stream reconnects. Default 5.
    pub heartbeat_secs: u64,
    /// Reconnect attempts in a row before the stream fails (backoff 0.2 s doubling to 10 s).
    /// Default 30.
    pub reconnect_attempts: u32,
    /// What to do with zero dates (as the snapshot source). Default `null`.
    pub zero_date: ZeroDate,
    /// What to do when the stream's position is no longer on the server (its binlogs were
    /// purged or reset), checked at start and on every reconnect: `fail` (the default) or
    /// `resnapshot` (copy the streamed tables again and go on; see [`super::gap`]).
    pub on_binlog_gap: OnBinlogGap,
    /// Seconds between two checks of the stream's position against the server's binlog
    /// retention (0: no checks). Default 60. See [`super::retention`].
    pub retention_check_secs: u64,
    /// Below this many seconds before the stream's binlog may be purged, every check logs a
    /// warning with the time left. Default 21600 (6 hours).
    pub retention_warn_secs: u64,
    /// Key columns for every table (as the snapshot source's `key_columns`).
    pub key_columns: Vec<String>,
    /// Key columns per table (as the snapshot source's `key`), so that records of a table
    /// without a primary key carry the same key in the stream as in the snapshot.
    pub key: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for CdcOptions {
    fn default() -> Self {
        CdcOptions {
            server_id: 6401,
            tables: TableSelector::include(["*.*"]),
            ops: vec![Op::Insert, Op::Update, Op::Delete],
            start: StartAt::Current,
            resume_by_gtid: false,
            heartbeat_secs: 5,
            reconnect_attempts: 30,
            zero_date: ZeroDate::Null,
            on_binlog_gap: OnBinlogGap::Fail,
            retention_check_secs: 60,
            retention_warn_secs: 21_600,
            key_columns: Vec::new(),
            key: Default::default(),
        }
    }
}

impl CdcOptions {
    /// How a lost connection is retried: `reconnect_attempts` times in a row, 0.2 s doubling
    /// to 10 s apart (the count starts again once events come through).
    pub fn reconnect_policy(&self) -> RetryPolicy {
        RetryPolicy::new(
            self.reconnect_attempts.saturating_add(1),
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(10),
        )
    }

    /// Options streaming the tables matching `patterns`.
    pub fn tables<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        CdcOptions {
            tables: TableSelector::include(patterns),
            ..CdcOptions::default()
        }
    }

    /// Whether a table is streamed.
    pub fn matches(&self, db: &str, table: &str) -> bool {
        use crate::schema::glob;
        let m = |p: &String| match p.split_once('.') {
            Some((d, t)) => glob(d, db) && glob(t, table),
            None => glob(p, table),
        };
        self.tables.include.iter().any(m) && !self.tables.exclude.iter().any(m)
    }

    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.server_id == 0 {
            return Err("server_id must be above 0".into());
        }
        if self.tables.include.is_empty() {
            return Err("tables: name at least one pattern".into());
        }
        if self.ops.is_empty() || self.ops.contains(&Op::Read) {
            return Err("ops: list some of insert, update, delete".into());
        }
        // MySQL's heartbeat period ends at 4294967 s; the others are times.
        datatrace_core::limits::check_ranges(&[
            ("heartbeat_secs", self.heartbeat_secs, 1, 3600),
            ("retention_check_secs", self.retention_check_secs, 0, 86_400),
            (
                "retention_warn_secs",
                self.retention_warn_secs,
                0,
                365 * 86_400,
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_parsing() {
        let o = CdcOptions {
            tables: TableSelector::include(["shop.*"]).exclude("shop.tmp_*"),
            ..Default::default()
        };
        assert!(o.matches("shop", "orders"));
        assert!(!o.matches("shop", "tmp_x"));
        assert!(!o.matches("crm", "orders"));
        let o: CdcOptions = serde_json::from_str(
            r#"{"server_id": 9, "ops": ["insert"], "start": {"position": {"file": "b.000001", "pos": 4}}}"#,
        )
        .unwrap();
        assert_eq!(o.ops, vec![Op::Insert]);
        assert_eq!(
            o.start,
            StartAt::Position {
                file: "b.000001".into(),
                pos: 4
            }
        );
        assert!(serde_json::from_str::<CdcOptions>(r#"{"serverid": 9}"#).is_err());
        assert!(CdcOptions {
            ops: vec![],
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}

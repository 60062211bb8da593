//! Configuration of connections, sources and sinks. Every struct deserializes from a job
//! file (`#[serde(deny_unknown_fields)]`, so a typo is an error naming the field) and has
//! documented defaults.

use std::fmt;
use std::path::PathBuf;

use datatrace_core::RetryPolicy;
use serde::{Deserialize, Serialize};

use crate::tls::mode::SslMode;

/// How to reach a server.
///
/// The password may be in the URL (`mysql://user:pw@host:3306/db`) or, better, in
/// `password` (e.g. filled from an environment variable by the job loader); either way it
/// never appears in `Debug` output, logs or errors.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `mysql://user[:password]@host[:port][/database]`.
    pub url: String,
    /// The password, overriding one in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Connections the pool may open at most (readers + writers). Default 8.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds to wait for a connection to open. Default 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// TLS mode, as MySQL's `--ssl-mode` (also `?ssl-mode=` in the URL): `DISABLED`,
    /// `PREFERRED` (the default), `REQUIRED`, `VERIFY_CA` (the default when `ssl_ca` is set)
    /// or `VERIFY_IDENTITY`. See [`crate::tls`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<SslMode>,
    /// A PEM file of the CA certificate(s) that signed the server's certificate
    /// (`?ssl-ca=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca: Option<PathBuf>,
    /// A PEM client certificate, for users that must present one (`?ssl-cert=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_cert: Option<PathBuf>,
    /// The client certificate's unencrypted PEM private key (`?ssl-key=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_key: Option<PathBuf>,
}

fn default_max_connections() -> usize {
    8
}
fn default_connect_timeout() -> u64 {
    10
}

impl ConnectionConfig {
    /// A configuration for `url` with default settings.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectionConfig {
            url: url.into(),
            password: None,
            max_connections: default_max_connections(),
            connect_timeout_secs: default_connect_timeout(),
            ssl_mode: None,
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
        }
    }
    /// The same with a TLS mode (see [`crate::tls`]).
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = Some(mode);
        self
    }
    /// The same with a CA file for verifying the server (see [`crate::tls`]).
    pub fn ssl_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_ca = Some(path.into());
        self
    }
    /// The same with a client certificate and its key (see [`crate::tls`]).
    pub fn ssl_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.ssl_cert = Some(cert.into());
        self.ssl_key = Some(key.into());
        self
    }
    /// The same with a password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    /// The same with a pool size.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `mysql://user:secret@host/db` -> `mysql://user:***@host/db`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<invalid url>".into();
    };
    let (auth_host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth_host.rsplit_once('@') {
        Some((auth, host)) => {
            let user = auth.split_once(':').map_or(auth, |(u, _)| u);
            let masked = if auth.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host}{path}")
        }
        None => url.to_string(),
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &self.redacted_url())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .finish()
    }
}

/// Which tables a job copies: `include` patterns minus `exclude` patterns.
///
/// A pattern is `db.table`, `db.*`, or uses `*` (any run of characters) and `?` (one
/// character) in either part: `shop.order_*`. A pattern without a dot matches tables of the
/// connection's default database. A pattern without wildcards that matches nothing is an
/// error naming it (a missing table is not silently skipped).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSelector {
    /// Patterns of tables to copy.
    pub include: Vec<String>,
    /// Patterns of tables to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl TableSelector {
    /// Selects tables matching any of `patterns`.
    pub fn include<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        TableSelector {
            include: patterns.into_iter().map(Into::into).collect(),
            exclude: Vec::new(),
        }
    }
    /// Leaves out tables matching `pattern`.
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.exclude.push(pattern.into());
        self
    }
}

/// What the source does with a zero date (`0000-00-00`, `2024-00-00`, `0000-00-00 00:00:00`),
/// which no calendar type can hold.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZeroDate {
    /// Read it as NULL and log a warning naming table, column and key (the default).
    #[default]
    Null,
    /// Fail the read with an error naming table, column and key.
    Error,
    /// Keep it as its text (`Value::String("0000-00-00")`), which the MySQL sink writes back
    /// unchanged: use it for exact MySQL -> MySQL copies.
    Keep,
}

/// Settings of a snapshot read of one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SourceOptions {
    /// Target rows per chunk (part) when splitting a table for parallel reads. Default
    /// 100000. Tables with fewer rows are read as one part.
    pub chunk_rows: u64,
    /// Rows per keyset page (one streaming query each). Default 50000.
    pub page_rows: u64,
    /// Rows between two checkpoints within a page. Default 10000.
    pub checkpoint_rows: u64,
    /// Milliseconds between two checkpoints within a page, whatever the rows: on a slow
    /// target a restarted copy keeps what it wrote in the last second, not only each
    /// `checkpoint_rows`. Default 1000.
    pub checkpoint_interval_ms: u64,
    /// Retries of a lost connection (a killed session, a restarted server, a dropped link)
    /// while planning and reading; the read resumes after the last row read. `max_attempts`
    /// counts failures in a row without a row read in between, so progress makes the budget
    /// whole again. Default 30 attempts, backoff 200 ms doubling to 10 s (with jitter):
    /// about four minutes without any progress.
    pub reconnect: RetryPolicy,
    /// Read every chunk in one point in time and record its binlog position. Default false.
    pub consistent_snapshot: bool,
    /// Connections held for a consistent snapshot (chunks read in parallel at most).
    /// Default 4.
    pub snapshot_connections: usize,
    /// What to do with zero dates. Default `null`.
    pub zero_date: ZeroDate,
    /// An SQL condition added to every read (`WHERE (<filter>)`), trusted configuration:
    /// it is pasted into the query as written.
    pub filter: Option<String>,
    /// Columns to use as the key for chunking, resume, upserts and deletes when the table has
    /// no primary key (they must be unique and not null). Empty: the primary key, else the
    /// first unique key of NOT NULL columns.
    pub key_columns: Vec<String>,
    /// The columns that identify a row, per table: `{"shop.events" = ["device", "at"]}`
    /// (patterns `db.table` or `table`, with `*` and `?`; the first match wins, before
    /// `key_columns`). For tables without a primary key that go to a target needing one (an
    /// Elasticsearch document id, upserts and deletes by key); the columns must be NOT NULL
    /// and unique together.
    pub key: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            chunk_rows: 100_000,
            page_rows: 50_000,
            checkpoint_rows: 10_000,
            checkpoint_interval_ms: 1000,
            reconnect: default_reconnect(),
            consistent_snapshot: false,
            snapshot_connections: 4,
            zero_date: ZeroDate::Null,
            filter: None,
            key_columns: Vec::new(),
            key: Default::default(),
        }
    }
}

/// The default [`SourceOptions::reconnect`]: 30 attempts, 200 ms doubling to 10 s.
pub fn default_reconnect() -> RetryPolicy {
    RetryPolicy::new(
        30,
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(10),
    )
}

/// How the sink writes rows (deletes are always deletes by primary key).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// `INSERT`: a duplicate key is a rejected row.
    Insert,
    /// `INSERT ... ON DUPLICATE KEY UPDATE` (the default; idempotent).
    #[default]
    Upsert,
    /// `REPLACE` (delete + insert; fires delete triggers and cascades).
    Replace,
    /// `INSERT IGNORE`: keeps the existing row; note that MySQL also turns data errors into
    /// warnings in this mode.
    InsertIgnore,
}

/// Settings of the MySQL sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SinkOptions {
    /// How rows are written. Default `upsert`.
    pub mode: WriteMode,
    /// The target database; default: the database of a routed target (`db.table`), else the
    /// connection URL's database.
    pub database: Option<String>,
    /// A fixed target table for every record; default: the routed target
    /// (`Record::target_name`), which is the source table's name unless a transform routes.
    pub table: Option<String>,
    /// Create the target table when missing (`CREATE TABLE IF NOT EXISTS`) from the source
    /// schema. Default false.
    pub create_table: bool,
    /// Empty the target before a full copy (never when resuming). Default false.
    pub truncate: bool,
    /// Statements run before the first write of each unit (trusted configuration).
    pub pre_sql: Vec<String>,
    /// Statements run after the last write of each unit (trusted configuration).
    pub post_sql: Vec<String>,
    /// Upper bound of one statement in bytes; the effective bound is also below the
    /// server's `max_allowed_packet`. Default 4 MiB.
    pub max_statement_bytes: usize,
    /// Write snapshot batches with `LOAD DATA LOCAL INFILE` streamed from memory where the
    /// server allows local files (`local_infile = ON`), with the same semantics and exactness
    /// as the `INSERT` path (see the crate README). Default true; `false` always writes
    /// multi-row `INSERT`s.
    pub load_data: bool,
    /// Tables this sink creates for a full copy (`create_table`, first run) get their primary
    /// key only; their unique keys are added after the unit's last write, in one
    /// `ALTER TABLE` (as myloader does), which costs the server less than maintaining them
    /// row by row and lets the bulk path use `REPLACE`. The table's comment says so while
    /// the keys are missing; the `ALTER` clears it, so a crash at any point still ends, when
    /// the unit runs again, with every key exactly once. Rows that break a unique key then
    /// fail the unit at its end (naming the key) instead of being rejected one by one during
    /// the copy. Default true; `false` creates the keys with the table.
    pub defer_indexes: bool,
    /// Snapshot batches into a fresh table (created or emptied by this run, or empty when
    /// the unit started), while it has no secondary unique key and no foreign key, run with
    /// `unique_checks = 0` and `foreign_key_checks = 0` in their session: then the settings
    /// skip no check (there is nothing for them to skip) and let MariaDB load the empty
    /// table in its bulk insert mode (table-level lock and undo log for the first
    /// transaction). Elsewhere (an existing table that keeps its rows, a unique or foreign
    /// key that must be checked) they stay on. The session gets its settings back after
    /// each batch. Default false: in that mode the first transaction into the empty table
    /// locks the whole table, and the other writers' loads into it then meet deadlocks
    /// (retried, but work thrown away); with one writer, or for a measured gain, turn it on.
    /// (Measured on MariaDB 10.11 with two writers: no gain beyond the noise, see the
    /// README's performance section.)
    pub bulk_session: bool,
    /// Snapshot batches run with `sql_log_bin = 0`: the target server does not write the
    /// copied rows to its binlog, which saves it work, but its replicas and binlog readers
    /// never see them. Needs the `SUPER` or `BINLOG ADMIN` privilege. Only when asked:
    /// default false.
    pub skip_binlog: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            mode: WriteMode::Upsert,
            database: None,
            table: None,
            create_table: false,
            truncate: false,
            pre_sql: Vec::new(),
            post_sql: Vec::new(),
            max_statement_bytes: 4 << 20,
            load_data: true,
            defer_indexes: true,
            bulk_session: false,
            skip_binlog: false,
        }
    }
}

/// The largest `max_connections` of a pool (MySQL's own upper bound of its
/// `max_connections`).
pub const MAX_CONNECTIONS: u64 = 100_000;

impl ConnectionConfig {
    /// Checks the numbers; the error names the setting and its range.
    pub fn validate(&self) -> crate::error::Result<()> {
        datatrace_core::limits::check_ranges(&[
            (
                "max_connections",
                self.max_connections as u64,
                1,
                MAX_CONNECTIONS,
            ),
            ("connect_timeout_secs", self.connect_timeout_secs, 0, 3600),
        ])
        .map_err(crate::MySqlError::Config)
    }
}

impl SourceOptions {
    /// Checks the numbers; the error names the setting and its range. Rows per page are
    /// rows one query streams, rows per chunk only split a table (any size reads in pages).
    pub fn validate(&self) -> crate::error::Result<()> {
        use datatrace_core::limits::{check_ranges, DAY_MS};
        check_ranges(&[
            ("chunk_rows", self.chunk_rows, 1, 1_000_000_000_000),
            ("page_rows", self.page_rows, 1, 10_000_000),
            ("checkpoint_rows", self.checkpoint_rows, 1, 1_000_000_000),
            (
                "checkpoint_interval_ms",
                self.checkpoint_interval_ms,
                1,
                DAY_MS,
            ),
            (
                "reconnect.max_attempts",
                self.reconnect.max_attempts as u64,
                1,
                u32::MAX as u64,
            ),
            (
                "snapshot_connections",
                self.snapshot_connections as u64,
                1,
                1000,
            ),
        ])
        .map_err(crate::MySqlError::Config)
    }
}

impl SinkOptions {
    /// Checks the numbers; the error names the setting and its range (1 GiB is the
    /// server's largest `max_allowed_packet`).
    pub fn validate(&self) -> crate::error::Result<()> {
        datatrace_core::limits::check_range(
            "max_statement_bytes",
            self.max_statement_bytes as u64,
            1,
            1 << 30,
        )
        .map_err(crate::MySqlError::Config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_in_debug() {
        let c = ConnectionConfig::new("mysql://u:hunter2@h:3306/db").password("s3cret");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("s3cret"), "{d}");
        assert!(d.contains("mysql://u:***@h:3306/db"), "{d}");
        assert_eq!(redact_url("mysql://root@h/x"), "mysql://root@h/x");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<SourceOptions>(r#"{"chunk_row": 5}"#).unwrap_err();
        assert!(e.to_string().contains("chunk_row"), "{e}");
        let o: SinkOptions = serde_json::from_str(r#"{"mode": "insert-ignore"}"#).unwrap();
        assert_eq!(o.mode, WriteMode::InsertIgnore);
        let o: SourceOptions = serde_json::from_str(r#"{"zero_date": "keep"}"#).unwrap();
        assert_eq!(o.zero_date, ZeroDate::Keep);
    }

    #[test]
    fn numbers_have_upper_bounds() {
        ConnectionConfig::new("mysql://h/db").validate().unwrap();
        SourceOptions::default().validate().unwrap();
        SinkOptions::default().validate().unwrap();
        let e = ConnectionConfig::new("mysql://h/db")
            .max_connections(usize::MAX)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_connections") && e.contains("1 to 100000"),
            "{e}"
        );
        for (key, wrong) in [
            ("page_rows", u64::MAX),
            ("chunk_rows", u64::MAX),
            ("checkpoint_rows", 0),
            ("checkpoint_interval_ms", u64::MAX),
            ("snapshot_connections", 1_000_000),
        ] {
            let o: SourceOptions =
                serde_json::from_value(serde_json::json!({ key: wrong })).unwrap();
            let e = o.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("{key} = {wrong} is out of range")),
                "{e}"
            );
        }
        let o = SinkOptions {
            max_statement_bytes: usize::MAX,
            ..Default::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_statement_bytes"));
    }
}

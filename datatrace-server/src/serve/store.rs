//! The metadata store's rows: data sources, tasks, their units' runtime state and
//! checkpoints, and logs. The store itself is [`super::sql_store::SqlStore`] (asynchronous,
//! SQLite by default or MySQL with `--metadata-url`), its schema one definition in
//! [`super::schema`], applied as ordered migrations recorded in `schema_version`.

use serde::Serialize;

pub use super::unit_status::UnitStatus;

/// A metadata store error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("metadata store: {context}: {message}")]
pub struct StoreError {
    /// What was being done.
    pub context: String,
    /// The database's message.
    pub message: String,
    /// Whether a unique constraint refused the change (a name already taken).
    pub conflict: bool,
}

/// Results of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// A data source row (secrets still encrypted).
#[derive(Debug, Clone)]
pub struct DataSourceRow {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// `mysql` or `elasticsearch`.
    pub kind: String,
    /// The URL (no password in it).
    pub url: String,
    /// Elasticsearch user name.
    pub username: Option<String>,
    /// Further connection keys, as a JSON object.
    pub options: serde_json::Value,
    /// The encrypted password.
    pub password_enc: Option<String>,
    /// The encrypted API key.
    pub api_key_enc: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A task row.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// The configuration as given (JSON).
    pub config: serde_json::Value,
    /// idle, queued, running, stopping, stopped, done, failed.
    pub status: String,
    /// The error that stopped it.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Last start.
    pub started_at: Option<String>,
    /// Last end.
    pub finished_at: Option<String>,
}

/// A unit's runtime state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitRow {
    /// The unit (table or index).
    pub unit: String,
    /// Where it is written.
    pub target: Option<String>,
    /// pending, running, done, failed or stopped.
    pub state: UnitStatus,
    /// Records read in the current run.
    pub read: u64,
    /// Records written (over all runs).
    pub written: u64,
    /// Records rejected in the current run.
    pub rejected: u64,
    /// Records the source expects.
    pub estimated_total: Option<u64>,
    /// The error that stopped it.
    pub error: Option<String>,
    /// When the unit last started.
    pub started_at: Option<String>,
    /// Last change.
    pub updated_at: String,
}

/// One log line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogRow {
    /// Increasing id (page with `before`).
    pub id: i64,
    /// The task, for task lines.
    pub task_id: Option<i64>,
    /// `system`, `error` or `progress`.
    pub category: String,
    /// `info`, `warn`, `error`.
    pub level: String,
    /// The unit, for unit lines.
    pub unit: Option<String>,
    /// The text (secrets removed).
    pub message: String,
    /// When (RFC 3339).
    pub ts: String,
}

/// Which log lines to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// One category (`None`: all).
    pub category: Option<String>,
    /// Only ids below this (the next page of older lines).
    pub before: Option<i64>,
    /// Only ids above this (lines since), oldest first.
    pub after: Option<i64>,
    /// Only lines whose message contains this text (case-insensitive for ASCII).
    pub search: Option<String>,
    /// At most this many.
    pub limit: u32,
}

impl LogFilter {
    /// `search` as a SQL `LIKE` pattern (`%`, `_` and `!` escaped with `!`, the escape
    /// character of the query: a backslash is not portable between SQLite and MySQL).
    pub fn like(&self) -> Option<String> {
        self.search.as_ref().filter(|s| !s.is_empty()).map(|s| {
            let mut p = String::from("%");
            for c in s.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '!') {
                    p.push('!');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
    }
}

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    datatrace_core::Timestamp::now().to_string()
}

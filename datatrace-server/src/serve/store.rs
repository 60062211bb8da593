//! The metadata store: data sources, tasks, their units' runtime state and checkpoints, and
//! logs, behind [`MetadataStore`], with two backends: SQLite in the data directory
//! ([`super::sqlite::SqliteStore`], the default) and MySQL ([`super::mysql_store::MySqlStore`],
//! `--metadata-url`). Both apply ordered migrations at start, recorded in `schema_version`.

use std::sync::Arc;

use serde::Serialize;

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

/// The store the server uses.
pub type Store = Arc<dyn MetadataStore>;

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
    /// pending, running, done, failed.
    pub state: String,
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

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    datatrace_core::Timestamp::now().to_string()
}

/// What the server keeps: data sources, tasks, units (state, counters, checkpoints), logs.
/// Calls are short and synchronous (a local file, or a round trip to a MySQL server).
pub trait MetadataStore: Send + Sync {
    /// The schema version after migrations.
    fn schema_version(&self) -> StoreResult<i64>;
    /// A `meta` value.
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets a `meta` value.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Every data source, by id.
    fn datasources(&self) -> StoreResult<Vec<DataSourceRow>>;
    /// One data source.
    fn datasource(&self, id: i64) -> StoreResult<Option<DataSourceRow>>;
    /// Inserts (`id` 0) or updates a data source; returns its id.
    fn save_datasource(&self, d: &DataSourceRow) -> StoreResult<i64>;
    /// Deletes a data source; whether it existed.
    fn delete_datasource(&self, id: i64) -> StoreResult<bool>;
    /// Every task, by id.
    fn tasks(&self) -> StoreResult<Vec<TaskRow>>;
    /// One task.
    fn task(&self, id: i64) -> StoreResult<Option<TaskRow>>;
    /// Inserts (`id` 0) or updates a task's name and configuration; returns its id.
    fn save_task(&self, id: i64, name: &str, config: &serde_json::Value) -> StoreResult<i64>;
    /// Sets a task's status (and error); `started`/`finished` stamp the times.
    fn set_task_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        started: bool,
        finished: bool,
    ) -> StoreResult<()>;
    /// Deletes a task with its units and logs; whether it existed.
    fn delete_task(&self, id: i64) -> StoreResult<bool>;
    /// The units of a task, in the order they were planned.
    fn units(&self, task: i64) -> StoreResult<Vec<UnitRow>>;
    /// Records the planned units of a task (unit, target, estimated rows), keeping the state
    /// of units already known and forgetting units no longer planned.
    fn plan_units(&self, task: i64, units: &[(String, String, Option<u64>)]) -> StoreResult<()>;
    /// Updates a unit's state and counters (`starting` stamps its start).
    fn update_unit(&self, task: i64, u: &UnitRow, starting: bool) -> StoreResult<()>;
    /// A unit's checkpoint (JSON).
    fn checkpoint(&self, task: i64, unit: &str) -> StoreResult<Option<String>>;
    /// Every checkpoint of a task: (unit, JSON).
    fn checkpoints(&self, task: i64) -> StoreResult<Vec<(String, String)>>;
    /// Saves (JSON, state, written, error) or with `None` clears a unit's checkpoint; the
    /// unit's row is created when missing.
    fn save_checkpoint(
        &self,
        task: i64,
        unit: &str,
        checkpoint: Option<(&str, &str, u64, Option<&str>)>,
    ) -> StoreResult<()>;
    /// Appends a log line; returns it.
    fn add_log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) -> StoreResult<LogRow>;
    /// Log lines, newest first: of a task (or the server's, `None`), of a category (`None`:
    /// all), with ids below `before`, at most `limit`.
    fn logs(
        &self,
        task: Option<i64>,
        category: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LogRow>>;

    /// Names of the tasks that use a data source.
    fn tasks_using(&self, datasource: i64) -> StoreResult<Vec<String>> {
        Ok(self
            .tasks()?
            .into_iter()
            .filter(|t| {
                ["source", "target"].iter().any(|k| {
                    t.config
                        .get(k)
                        .and_then(|s| s.get("datasource"))
                        .and_then(|v| v.as_i64())
                        == Some(datasource)
                })
            })
            .map(|t| t.name)
            .collect())
    }
}

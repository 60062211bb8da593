//! The task manager: starts tasks (plan -> core job with the metadata store's checkpoints),
//! stops them, feeds their progress to the live state, the database and SSE (coalesced, in
//! [`watch`]), bounds the units running across all tasks, and stops and resumes them with
//! the server ([`restart`]).

mod lifecycle;
mod restart;
mod runs;
mod watch;

pub use restart::CRASHES_BEFORE_HOLD;
pub use runs::{DriftHook, Origin, Trigger};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datatrace_core::CancellationToken;
use tokio::sync::Semaphore;

use super::checkpoints::job_name;
use super::crypto::MasterKey;
use super::http::ApiError;
use super::live::{Hub, Msg};
use super::sql_store::Store;
use super::taskspec;
use crate::job_file::JobFile;

/// How often coalesced progress goes out (per task).
/// The status of a task the server stopped on its way out; it resumes at the next start.
pub const INTERRUPTED: &str = "interrupted";

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How a start treats earlier progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// Forget checkpoints; copy every unit afresh.
    Fresh,
    /// Continue from the checkpoints (done units are skipped).
    Resume,
    /// Like resume, for a task with failed units.
    Retry,
}

/// Starts, stops and watches tasks.
pub struct Manager {
    store: Store,
    key: MasterKey,
    data_dir: PathBuf,
    units: Arc<Semaphore>,
    max_units: usize,
    running: Mutex<HashMap<i64, CancellationToken>>,
    /// Runs that left `running` and are still recording their status and last log line: a
    /// stopping server waits for them too (see `shutdown`).
    ending: std::sync::atomic::AtomicUsize,
    /// Tasks whose stop was asked for (they end `stopped`, not `interrupted`).
    stop_requested: Mutex<HashSet<i64>>,
    /// Tasks being compared with their source (verify, a scheduled check).
    checking: Mutex<HashSet<i64>>,
    hubs: Mutex<HashMap<i64, Arc<Hub>>>,
    secrets: Mutex<Vec<String>>,
    closing: CancellationToken,
    /// Told about every finished check (see [`DriftHook`]).
    drift_hook: Mutex<Option<DriftHook>>,
}

impl Manager {
    /// A manager allowing `max_units` units at a time across tasks.
    pub fn new(store: Store, key: MasterKey, data_dir: PathBuf, max_units: usize) -> Arc<Self> {
        let max_units = max_units.max(1);
        Arc::new(Manager {
            store,
            key,
            data_dir,
            units: Arc::new(Semaphore::new(max_units)),
            max_units,
            running: Mutex::new(HashMap::new()),
            ending: std::sync::atomic::AtomicUsize::new(0),
            stop_requested: Mutex::new(HashSet::new()),
            checking: Mutex::new(HashSet::new()),
            hubs: Mutex::new(HashMap::new()),
            secrets: Mutex::new(Vec::new()),
            closing: CancellationToken::new(),
            drift_hook: Mutex::new(None),
        })
    }

    /// The metadata store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks a task configuration (`id` 0 for a new task) and builds its job file.
    pub async fn build(
        &self,
        id: i64,
        config: &serde_json::Value,
    ) -> Result<(taskspec::TaskInput, JobFile), ApiError> {
        taskspec::build(id, config, &self.store, &self.key, &self.data_dir).await
    }

    /// Whether a task is running (or queued, or stopping).
    pub fn is_running(&self, id: i64) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
    }

    /// Marks a task as being checked (verify); `Err` when it runs or is already checked.
    /// The mark goes when the returned guard drops.
    pub fn begin_check(self: &Arc<Self>, id: i64) -> Result<CheckGuard, ApiError> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains_key(&id) {
            return Err(ApiError::conflict(
                "the task is running; verify it when it has stopped or finished",
            ));
        }
        let mut checking = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        if !checking.insert(id) {
            return Err(ApiError::conflict("the task is already being verified"));
        }
        Ok(CheckGuard {
            manager: self.clone(),
            id,
        })
    }

    /// Whether a task is being checked.
    pub fn is_checking(&self, id: i64) -> bool {
        self.checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Names of the running tasks that use data source `id`.
    pub async fn running_users_of(&self, datasource: i64) -> Result<Vec<String>, ApiError> {
        let tasks = self.store.tasks().await?;
        Ok(tasks
            .into_iter()
            .filter(|t| self.is_running(t.id) || self.is_checking(t.id))
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

    /// The live state of a task (created from the store on first use).
    pub async fn hub(&self, id: i64) -> Result<Arc<Hub>, ApiError> {
        if let Some(h) = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(h.clone());
        }
        let task = self
            .store
            .task(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
        let units = self.store.units(id).await?;
        let hub = Hub::new(task.status, task.error, units);
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(hubs.entry(id).or_insert(hub).clone())
    }

    /// Every known hub (for metrics).
    pub fn hubs(&self) -> Vec<(i64, Arc<Hub>)> {
        let hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = hubs.iter().map(|(k, v)| (*k, v.clone())).collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// Forgets a deleted task's live state.
    pub fn forget(&self, id: i64) {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Decrypts every data source's and alert channel's secrets into memory so that [`Manager::scrub`] can
    /// remove them from any text.
    pub async fn remember_secrets(&self) -> Result<(), ApiError> {
        let mut found = Vec::new();
        for d in self.store.datasources().await? {
            for enc in [&d.password_enc, &d.api_key_enc].into_iter().flatten() {
                if let Ok(s) = self.key.decrypt(enc) {
                    if !s.is_empty() {
                        found.push(s);
                    }
                }
            }
        }
        // Alert channels' URLs (they hold tokens) and signing secrets.
        for c in self.store.alert_channels().await? {
            for enc in std::iter::once(&c.url_enc).chain(c.secret_enc.as_ref()) {
                if let Ok(s) = self.key.decrypt(enc) {
                    if !s.is_empty() {
                        found.push(s);
                    }
                }
            }
        }
        *self.secrets.lock().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }

    /// `text` without any data source's secret (see [`crate::secrets::scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        crate::secrets::scrub(&secrets, text)
    }

    /// Writes a log line (secrets removed) to the store, to SSE and to stderr.
    pub async fn log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) {
        let message = &self.scrub(message);
        match self
            .store
            .add_log(task, category, level, unit, message)
            .await
        {
            Ok(row) => {
                let who = task.map_or("server".to_owned(), job_name);
                let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
                eprintln!("{} {level} [{who}{unit}] {message}", row.ts);
                if let Some(t) = task {
                    if let Ok(h) = self.hub(t).await {
                        h.send(Msg::Log(Box::new(row)));
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }

    async fn set_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        started: bool,
        finished: bool,
    ) {
        if let Err(e) = self
            .store
            .set_task_status(id, status, error, started, finished)
            .await
        {
            eprintln!("error: {e}");
        }
        if let Ok(h) = self.hub(id).await {
            let overall = h.with(|l| {
                l.status = status.to_owned();
                l.error = error.map(str::to_owned);
                l.overall()
            });
            h.send(Msg::Status {
                status: status.to_owned(),
                error: error.map(str::to_owned),
                overall,
            });
        }
    }

    /// Cancelled when the server shuts down (event streams end).
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }
}

/// A task marked as being checked; dropping it ends the mark.
pub struct CheckGuard {
    manager: Arc<Manager>,
    id: i64,
}

impl Drop for CheckGuard {
    fn drop(&mut self) {
        self.manager
            .checking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::crypto::MasterKey;
    use crate::serve::sql_store::SqlStore;

    #[tokio::test]
    async fn a_task_being_verified_does_not_start() {
        let dir = std::env::temp_dir().join(format!("dt-mgr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store: Store = Arc::new(SqlStore::open_sqlite(&dir).await.unwrap());
        let key = MasterKey::from_bytes(&[1; 32], "test");
        let m = Manager::new(store.clone(), key, dir.clone(), 2);
        let config = serde_json::json!({"name": "t", "source": {"type": "generator", "rows": 10},
                                        "target": {"type": "discard"}});
        let id = store.save_task(0, "t", &config).await.unwrap();
        let guard = m.begin_check(id).unwrap();
        let e = m.start(id, StartKind::Fresh).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT, "{}", e.message);
        assert!(e.message.contains("being verified"), "{}", e.message);
        assert!(m.begin_check(id).is_err(), "one check at a time");
        drop(guard);
        m.start(id, StartKind::Fresh).await.unwrap();
        assert!(
            m.begin_check(id).is_err() || !m.is_running(id),
            "no check while it runs"
        );
        m.shutdown(Duration::from_secs(10)).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The task manager: starts tasks (plan -> core job with the metadata store's checkpoints),
//! stops them, feeds their progress to the live state, the database and SSE (coalesced), and
//! bounds the units running across all tasks.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datatrace_core::{
    progress_channel, CancellationToken, CheckpointStore, FileCheckpointStore, ProgressEvent,
    ProgressKind, UnitState,
};
use tokio::sync::{broadcast, Semaphore};

use super::checkpoints::{job_name, DbCheckpointStore, MirroredCheckpointStore};
use super::crypto::MasterKey;
use super::http::ApiError;
use super::live::{Hub, Msg, UnitLive};
use super::store::Store;
use super::taskspec;
use crate::job_file::{JobFile, SourceSpec};
use crate::plan::plan;

/// How often coalesced progress goes out (per task).
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
    hubs: Mutex<HashMap<i64, Arc<Hub>>>,
    secrets: Mutex<Vec<String>>,
    closing: CancellationToken,
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
            hubs: Mutex::new(HashMap::new()),
            secrets: Mutex::new(Vec::new()),
            closing: CancellationToken::new(),
        })
    }

    /// The metadata store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks a task configuration (`id` 0 for a new task) and builds its job file.
    pub fn build(
        &self,
        id: i64,
        config: &serde_json::Value,
    ) -> Result<(taskspec::TaskInput, JobFile), ApiError> {
        taskspec::build(id, config, &self.store, &self.key, &self.data_dir)
    }

    /// Whether a task is running (or queued, or stopping).
    pub fn is_running(&self, id: i64) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
    }

    /// The live state of a task (created from the store on first use).
    pub fn hub(&self, id: i64) -> Result<Arc<Hub>, ApiError> {
        if let Some(h) = self.hubs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(h.clone());
        }
        let task = self
            .store
            .task(id)?
            .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
        let units = self.store.units(id)?;
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

    /// Decrypts every data source's secrets into memory so that [`Manager::scrub`] can
    /// remove them from any text.
    pub fn remember_secrets(&self) -> Result<(), ApiError> {
        let mut found = Vec::new();
        for d in self.store.datasources()? {
            for enc in [&d.password_enc, &d.api_key_enc].into_iter().flatten() {
                if let Ok(s) = self.key.decrypt(enc) {
                    if !s.is_empty() {
                        found.push(s);
                    }
                }
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        *self.secrets.lock().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }

    /// `text` with every known secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// Writes a log line (secrets removed) to the store, to SSE and to stderr.
    pub fn log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) {
        let message = &self.scrub(message);
        match self.store.add_log(task, category, level, unit, message) {
            Ok(row) => {
                let who = task.map_or("server".to_owned(), job_name);
                let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
                eprintln!("{} {level} [{who}{unit}] {message}", row.ts);
                if let Some(t) = task {
                    if let Ok(h) = self.hub(t) {
                        h.send(Msg::Log(row));
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }

    fn set_status(
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
        {
            eprintln!("error: {e}");
        }
        if let Ok(h) = self.hub(id) {
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

    /// Plans and starts a task; planning errors (unreachable server, missing table) are
    /// returned, the run goes on in the background.
    pub async fn start(self: &Arc<Self>, id: i64, kind: StartKind) -> Result<(), ApiError> {
        let task = self
            .store
            .task(id)?
            .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
        let cancel = CancellationToken::new();
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if running.contains_key(&id) {
                return Err(ApiError::conflict(format!(
                    "task {:?} is already running",
                    task.name
                )));
            }
            running.insert(id, cancel.clone());
        }
        match self.prepare(id, &task.config, kind).await {
            Ok((job, planned)) => {
                self.set_status(id, "queued", None, true, false);
                let me = self.clone();
                tokio::spawn(async move { me.run(id, job, planned, cancel).await });
                Ok(())
            }
            Err(e) => {
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(e)
            }
        }
    }

    async fn prepare(
        &self,
        id: i64,
        config: &serde_json::Value,
        kind: StartKind,
    ) -> Result<(JobFile, crate::plan::Plan), ApiError> {
        let (_, job) = self.build(id, config)?;
        let planned = plan(&job).await.map_err(|e| ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: job.scrub(&e.message),
            field: (!e.key.is_empty()).then(|| e.key.clone()),
        })?;
        let units: Vec<(String, String, Option<u64>)> = planned
            .units
            .iter()
            .map(|u| (u.name.clone(), u.target.clone(), u.estimated_rows))
            .collect();
        let store = self.checkpoint_store(&job);
        let name = job_name(id);
        if kind == StartKind::Retry {
            let failed = self.store.units(id)?.iter().any(|u| u.state == "failed");
            if !failed {
                return Err(ApiError::conflict("the task has no failed units to retry"));
            }
        }
        self.store.plan_units(id, &units)?;
        if kind == StartKind::Fresh {
            for (u, _, _) in &units {
                store
                    .clear(&name, u)
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
        }
        let rows = self.store.units(id)?;
        let hub = self.hub(id)?;
        hub.with(|l| {
            l.units = rows
                .into_iter()
                .map(|r| (r.unit.clone(), UnitLive::from_row(r)))
                .collect();
        });
        Ok((job, planned))
    }

    /// The checkpoint store of a task's job: the metadata store, mirrored into the job's
    /// checkpoint files for change streams (their handoff reads those).
    fn checkpoint_store(&self, job: &JobFile) -> Arc<dyn CheckpointStore> {
        let db = DbCheckpointStore::new(self.store.clone());
        let streams = matches!(&job.source, SourceSpec::MySql(m) if m.mode.streams());
        if streams {
            Arc::new(MirroredCheckpointStore::new(
                db,
                FileCheckpointStore::new(&job.checkpoint_dir),
            ))
        } else {
            Arc::new(db)
        }
    }

    async fn run(
        self: Arc<Self>,
        id: i64,
        job: JobFile,
        planned: crate::plan::Plan,
        cancel: CancellationToken,
    ) {
        // A change stream holds its slot for as long as it runs (and waits for the
        // snapshots first): it gets one of its own, beside the snapshots' slots.
        let streams = matches!(&job.source, SourceSpec::MySql(m) if m.mode.streams());
        let extra = usize::from(streams);
        let slots = planned.concurrency.min(self.max_units).max(1);
        let want = (slots + extra) as u32;
        let permits = tokio::select! {
            p = self.units.clone().acquire_many_owned(slots as u32) => p.ok(),
            _ = cancel.cancelled() => None,
        };
        let Some(_permits) = permits else {
            self.set_status(id, "stopped", None, false, true);
            self.log(
                Some(id),
                "system",
                "info",
                None,
                "stopped before it started",
            );
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return;
        };
        self.set_status(id, "running", None, false, false);
        self.log(
            Some(id),
            "system",
            "info",
            None,
            &format!(
                "started: {} -> {}, {} unit(s), {} at a time",
                job.source.describe(),
                job.target.describe(),
                planned.units.len(),
                want
            ),
        );
        let (tx, rx) = progress_channel(4096);
        let watcher = tokio::spawn(self.clone().watch(id, job.clone(), rx));
        let result = planned
            .into_job()
            .concurrency(want as usize)
            .checkpoints(self.checkpoint_store(&job))
            .progress(tx)
            .cancel_token(cancel.clone())
            .run()
            .await;
        let _ = watcher.await;
        let (status, error) = match result {
            Err(e) => ("failed", Some(job.scrub(&e.to_string()))),
            Ok(r) if r.has_failures() => {
                let n = r
                    .units
                    .iter()
                    .filter(|u| u.state == UnitState::Failed)
                    .count();
                ("failed", Some(format!("{n} unit(s) failed")))
            }
            Ok(r) if r.is_complete() => ("done", None),
            Ok(_) if cancel.is_cancelled() => ("stopped", None),
            Ok(_) => ("failed", Some("some units did not finish".to_owned())),
        };
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.set_status(id, status, error.as_deref(), false, true);
        let level = if status == "failed" { "error" } else { "info" };
        let category = if status == "failed" {
            "error"
        } else {
            "system"
        };
        let text = match &error {
            Some(e) => format!("{status}: {e}"),
            None => status.to_owned(),
        };
        self.log(Some(id), category, level, None, &text);
    }

    /// Feeds progress events to the live state, the store and SSE.
    async fn watch(
        self: Arc<Self>,
        id: i64,
        job: JobFile,
        mut rx: broadcast::Receiver<ProgressEvent>,
    ) {
        let Ok(hub) = self.hub(id) else { return };
        let mut dirty: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => self.event(id, &job, &hub, ev, &mut dirty),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.flush(id, &hub, &mut dirty),
            }
        }
        self.flush(id, &hub, &mut dirty);
    }

    fn event(
        &self,
        id: i64,
        job: &JobFile,
        hub: &Hub,
        ev: ProgressEvent,
        dirty: &mut HashSet<String>,
    ) {
        let unit = ev.unit.to_string();
        match ev.kind {
            ProgressKind::Progress(p) => {
                hub.with(|l| {
                    if let Some(u) = l.units.get_mut(&unit) {
                        u.row.read = p.read;
                        u.row.written = p.written;
                        u.row.rejected = p.rejected;
                        if p.estimated_total.is_some() {
                            u.row.estimated_total = p.estimated_total;
                        }
                        u.rate = p.rate;
                        u.lag_ms = p.lag_ms;
                        u.update_percent();
                    }
                });
                dirty.insert(unit);
            }
            ProgressKind::State { state, error } => {
                let error = error.map(|e| job.scrub(&e));
                let snapshot = hub.with(|l| {
                    let u = l.units.get_mut(&unit)?;
                    u.row.state = state.to_string();
                    u.row.error = error.clone();
                    if state != UnitState::Running {
                        u.rate = 0.0;
                    }
                    u.update_percent();
                    Some((u.clone(), l.overall()))
                });
                dirty.remove(&unit);
                if let Some((u, overall)) = snapshot {
                    if let Err(e) = self
                        .store
                        .update_unit(id, &u.row, state == UnitState::Running)
                    {
                        eprintln!("error: {e}");
                    }
                    hub.send(Msg::Unit {
                        unit: u.clone(),
                        overall,
                    });
                    match (&state, &error) {
                        (UnitState::Failed, Some(e)) => self.log(
                            Some(id),
                            "error",
                            "error",
                            Some(&unit),
                            &format!("failed: {e}"),
                        ),
                        _ => self.log(
                            Some(id),
                            "system",
                            "info",
                            Some(&unit),
                            &format!("{state} ({} written)", u.row.written),
                        ),
                    }
                }
            }
        }
    }

    fn flush(&self, id: i64, hub: &Hub, dirty: &mut HashSet<String>) {
        if dirty.is_empty() {
            return;
        }
        let (units, overall) = hub.with(|l| {
            let units: Vec<UnitLive> = dirty
                .iter()
                .filter_map(|u| l.units.get(u).cloned())
                .collect();
            (units, l.overall())
        });
        dirty.clear();
        for u in &units {
            if let Err(e) = self.store.update_unit(id, &u.row, false) {
                eprintln!("error: {e}");
            }
        }
        hub.send(Msg::Progress { units, overall });
    }

    /// Asks a running task to stop gracefully (batches in flight are written and
    /// checkpointed).
    pub fn stop(&self, id: i64) -> Result<(), ApiError> {
        let token = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        match token {
            Some(t) => {
                t.cancel();
                self.set_status(id, "stopping", None, false, false);
                self.log(
                    Some(id),
                    "system",
                    "info",
                    None,
                    "stopping: writing what was read, saving checkpoints",
                );
                Ok(())
            }
            None => Err(ApiError::conflict("the task is not running")),
        }
    }

    /// Cancelled when the server shuts down (event streams end).
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Stops every task and waits (up to `grace`) for them to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.cancel();
        let tokens: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        tokens.iter().for_each(|t| t.cancel());
        let deadline = tokio::time::Instant::now() + grace;
        while !self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resumes tasks that were running when the server last stopped.
    pub async fn resume_interrupted(self: &Arc<Self>) {
        let tasks = match self.store.tasks() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return;
            }
        };
        for t in tasks {
            if matches!(t.status.as_str(), "running" | "queued" | "stopping") {
                self.log(
                    Some(t.id),
                    "system",
                    "info",
                    None,
                    "server restarted: resuming from the checkpoints",
                );
                if let Err(e) = self.start(t.id, StartKind::Resume).await {
                    self.set_status(t.id, "failed", Some(&e.message), false, true);
                    self.log(
                        Some(t.id),
                        "error",
                        "error",
                        None,
                        &format!("cannot resume: {}", e.message),
                    );
                }
            }
        }
    }
}

//! Starting, running and stopping a task: planning its units (counters from the
//! checkpoints), running its job with slots from the manager's pool, recording the run's
//! end and the task's status, and a graceful stop.

use std::sync::Arc;

use datatrace_core::{progress_channel, CancellationToken, CheckpointStore, JobReport, UnitState};

use super::{Manager, StartKind, Trigger, INTERRUPTED};
use crate::job_file::JobFile;
use crate::plan::plan;
use crate::serve::checkpoints::{job_name, DbCheckpointStore};
use crate::serve::dead_letters::queue::DbDeadLetterQueue;
use crate::serve::http::ApiError;
use crate::serve::live::UnitLive;
use crate::serve::store::UnitStatus;

impl Manager {
    /// Plans and starts a task by hand; see [`Manager::start_as`].
    pub async fn start(self: &Arc<Self>, id: i64, kind: StartKind) -> Result<(), ApiError> {
        self.start_as(id, kind, Trigger::MANUAL).await.map(|_| ())
    }

    /// Plans and starts a task; planning errors (unreachable server, missing table) are
    /// returned (and recorded as a failed run), the run goes on in the background and is
    /// recorded in the run history; returns the run's id when it was recorded. A task
    /// already running or being verified is a `409` (not recorded: the caller decides).
    pub async fn start_as(
        self: &Arc<Self>,
        id: i64,
        kind: StartKind,
        trigger: Trigger,
    ) -> Result<Option<i64>, ApiError> {
        let task = self
            .store
            .task(id)
            .await?
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
            if self.is_checking(id) {
                return Err(ApiError::conflict(format!(
                    "task {:?} is being verified; start it when the comparison is done",
                    task.name
                )));
            }
            running.insert(id, cancel.clone());
        }
        match self.prepare(id, &task.config, kind).await {
            Ok((job, planned)) => {
                let run = self
                    .begin_run(id, kind.run_kind(), trigger, "running", None)
                    .await;
                self.set_status(id, "queued", None, true, false).await;
                let me = self.clone();
                tokio::spawn(async move { me.run(id, job, planned, cancel, run).await });
                Ok(run)
            }
            Err(e) => {
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                self.begin_run(id, kind.run_kind(), trigger, "failed", Some(&e.message))
                    .await;
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
        let (_, job) = self.build(id, config).await?;
        let store = self.checkpoint_store(id).await;
        let planned = plan(&job, store.clone()).await.map_err(|e| ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: job.scrub(&e.message),
            field: (!e.key.is_empty()).then(|| e.key.clone()),
        })?;
        let units: Vec<(String, String, Option<u64>)> = planned
            .units
            .iter()
            .map(|u| (u.name.clone(), u.target.clone(), u.estimated_rows))
            .collect();
        let name = job_name(id);
        if kind == StartKind::Retry {
            let failed = self
                .store
                .units(id)
                .await?
                .iter()
                .any(|u| u.state == UnitStatus::FAILED);
            if !failed {
                return Err(ApiError::conflict("the task has no failed units to retry"));
            }
        }
        self.store.plan_units(id, &units).await?;
        for (u, _, _) in &units {
            if kind == StartKind::Fresh {
                store
                    .clear(&name, u)
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                continue;
            }
            // Counters restart from what the checkpoint holds, not from the last numbers
            // shown before a stop or crash (written may have run ahead of it).
            let saved = store
                .load(&name, u)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some(row) = self
                .store
                .units(id)
                .await?
                .into_iter()
                .find(|r| &r.unit == u)
            {
                let mut row = row;
                row.read = 0;
                row.rejected = 0;
                row.written = saved.as_ref().map_or(0, |c| c.written);
                if let Some(c) = &saved {
                    row.state = c.state.into();
                }
                self.store.update_unit(id, &row, false).await?;
            }
        }
        let rows = self.store.units(id).await?;
        let hub = self.hub(id).await?;
        hub.with(|l| {
            l.units = rows
                .into_iter()
                .map(|r| (r.unit.clone(), UnitLive::from_row(r)))
                .collect();
        });
        Ok((job, planned))
    }

    /// The checkpoint store of every task's job: the metadata store (a `snapshot+cdc`
    /// handoff keeps its start there too, beside the units' checkpoints). A stream's
    /// position (the newest part position with a commit time) goes to the live view with
    /// the next progress message.
    pub(crate) async fn checkpoint_store(&self, id: i64) -> Arc<dyn CheckpointStore> {
        let mut db = DbCheckpointStore::new(self.store.clone());
        if let Ok(hub) = self.hub(id).await {
            db = db.on_save(Arc::new(move |unit, cp| {
                let pos = cp
                    .parts
                    .iter()
                    .filter_map(|p| p.position.as_ref())
                    .filter(|p| p.ts_ms.is_some())
                    .max_by_key(|p| p.ordinal.unwrap_or(0))
                    .map(|p| p.state.clone());
                if let Some(pos) = pos {
                    hub.with(|l| {
                        if let Some(u) = l.units.get_mut(unit) {
                            u.position = Some(pos);
                        }
                    });
                }
            }));
        }
        Arc::new(db)
    }

    async fn run(
        self: Arc<Self>,
        id: i64,
        job: JobFile,
        planned: crate::plan::Plan,
        cancel: CancellationToken,
        run: Option<i64>,
    ) {
        // A change stream holds its slot for as long as it runs (and waits for the
        // snapshots first): it gets one of its own, beside the snapshots' slots.
        let streams = job.source.streams();
        let extra = usize::from(streams);
        let slots = planned.concurrency.min(self.max_units).max(1);
        let want = (slots + extra) as u32;
        let permits = tokio::select! {
            p = self.units.clone().acquire_many_owned(slots as u32) => p.ok(),
            _ = cancel.cancelled() => None,
        };
        let Some(_permits) = permits else {
            self.not_started(id, run).await;
            return;
        };
        self.set_status(id, "running", None, false, false).await;
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
        )
        .await;
        let (tx, rx) = progress_channel(4096);
        let watcher = tokio::spawn(self.clone().watch(id, job.clone(), rx));
        let dead_letters = DbDeadLetterQueue::new(self.store.clone(), id);
        let result = planned
            .into_job()
            .dead_letters(Arc::new(dead_letters))
            .concurrency(want as usize)
            .progress(tx)
            .cancel_token(cancel.clone())
            .run()
            .await;
        let _ = watcher.await;
        let interrupted = self.closing.is_cancelled() && !self.stop_was_requested(id);
        let (status, error) = outcome(&result, &job, &cancel, interrupted);
        if status != INTERRUPTED {
            // Ended by itself or by a user: a later crash is not this run's doing.
            self.clear_crash_guard(id).await;
        }
        // The run's end first: whoever the status change wakes finds it in the history, and
        // a stopping server (it waits for `running` to empty) has it recorded before it exits.
        let rejected_live = self
            .hub(id)
            .await
            .map_or(0, |h| h.with(|l| l.overall().rejected));
        let end = Self::copy_end(status, error.clone(), result.as_ref().ok(), rejected_live);
        self.end_run(run, end).await;
        self.settle_units(id).await;
        // Out of `running` before the status changes (whoever it wakes may start the task
        // again), but counted as ending until its status and last line are recorded: a
        // stopping server waits for both, so that a graceful stop is never left `running`
        // (which the next start would count as a crash).
        let _ending = self.ending();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.stop_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.set_status(id, status, error.as_deref(), false, true)
            .await;
        self.log_end(id, status, error.as_deref()).await;
    }

    /// Counts a run as ending (see `Manager::ending`) until the guard is dropped.
    fn ending(&self) -> Ending<'_> {
        self.ending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ending(&self.ending)
    }

    /// A run cancelled while it waited for its slots.
    async fn not_started(&self, id: i64, run: Option<i64>) {
        let status = if self.closing.is_cancelled() && !self.stop_was_requested(id) {
            INTERRUPTED
        } else {
            "stopped"
        };
        self.set_status(id, status, None, false, true).await;
        self.log(
            Some(id),
            "system",
            "info",
            None,
            "stopped before it started",
        )
        .await;
        let _ending = self.ending();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.end_run(run, Self::copy_end(status, None, None, 0))
            .await;
    }

    /// The task log's last line of a run: its status, error, or rejected records.
    async fn log_end(&self, id: i64, status: &str, error: Option<&str>) {
        let (rejected, first) = self.hub(id).await.map_or((0, None), |h| {
            h.with(|l| {
                let first = l.units.values().find_map(|u| u.first_rejection.clone());
                (l.overall().rejected, first)
            })
        });
        let (category, level, text) = match (error, status) {
            (Some(e), _) => ("error", "error", format!("{status}: {e}")),
            (None, "done") if rejected > 0 => (
                "error",
                "warn",
                format!(
                    "done with {rejected} rejected record(s){}: see the dead letters",
                    first
                        .map(|f| format!(" (the first: {f})"))
                        .unwrap_or_default()
                ),
            ),
            (None, INTERRUPTED) => (
                "system",
                "info",
                "interrupted by the server's stop: it resumes at the next start".to_owned(),
            ),
            (None, _) => ("system", "info", status.to_owned()),
        };
        self.log(Some(id), category, level, None, &text).await;
    }

    fn stop_was_requested(&self, id: i64) -> bool {
        self.stop_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Asks a running task to stop gracefully (batches in flight are written and
    /// checkpointed).
    pub async fn stop(&self, id: i64) -> Result<(), ApiError> {
        let token = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        match token {
            Some(t) => {
                self.stop_requested
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id);
                t.cancel();
                self.set_status(id, "stopping", None, false, false).await;
                self.log(
                    Some(id),
                    "system",
                    "info",
                    None,
                    "stopping: writing what was read, saving checkpoints",
                )
                .await;
                Ok(())
            }
            None => Err(ApiError::conflict("the task is not running")),
        }
    }
}

/// A finished job's status and error: failed (with the units that failed), done, stopped,
/// or interrupted by the server's stop.
fn outcome(
    result: &datatrace_core::Result<JobReport>,
    job: &JobFile,
    cancel: &CancellationToken,
    interrupted: bool,
) -> (&'static str, Option<String>) {
    match result {
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
        Ok(_) if cancel.is_cancelled() && interrupted => (INTERRUPTED, None),
        Ok(_) if cancel.is_cancelled() => ("stopped", None),
        Ok(_) => ("failed", Some("some units did not finish".to_owned())),
    }
}

/// A run counted in `Manager::ending`; uncounted when dropped.
struct Ending<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

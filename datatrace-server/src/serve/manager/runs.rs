//! The run history as the manager writes it: every start of a task (by hand, by a schedule,
//! after a restart) is recorded when it begins and when it ends, with the counters of the
//! run (records read, written, rejected, bytes written) taken from the job's report; and
//! the drift hook through which checks tell the alerts what they found.

use std::sync::Arc;

use datatrace_core::JobReport;

use super::{Manager, StartKind, INTERRUPTED};
use crate::serve::sql_store::{DriftRow, RunEnd};

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A user, through the API or the UI.
    Manual,
    /// A schedule firing.
    Schedule,
    /// The server, resuming a task after a restart.
    Restart,
}

impl Origin {
    /// The name kept in the run history.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Manual => "manual",
            Origin::Schedule => "schedule",
            Origin::Restart => "restart",
        }
    }
}

/// What set a run going: who, and the schedule when one is involved (a firing, or a
/// schedule run by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    /// Who.
    pub origin: Origin,
    /// The schedule.
    pub schedule: Option<i64>,
}

impl Trigger {
    /// A user's start, not through a schedule.
    pub const MANUAL: Trigger = Trigger {
        origin: Origin::Manual,
        schedule: None,
    };
}

/// Told about every finished check of a task: the alerts' `drift_found` rules evaluate it
/// at once (the evaluator also reads [`crate::serve::sql_store::SqlStore::drifts`] on its
/// own rounds). Arguments: the task's latest drift figure, the task's name, and whether
/// the check was a `drift_check` (the action meant to alert).
pub type DriftHook = Arc<dyn Fn(&DriftRow, &str, bool) + Send + Sync>;

impl StartKind {
    /// The run kind kept in the history.
    pub fn run_kind(self) -> &'static str {
        match self {
            StartKind::Fresh => "sync",
            StartKind::Resume => "resume",
            StartKind::Retry => "retry",
        }
    }
}

impl Manager {
    /// Records the beginning of a run; its id, or `None` when the store refused (the run
    /// goes on; the error is printed).
    pub async fn begin_run(
        &self,
        task: i64,
        kind: &str,
        trigger: Trigger,
        result: &str,
        error: Option<&str>,
    ) -> Option<i64> {
        let error = error.map(|e| self.scrub(e));
        match self
            .store
            .begin_run(
                task,
                trigger.schedule,
                kind,
                trigger.origin.as_str(),
                result,
                error.as_deref(),
            )
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                eprintln!("error: {e}");
                None
            }
        }
    }

    /// Records the end of run `run` (nothing when it was not recorded).
    pub async fn end_run(&self, run: Option<i64>, mut end: RunEnd) {
        let Some(run) = run else { return };
        end.error = end.error.map(|e| self.scrub(&e));
        if let Err(e) = self.store.end_run(run, &end).await {
            eprintln!("error: {e}");
        }
    }

    /// The end of a copy run from its status and the job's report (`None` when the job
    /// failed as a whole); `rejected_live` is the live count, used without a report.
    pub(super) fn copy_end(
        status: &str,
        error: Option<String>,
        report: Option<&JobReport>,
        rejected_live: u64,
    ) -> RunEnd {
        let sum = |f: fn(&datatrace_core::RunReport) -> u64| {
            report.map(|r| {
                r.units
                    .iter()
                    .filter_map(|u| u.report.as_ref())
                    .map(f)
                    .sum::<u64>()
            })
        };
        let rejected = sum(|r| r.rejected).or(Some(rejected_live));
        let result = match status {
            "done" if rejected.unwrap_or(0) > 0 => "done_with_rejects",
            s if s == INTERRUPTED => INTERRUPTED,
            s => s,
        };
        RunEnd {
            result: result.to_owned(),
            rows_read: sum(|r| r.read),
            rows_written: sum(|r| r.written),
            bytes_written: sum(|r| r.bytes),
            rejected,
            error,
            ..RunEnd::default()
        }
    }

    /// Sets the hook told about every finished check (the alerts' evaluator).
    pub fn set_drift_hook(&self, hook: DriftHook) {
        *self.drift_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Tells the drift hook, if one is set, about the task's latest check.
    pub async fn drift_measured(&self, task: i64, drift_check: bool) {
        let hook = self
            .drift_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(hook) = hook else { return };
        let (Ok(drifts), Ok(Some(t))) = (self.store.drifts().await, self.store.task(task).await)
        else {
            return;
        };
        if let Some(d) = drifts.iter().find(|d| d.task_id == task) {
            hook(d, &t.name, drift_check);
        }
    }
}

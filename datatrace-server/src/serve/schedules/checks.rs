//! A check of a task as a recorded run (a verify from the API, a scheduled check, check with
//! repair or drift check): the task is marked as being checked for as long as it runs, the
//! run goes to the history with the rows found differing and those left after a repair
//! (the drift figure of `datatrace_drift_rows`), and the drift hook is told.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use super::Action;
use crate::check::{check_job, CheckError, CheckOptions, CheckReport, UnitCheck};
use crate::serve::http::ApiError;
use crate::serve::manager::{CheckGuard, Manager, Trigger};
use crate::serve::sql_store::RunEnd;
use crate::serve::store::TaskRow;

/// How to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckHow {
    /// `check`, `check_repair` or `drift_check` (never `resync`).
    pub action: Action,
    /// Rewrite what differs.
    pub repair: bool,
    /// With `repair`, delete target rows without a source row.
    pub delete_extra: bool,
}

impl CheckHow {
    /// A check without repair (the API's verify).
    pub const VERIFY: CheckHow = CheckHow {
        action: Action::Check,
        repair: false,
        delete_extra: false,
    };
}

/// A check that has begun: the task is marked, the run recorded.
pub struct Begun {
    guard: CheckGuard,
    /// The run's id (when the store recorded it).
    pub run: Option<i64>,
}

/// Marks task `task` as being checked and records the run; a `409` when it runs or is
/// being checked already (not recorded: the caller decides).
pub async fn begin(
    manager: &Arc<Manager>,
    task: i64,
    how: CheckHow,
    trigger: Trigger,
) -> Result<Begun, ApiError> {
    let guard = manager.begin_check(task)?;
    let run = manager
        .begin_run(task, how.action.as_str(), trigger, "running", None)
        .await;
    Ok(Begun { guard, run })
}

fn differing(u: &UnitCheck) -> u64 {
    u.missing + u.extra + u.different
}

/// The end of a check run from its report.
pub fn check_end(report: &CheckReport) -> RunEnd {
    let found: u64 = report.units.iter().map(differing).sum();
    let left: u64 = report
        .units
        .iter()
        .map(|u| u.after_repair.as_deref().map_or(differing(u), differing))
        .sum();
    let repaired: Option<u64> = report
        .units
        .iter()
        .filter_map(|u| u.repaired.as_ref())
        .map(|r| r.rewritten + r.deleted)
        .reduce(|a, b| a + b);
    let read: u64 = report.units.iter().map(|u| u.source_rows).sum();
    let result = match (left, found) {
        (0, 0) => "equal",
        (0, _) => "repaired",
        _ => "differs",
    };
    let units: Vec<serde_json::Value> = report
        .units
        .iter()
        .map(|u| {
            json!({
                "unit": u.unit, "target": u.target, "source_rows": u.source_rows,
                "target_rows": u.target_rows, "missing": u.missing, "extra": u.extra,
                "different": u.different,
                "left": u.after_repair.as_deref().map_or(differing(u), differing),
            })
        })
        .collect();
    RunEnd {
        result: result.to_owned(),
        rows_read: Some(read),
        rows_written: repaired,
        diff_found: Some(found),
        diff_left: Some(left),
        detail: Some(json!({ "units": units })),
        ..RunEnd::default()
    }
}

/// Runs the check begun with [`begin`] and records its end; the report, or the error
/// (`502` when a server failed during the check, `400` when the task cannot be checked).
pub async fn finish(
    manager: &Arc<Manager>,
    task: &TaskRow,
    how: CheckHow,
    begun: Begun,
) -> Result<CheckReport, ApiError> {
    let Begun { guard, run } = begun;
    let outcome = compare(manager, task, how).await;
    drop(guard);
    match &outcome {
        Ok(report) => {
            let end = check_end(report);
            let summary = match end.result.as_str() {
                "equal" => "the target equals the source".to_owned(),
                "repaired" => format!(
                    "{} row(s) differed; repaired: the target equals the source",
                    end.diff_found.unwrap_or(0)
                ),
                _ => {
                    let (m, x, d) = report.units.iter().fold((0, 0, 0), |a, u| {
                        (a.0 + u.missing, a.1 + u.extra, a.2 + u.different)
                    });
                    format!("differences found ({m} missing, {x} extra, {d} different)")
                }
            };
            let level = if end.result == "differs" {
                "warn"
            } else {
                "info"
            };
            let line = format!("{}: {summary}", how.action.as_str());
            manager
                .log(Some(task.id), "system", level, None, &line)
                .await;
            manager.end_run(run, end).await;
            manager
                .drift_measured(task.id, how.action == Action::DriftCheck)
                .await;
        }
        Err(e) => {
            let line = format!("{} failed: {}", how.action.as_str(), e.message);
            manager
                .log(Some(task.id), "error", "error", None, &line)
                .await;
            let end = RunEnd {
                result: "failed".to_owned(),
                error: Some(e.message.clone()),
                ..RunEnd::default()
            };
            manager.end_run(run, end).await;
        }
    }
    outcome
}

async fn compare(
    manager: &Arc<Manager>,
    task: &TaskRow,
    how: CheckHow,
) -> Result<CheckReport, ApiError> {
    let (_, job) = manager.build(task.id, &task.config).await?;
    let opts = CheckOptions {
        repair: how.repair,
        delete_extra: how.repair && how.delete_extra,
        ..CheckOptions::default()
    };
    check_job(&job, &opts).await.map_err(|e| {
        let message = manager.scrub(&job.scrub(&e.to_string()));
        match e {
            CheckError::Unit { .. } => ApiError {
                status: StatusCode::BAD_GATEWAY,
                message,
                field: None,
            },
            _ => ApiError::bad("", message),
        }
    })
}

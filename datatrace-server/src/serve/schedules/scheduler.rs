//! The scheduler: every [`TICK`] it reads the enabled schedules and fires those due.
//!
//! - A firing is claimed in the store before it runs ([`SqlStore::claim_schedule`]: the
//!   schedule's `next_fire` moves from the due time to the next one, compare and set), so a
//!   restart, or a second server on the same MySQL metadata database, never fires it twice.
//! - Firings missed while the server was down collapse into one: due less than
//!   [`LATE_LIMIT`] ago it runs, older it is recorded as `skipped` ("missed").
//! - A task still running (or being checked) when its schedule is due is not started again:
//!   the firing is recorded as `skipped`, with the reason.
//!
//! [`SqlStore::claim_schedule`]: crate::serve::sql_store::SqlStore::claim_schedule

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::checks::{self, CheckHow};
use super::{stamp, Action};
use crate::serve::cron::CronSpec;
use crate::serve::http::ApiError;
use crate::serve::manager::{Manager, Origin, StartKind, Trigger};
use crate::serve::sql_store::{RunRow, ScheduleRow};

/// How often the scheduler looks for due schedules.
pub const TICK: Duration = Duration::from_secs(2);

/// A firing later than this (the server was down when it was due) is recorded as skipped
/// instead of run.
pub const LATE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Fires due schedules until the server closes.
pub async fn run(manager: Arc<Manager>) {
    let closing = manager.closing();
    loop {
        tick(&manager, Utc::now()).await;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = closing.cancelled() => return,
        }
    }
}

/// One look at every enabled schedule at `now`: each due one is claimed and fired.
pub async fn tick(manager: &Arc<Manager>, now: DateTime<Utc>) {
    let schedules = match manager.store().schedules().await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "scheduler: cannot list schedules");
            return;
        }
    };
    for s in schedules.into_iter().filter(|s| s.enabled) {
        let Some(due) = s.next_fire.clone() else {
            continue;
        };
        let Ok(due_at) = DateTime::parse_from_rfc3339(&due) else {
            continue;
        };
        let due_at = due_at.with_timezone(&Utc);
        if due_at > now {
            continue;
        }
        let next = CronSpec::parse(&s.cron, &s.timezone)
            .ok()
            .and_then(|spec| spec.next_after(now))
            .map(stamp);
        match manager
            .store()
            .claim_schedule(s.id, &due, next.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        }
        let trigger = Trigger {
            origin: Origin::Schedule,
            schedule: Some(s.id),
        };
        let late = (now - due_at).to_std().unwrap_or_default();
        if late > LATE_LIMIT {
            let why = format!(
                "missed: due at {due} while the server was not running (next: {})",
                next.as_deref().unwrap_or("never")
            );
            skip(manager, &s, trigger, &why).await;
            continue;
        }
        let _ = fire(manager, &s, trigger).await;
    }
}

fn kind_of(action: Action) -> &'static str {
    match action {
        Action::Resync => StartKind::Fresh.run_kind(),
        a => a.as_str(),
    }
}

async fn skip(manager: &Arc<Manager>, s: &ScheduleRow, trigger: Trigger, why: &str) -> Option<i64> {
    let action = Action::parse(&s.action).unwrap_or(Action::Check);
    let line = format!("schedule {} ({}): skipped: {why}", s.id, s.action);
    manager
        .log(Some(s.task_id), "system", "warn", None, &line)
        .await;
    manager
        .begin_run(s.task_id, kind_of(action), trigger, "skipped", Some(why))
        .await
}

/// Runs schedule `s`'s action now (a firing, or a schedule run by hand); the run recorded
/// (`running`, or `skipped` when the task is busy, or `failed` when it could not start).
pub async fn fire(
    manager: &Arc<Manager>,
    s: &ScheduleRow,
    trigger: Trigger,
) -> Result<Option<RunRow>, ApiError> {
    let Some(action) = Action::parse(&s.action) else {
        return Err(ApiError::bad(
            "action",
            format!("unknown action {:?}", s.action),
        ));
    };
    let task = manager
        .store()
        .task(s.task_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {}", s.task_id)))?;
    let line = format!("schedule {} fired: {}", s.id, s.action);
    manager
        .log(Some(task.id), "system", "info", None, &line)
        .await;
    let run = match action {
        Action::Resync => {
            match manager.start_as(task.id, StartKind::Fresh, trigger).await {
                Ok(run) => run,
                Err(e) if e.status == axum::http::StatusCode::CONFLICT => {
                    skip(manager, s, trigger, &e.message).await
                }
                // Recorded as a failed run by the start.
                Err(e) => {
                    let line = format!("schedule {}: cannot start: {}", s.id, e.message);
                    manager
                        .log(Some(task.id), "error", "error", None, &line)
                        .await;
                    return Err(e);
                }
            }
        }
        check => {
            let how = CheckHow {
                action: check,
                repair: check == Action::CheckRepair || (check == Action::DriftCheck && s.repair),
                delete_extra: s.delete_extra,
            };
            match checks::begin(manager, task.id, how, trigger).await {
                Ok(begun) => {
                    let run = begun.run;
                    let m = manager.clone();
                    tokio::spawn(async move {
                        // The outcome is in the run history and the task's log.
                        let _ = checks::finish(&m, &task, how, begun).await;
                    });
                    run
                }
                Err(e) => skip(manager, s, trigger, &e.message).await,
            }
        }
    };
    match run {
        Some(id) => Ok(manager.store().run(id).await?),
        None => Ok(None),
    }
}

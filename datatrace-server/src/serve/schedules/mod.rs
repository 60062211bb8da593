//! Schedules of tasks and what they run: a cron expression in an IANA time zone
//! ([`super::cron::CronSpec`]) and an action: a full re-sync (a start afresh), a check, a
//! check with repair, or a drift check (a check whose figure is exported as
//! `datatrace_drift_rows` and raises the `drift_found` alerts, optionally repairing).
//! The [`scheduler`] fires due schedules; every run goes to the run history
//! ([`super::sql_store::runs`]); [`checks`] runs a check as a recorded run; [`api`] is the
//! REST side.

pub mod api;
pub mod checks;
pub mod scheduler;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::cron::CronSpec;
use super::http::ApiError;
use super::sql_store::ScheduleRow;

/// What a schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A full re-sync: the task started afresh (checkpoints forgotten).
    Resync,
    /// Compare the target with the source (no change).
    Check,
    /// Compare, rewrite what differs, compare again.
    CheckRepair,
    /// Compare, export the figure as a metric, raise the `drift_found` alerts; with
    /// `repair`, also rewrite what differs.
    DriftCheck,
}

impl Action {
    /// Every action, for documents and forms.
    pub const ALL: [Action; 4] = [
        Action::Resync,
        Action::Check,
        Action::CheckRepair,
        Action::DriftCheck,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Resync => "resync",
            Action::Check => "check",
            Action::CheckRepair => "check_repair",
            Action::DriftCheck => "drift_check",
        }
    }

    /// Parses a name of [`Action::as_str`].
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A schedule as the API takes it (`POST /api/schedules`, `PUT /api/schedules/{id}`: absent
/// fields keep their value on a change).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// The task (required to create; cannot change).
    #[serde(default)]
    pub task_id: Option<i64>,
    /// Five-field cron expression or alias.
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// `resync`, `check`, `check_repair`, `drift_check`.
    #[serde(default)]
    pub action: Option<String>,
    /// Whether it fires (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// For `drift_check`: repair when drift is found (default false).
    #[serde(default)]
    pub repair: Option<bool>,
    /// When repairing: also delete target rows without a source row (default false).
    #[serde(default)]
    pub delete_extra: Option<bool>,
}

/// RFC 3339 in UTC to the second, as `next_fire` is stored (compared as text by the claim).
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `input` applied to `old` (a new schedule: `None`), checked: the stored row, its next
/// firing computed from `now` when enabled. Errors name the field.
pub fn apply(
    input: ScheduleInput,
    old: Option<&ScheduleRow>,
    now: DateTime<Utc>,
) -> Result<ScheduleRow, ApiError> {
    let task_id = match (input.task_id, old) {
        (Some(t), Some(o)) if t != o.task_id => {
            return Err(ApiError::bad(
                "task_id",
                "a schedule cannot move to another task: create one there and delete this one",
            ))
        }
        (_, Some(o)) => o.task_id,
        (Some(t), None) => t,
        (None, None) => return Err(ApiError::bad("task_id", "task_id is required")),
    };
    let cron = input
        .cron
        .or_else(|| old.map(|o| o.cron.clone()))
        .ok_or_else(|| {
            ApiError::bad(
                "cron",
                "cron is required: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"",
            )
        })?;
    let timezone = input
        .timezone
        .or_else(|| old.map(|o| o.timezone.clone()))
        .unwrap_or_else(|| "UTC".to_owned());
    let spec = CronSpec::parse(&cron, &timezone).map_err(|e| ApiError::bad(e.field, e.message))?;
    let action_name = input
        .action
        .or_else(|| old.map(|o| o.action.clone()))
        .ok_or_else(|| {
            ApiError::bad(
                "action",
                "action is required: one of resync, check, check_repair, drift_check",
            )
        })?;
    let action = Action::parse(action_name.trim()).ok_or_else(|| {
        ApiError::bad(
            "action",
            format!(
                "unknown action {action_name:?}: expected resync, check, check_repair or drift_check"
            ),
        )
    })?;
    let repair = input.repair.or(old.map(|o| o.repair)).unwrap_or(false);
    if repair && action != Action::DriftCheck {
        return Err(ApiError::bad(
            "repair",
            "repair applies to drift_check (check_repair always repairs; resync rewrites everything)",
        ));
    }
    let delete_extra = input
        .delete_extra
        .or(old.map(|o| o.delete_extra))
        .unwrap_or(false);
    if delete_extra && !(action == Action::CheckRepair || repair) {
        return Err(ApiError::bad(
            "delete_extra",
            "delete_extra applies to repairs: action check_repair, or drift_check with repair",
        ));
    }
    let enabled = input.enabled.or(old.map(|o| o.enabled)).unwrap_or(true);
    let next_fire = if enabled {
        spec.next_after(now).map(stamp)
    } else {
        None
    };
    Ok(ScheduleRow {
        id: old.map_or(0, |o| o.id),
        task_id,
        cron: spec.expr().to_owned(),
        timezone: spec.timezone().to_owned(),
        action: action.as_str().to_owned(),
        repair,
        delete_extra,
        enabled,
        next_fire,
        last_fire: old.and_then(|o| o.last_fire.clone()),
        created_at: old.map(|o| o.created_at.clone()).unwrap_or_default(),
        updated_at: String::new(),
    })
}

/// One coming firing: in UTC and as a local time of the schedule's zone.
#[derive(Debug, Clone, Serialize)]
pub struct Firing {
    /// RFC 3339, UTC.
    pub utc: String,
    /// `2026-12-07 02:00 CET`.
    pub local: String,
}

/// A schedule as the API shows it: the row, its task's name, a description of the
/// expression and the next firings.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    /// The stored schedule.
    #[serde(flatten)]
    pub row: ScheduleRow,
    /// The task's name.
    pub task: String,
    /// The expression in English ("At 02:00").
    pub describe: String,
    /// The next three firings (none while disabled).
    pub next_fires: Vec<Firing>,
}

impl ScheduleView {
    /// The view of `row` of task `task` at `now`.
    pub fn new(row: ScheduleRow, task: String, now: DateTime<Utc>) -> ScheduleView {
        let (describe, next_fires) = match CronSpec::parse(&row.cron, &row.timezone) {
            Ok(spec) => {
                let next = if row.enabled {
                    spec.upcoming(now, 3)
                        .into_iter()
                        .map(|t| Firing {
                            utc: stamp(t),
                            local: spec.local(t),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (spec.describe(), next)
            }
            Err(e) => (format!("invalid: {}", e.message), Vec::new()),
        };
        ScheduleView {
            row,
            task,
            describe,
            next_fires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(cron: &str, tz: &str, action: &str) -> ScheduleInput {
        ScheduleInput {
            task_id: Some(1),
            cron: Some(cron.into()),
            timezone: Some(tz.into()),
            action: Some(action.into()),
            ..ScheduleInput::default()
        }
    }

    #[test]
    fn wrong_fields_are_named() {
        let now = Utc::now();
        let field = |i: ScheduleInput| apply(i, None, now).unwrap_err().field.unwrap();
        assert_eq!(field(input("61 * * * *", "UTC", "check")), "cron");
        assert_eq!(field(input("0 2 * * *", "Mars/Base", "check")), "timezone");
        assert_eq!(field(input("0 2 * * *", "UTC", "copy")), "action");
        let mut i = input("0 2 * * *", "UTC", "check");
        i.repair = Some(true);
        assert_eq!(field(i), "repair");
        let mut i = input("0 2 * * *", "UTC", "check");
        i.delete_extra = Some(true);
        assert_eq!(field(i), "delete_extra");
        let mut i = input("0 2 * * *", "UTC", "check");
        i.task_id = None;
        assert_eq!(field(i), "task_id");
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let now = Utc::now();
        let mut i = input("0 2 * * *", "Europe/Berlin", "drift_check");
        i.repair = Some(true);
        i.delete_extra = Some(true);
        let row = apply(i, None, now).unwrap();
        assert!(row.next_fire.is_some() && row.repair && row.delete_extra);
        let change = ScheduleInput {
            enabled: Some(false),
            ..ScheduleInput::default()
        };
        let off = apply(change, Some(&row), now).unwrap();
        assert_eq!(
            (off.cron.as_str(), off.timezone.as_str(), off.next_fire),
            ("0 2 * * *", "Europe/Berlin", None)
        );
        let moved = ScheduleInput {
            task_id: Some(2),
            ..ScheduleInput::default()
        };
        assert_eq!(
            apply(moved, Some(&row), now).unwrap_err().field.as_deref(),
            Some("task_id")
        );
    }
}

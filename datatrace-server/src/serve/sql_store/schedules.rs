//! Schedules of tasks in the metadata store: a cron expression in a time zone, an action,
//! and the next firing, which the scheduler claims (compare and set) before it runs one,
//! so that neither a restart nor a second server on the same database fires it twice.

use serde::Serialize;

use super::{err, opt_i, opt_s, s, SqlStore};
use crate::serve::store::{now, StoreResult};

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRow {
    /// Its id.
    pub id: i64,
    /// The task it runs.
    pub task_id: i64,
    /// Five-field cron expression or alias (`0 2 * * *`, `@daily`).
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    /// `resync`, `check`, `check_repair` or `drift_check`.
    pub action: String,
    /// For `drift_check`: repair when drift is found.
    pub repair: bool,
    /// When repairing: also delete target rows that have no source row.
    pub delete_extra: bool,
    /// Whether it fires.
    pub enabled: bool,
    /// The next firing (RFC 3339, UTC); `None` while disabled.
    pub next_fire: Option<String>,
    /// The last firing claimed (RFC 3339, UTC).
    pub last_fire: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

const SCHEDULE_SELECT: &str = "SELECT id, task_id, cron, timezone, action, repair_drift,
    delete_extra, enabled, next_fire, last_fire, created_at, updated_at FROM schedules";

fn schedule_row(r: &sqlx::any::AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        task_id: opt_i(r, 1)?.unwrap_or(0),
        cron: s(r, 2)?,
        timezone: s(r, 3)?,
        action: s(r, 4)?,
        repair: opt_i(r, 5)?.unwrap_or(0) != 0,
        delete_extra: opt_i(r, 6)?.unwrap_or(0) != 0,
        enabled: opt_i(r, 7)?.unwrap_or(0) != 0,
        next_fire: opt_s(r, 8)?,
        last_fire: opt_s(r, 9)?,
        created_at: s(r, 10)?,
        updated_at: s(r, 11)?,
    })
}

impl SqlStore {
    /// Every schedule, by id.
    pub async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        self.rows_by_id(SCHEDULE_SELECT, schedule_row, "listing schedules")
            .await
    }

    /// The schedules of one task, by id.
    pub async fn task_schedules(&self, task: i64) -> StoreResult<Vec<ScheduleRow>> {
        let what = "listing a task's schedules";
        let rows = sqlx::query(&format!("{SCHEDULE_SELECT} WHERE task_id = ? ORDER BY id"))
            .bind(task)
            .fetch_all(&self.pool)
            .await
            .map_err(err(what))?;
        rows.iter()
            .map(schedule_row)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// One schedule.
    pub async fn schedule(&self, id: i64) -> StoreResult<Option<ScheduleRow>> {
        self.row_by_id(SCHEDULE_SELECT, id, schedule_row, "reading a schedule")
            .await
    }

    /// Inserts (`row.id` 0) or updates a schedule (every field but the times and
    /// `last_fire`); returns its id.
    pub async fn save_schedule(&self, row: &ScheduleRow) -> StoreResult<i64> {
        let what = "saving a schedule";
        let ts = now();
        let flags = [row.repair, row.delete_extra, row.enabled].map(i64::from);
        if row.id == 0 {
            let sql = self.returning_id(
                "INSERT INTO schedules (task_id, cron, timezone, action, repair_drift,
                   delete_extra, enabled, next_fire, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            self.insert_id(
                sqlx::query(&sql)
                    .bind(row.task_id)
                    .bind(&row.cron)
                    .bind(&row.timezone)
                    .bind(&row.action)
                    .bind(flags[0])
                    .bind(flags[1])
                    .bind(flags[2])
                    .bind(&row.next_fire)
                    .bind(&ts)
                    .bind(&ts),
                what,
            )
            .await
        } else {
            sqlx::query(
                "UPDATE schedules SET cron = ?, timezone = ?, action = ?, repair_drift = ?,
                   delete_extra = ?, enabled = ?, next_fire = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&row.cron)
            .bind(&row.timezone)
            .bind(&row.action)
            .bind(flags[0])
            .bind(flags[1])
            .bind(flags[2])
            .bind(&row.next_fire)
            .bind(&ts)
            .bind(row.id)
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
            Ok(row.id)
        }
    }

    /// Claims the firing of schedule `id` due at `due`: moves `next_fire` from `due` to
    /// `next` and records `due` as the last firing. `false` when someone else claimed it
    /// (or the schedule changed) meanwhile: then it must not run.
    pub async fn claim_schedule(
        &self,
        id: i64,
        due: &str,
        next: Option<&str>,
    ) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE schedules SET next_fire = ?, last_fire = ?
             WHERE id = ? AND enabled = 1 AND next_fire = ?",
        )
        .bind(next)
        .bind(due)
        .bind(id)
        .bind(due)
        .execute(&self.pool)
        .await
        .map_err(err("claiming a schedule's firing"))
        .map(|r| r.rows_affected() == 1)
    }

    /// Deletes a schedule; whether it existed.
    pub async fn delete_schedule(&self, id: i64) -> StoreResult<bool> {
        self.delete_by_id("schedules", id, "deleting a schedule")
            .await
    }
}

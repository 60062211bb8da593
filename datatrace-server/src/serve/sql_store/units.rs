//! Units of tasks in the metadata store: their planned order, state, counters and
//! checkpoints.

use super::{db_n, err, n, opt_i, opt_s, s, SqlStore};
use datatrace_core::UnitState;

use crate::serve::store::{now, StoreResult, UnitRow, UnitStatus};

impl SqlStore {
    /// The units of a task, in the order they were planned.
    pub async fn units(&self, task: i64) -> StoreResult<Vec<UnitRow>> {
        let what = "listing units";
        let rows = sqlx::query(
            "SELECT unit, target, state, `read`, written, rejected, estimated_total, error,
               started_at, updated_at FROM task_units WHERE task_id = ? ORDER BY seq",
        )
        .bind(task)
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| {
                Ok(UnitRow {
                    unit: s(r, 0)?,
                    target: opt_s(r, 1)?,
                    state: s(r, 2)?
                        .parse()
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    read: n(r, 3)?,
                    written: n(r, 4)?,
                    rejected: n(r, 5)?,
                    estimated_total: opt_i(r, 6)?.map(|v| v.max(0) as u64),
                    error: opt_s(r, 7)?,
                    started_at: opt_s(r, 8)?,
                    updated_at: s(r, 9)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err(what))
    }

    /// Records the planned units of a task (unit, target, estimated rows), keeping the
    /// state of units already known and forgetting units no longer planned.
    pub async fn plan_units(
        &self,
        task: i64,
        units: &[(String, String, Option<u64>)],
    ) -> StoreResult<()> {
        let what = "planning units";
        let ts = now();
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        let known = sqlx::query("SELECT unit FROM task_units WHERE task_id = ?")
            .bind(task)
            .fetch_all(&mut *tx)
            .await
            .map_err(err(what))?;
        for row in &known {
            let k = s(row, 0).map_err(err(what))?;
            if !units.iter().any(|u| u.0 == k) {
                sqlx::query("DELETE FROM task_units WHERE task_id = ? AND unit = ?")
                    .bind(task)
                    .bind(&k)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(what))?;
            }
        }
        for (unit, target, est) in units {
            sqlx::query(&self.sql.plan_unit)
                .bind(task)
                .bind(unit)
                .bind(target)
                .bind(est.map(db_n))
                .bind(&ts)
                .execute(&mut *tx)
                .await
                .map_err(err(what))?;
        }
        tx.commit().await.map_err(err(what))
    }

    /// Updates a unit's state and counters (`starting` stamps its start).
    pub async fn update_unit(&self, task: i64, u: &UnitRow, starting: bool) -> StoreResult<()> {
        let ts = now();
        let started_at = starting.then_some(ts.as_str());
        sqlx::query(
            "UPDATE task_units SET state = ?, `read` = ?, written = ?, rejected = ?,
               estimated_total = COALESCE(?, estimated_total), error = ?, updated_at = ?,
               started_at = COALESCE(?, started_at)
             WHERE task_id = ? AND unit = ?",
        )
        .bind(u.state.as_str())
        .bind(db_n(u.read))
        .bind(db_n(u.written))
        .bind(db_n(u.rejected))
        .bind(u.estimated_total.map(db_n))
        .bind(&u.error)
        .bind(&ts)
        .bind(started_at)
        .bind(task)
        .bind(&u.unit)
        .execute(&self.pool)
        .await
        .map_err(err("updating a unit"))
        .map(|_| ())
    }

    /// A unit's checkpoint (JSON).
    pub async fn checkpoint(&self, task: i64, unit: &str) -> StoreResult<Option<String>> {
        let what = "loading a checkpoint";
        let row = sqlx::query("SELECT checkpoint FROM task_units WHERE task_id = ? AND unit = ?")
            .bind(task)
            .bind(unit)
            .fetch_optional(&self.pool)
            .await
            .map_err(err(what))?;
        match row {
            Some(r) => opt_s(&r, 0).map_err(err(what)),
            None => Ok(None),
        }
    }

    /// Every checkpoint of a task: (unit, JSON).
    pub async fn checkpoints(&self, task: i64) -> StoreResult<Vec<(String, String)>> {
        let what = "listing checkpoints";
        let rows = sqlx::query(
            "SELECT unit, checkpoint FROM task_units
             WHERE task_id = ? AND checkpoint IS NOT NULL ORDER BY unit",
        )
        .bind(task)
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| Ok((s(r, 0)?, s(r, 1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err(what))
    }

    /// Saves (JSON, state, written, error) or with `None` clears a unit's checkpoint; the
    /// unit's row is created when missing.
    pub async fn save_checkpoint(
        &self,
        task: i64,
        unit: &str,
        checkpoint: Option<(&str, UnitState, u64, Option<&str>)>,
    ) -> StoreResult<()> {
        let what = "saving a checkpoint";
        let ts = now();
        let q = match checkpoint {
            Some((json, state, written, error)) => sqlx::query(&self.sql.save_checkpoint)
                .bind(task)
                .bind(unit)
                .bind(UnitStatus::from(state).as_str())
                .bind(db_n(written))
                .bind(json)
                .bind(error)
                .bind(&ts),
            None => sqlx::query(
                "UPDATE task_units SET checkpoint = NULL, state = 'pending', `read` = 0,
                   written = 0, rejected = 0, error = NULL, updated_at = ?
                 WHERE task_id = ? AND unit = ?",
            )
            .bind(&ts)
            .bind(task)
            .bind(unit),
        };
        q.execute(&self.pool).await.map_err(err(what)).map(|_| ())
    }
}

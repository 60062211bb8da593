//! Log lines of tasks and of the server in the metadata store.

use super::{err, opt_i, opt_s, s, SqlStore};
use crate::serve::store::{now, LogFilter, LogRow, StoreResult};

impl SqlStore {
    /// Appends a log line; returns it.
    pub async fn add_log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) -> StoreResult<LogRow> {
        let what = "writing a log line";
        let ts = now();
        let sql = self.returning_id(
            "INSERT INTO logs (task_id, category, level, unit, message, ts)
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        let id = self
            .insert_id(
                sqlx::query(&sql)
                    .bind(task)
                    .bind(category)
                    .bind(level)
                    .bind(unit)
                    .bind(message)
                    .bind(&ts),
                what,
            )
            .await?;
        Ok(LogRow {
            id,
            task_id: task,
            category: category.to_owned(),
            level: level.to_owned(),
            unit: unit.map(str::to_owned),
            message: message.to_owned(),
            ts,
        })
    }

    /// Log lines of a task (or the server's, `None`) that pass `filter`: newest first, or
    /// with `filter.after` oldest first (what came since).
    pub async fn logs(&self, task: Option<i64>, filter: &LogFilter) -> StoreResult<Vec<LogRow>> {
        let what = "reading logs";
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let like = filter.like();
        let rows = sqlx::query(&format!(
            "SELECT id, task_id, category, level, unit, message, ts FROM logs
             WHERE ((? IS NULL AND task_id IS NULL) OR task_id = ?)
               AND (? IS NULL OR category = ?) AND (? IS NULL OR id < ?)
               AND (? IS NULL OR id > ?)
               AND (? IS NULL OR LOWER(message) LIKE ? ESCAPE '!')
             ORDER BY id {order} LIMIT ?"
        ))
        .bind(task)
        .bind(task)
        .bind(&filter.category)
        .bind(&filter.category)
        .bind(filter.before)
        .bind(filter.before)
        .bind(filter.after)
        .bind(filter.after)
        .bind(&like)
        .bind(&like)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| {
                Ok(LogRow {
                    id: opt_i(r, 0)?.unwrap_or(0),
                    task_id: opt_i(r, 1)?,
                    category: s(r, 2)?,
                    level: s(r, 3)?,
                    unit: opt_s(r, 4)?,
                    message: s(r, 5)?,
                    ts: s(r, 6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err(what))
    }
}

//! The run history of tasks in the metadata store: every start (by hand, by a schedule,
//! after a restart), every check and every skipped firing, with its counters and result;
//! the newest [`RUNS_KEPT`] per task are kept.

use serde::Serialize;

use super::{db_n, err, opt_i, opt_s, s, SqlStore};
use crate::serve::store::{now, StoreResult};

/// Runs kept per task: older ones are deleted when a new one is recorded (like log lines
/// and dead letters, history is bounded whatever the schedule).
pub const RUNS_KEPT: i64 = 1000;

/// One run of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Increasing id (page with `before`).
    pub id: i64,
    /// The task.
    pub task_id: i64,
    /// The schedule that fired it, if one did.
    pub schedule_id: Option<i64>,
    /// `sync` (a start afresh), `resume`, `retry`, `check`, `check_repair`, `drift_check`.
    pub kind: String,
    /// `manual` (the API or UI), `schedule`, `restart` (resumed after a server restart).
    pub origin: String,
    /// `running`; a copy: `done`, `done_with_rejects`, `failed`, `stopped`, `interrupted`;
    /// a check: `equal`, `differs`, `repaired`, `failed`; `skipped` (the task was busy or
    /// the server was down when it was due).
    pub result: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Records read from the source by this run.
    pub rows_read: Option<u64>,
    /// Records written to the target by this run (a repair: rows rewritten or deleted).
    pub rows_written: Option<u64>,
    /// Bytes written to the target by this run (the sink's estimate of the records' size).
    pub bytes_written: Option<u64>,
    /// Records rejected (dead letters) by this run.
    pub rejected: Option<u64>,
    /// A check: rows missing, extra or different that it found.
    pub diff_found: Option<u64>,
    /// A check: rows still differing when it ended (after its repair, when repairing).
    pub diff_left: Option<u64>,
    /// The error or the reason it was skipped (secrets removed).
    pub error: Option<String>,
    /// A check: per unit, rows on each side and what differed.
    pub detail: Option<serde_json::Value>,
}

/// What a run ended with.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// The result (see [`RunRow::result`]).
    pub result: String,
    /// Records read.
    pub rows_read: Option<u64>,
    /// Records written.
    pub rows_written: Option<u64>,
    /// Bytes written.
    pub bytes_written: Option<u64>,
    /// Records rejected.
    pub rejected: Option<u64>,
    /// Rows found differing.
    pub diff_found: Option<u64>,
    /// Rows left differing.
    pub diff_left: Option<u64>,
    /// The error.
    pub error: Option<String>,
    /// Details (JSON).
    pub detail: Option<serde_json::Value>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this task's.
    pub task: Option<i64>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only ids below this (the next page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A task's latest drift figure: rows differing after its last check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftRow {
    /// The task.
    pub task_id: i64,
    /// The run that measured it.
    pub run_id: i64,
    /// Rows differing when that check ended (after its repair, when repairing).
    pub rows_differing: u64,
    /// When it ended (RFC 3339).
    pub checked_at: String,
}

const RUN_SELECT: &str = "SELECT id, task_id, schedule_id, kind, origin, result, started_at,
    finished_at, rows_read, rows_written, bytes_written, rejected, diff_found, diff_left,
    error, detail FROM task_runs";

fn count(r: &sqlx::any::AnyRow, i: usize) -> Result<Option<u64>, sqlx::Error> {
    Ok(opt_i(r, i)?.map(|v| v.max(0) as u64))
}

fn run_row(r: &sqlx::any::AnyRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        task_id: opt_i(r, 1)?.unwrap_or(0),
        schedule_id: opt_i(r, 2)?,
        kind: s(r, 3)?,
        origin: s(r, 4)?,
        result: s(r, 5)?,
        started_at: s(r, 6)?,
        finished_at: opt_s(r, 7)?,
        rows_read: count(r, 8)?,
        rows_written: count(r, 9)?,
        bytes_written: count(r, 10)?,
        rejected: count(r, 11)?,
        diff_found: count(r, 12)?,
        diff_left: count(r, 13)?,
        error: opt_s(r, 14)?,
        detail: opt_s(r, 15)?.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

impl SqlStore {
    /// Records the start of a run (`result` `running`, or `skipped` with its reason);
    /// returns its id. Older runs of the task beyond [`RUNS_KEPT`] are deleted.
    pub async fn begin_run(
        &self,
        task: i64,
        schedule: Option<i64>,
        kind: &str,
        origin: &str,
        result: &str,
        error: Option<&str>,
    ) -> StoreResult<i64> {
        let what = "recording a run";
        let ts = now();
        let finished = (result != "running").then_some(ts.as_str());
        let sql = self.returning_id(
            "INSERT INTO task_runs (task_id, schedule_id, kind, origin, result, started_at,
               finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let id = self
            .insert_id(
                sqlx::query(&sql)
                    .bind(task)
                    .bind(schedule)
                    .bind(kind)
                    .bind(origin)
                    .bind(result)
                    .bind(&ts)
                    .bind(finished)
                    .bind(error),
                what,
            )
            .await?;
        self.prune_runs(task).await?;
        Ok(id)
    }

    /// Records the end of run `id`.
    pub async fn end_run(&self, id: i64, end: &RunEnd) -> StoreResult<()> {
        let c = |v: Option<u64>| v.map(db_n);
        sqlx::query(
            "UPDATE task_runs SET result = ?, finished_at = ?, rows_read = ?, rows_written = ?,
               bytes_written = ?, rejected = ?, diff_found = ?, diff_left = ?, error = ?,
               detail = ? WHERE id = ?",
        )
        .bind(&end.result)
        .bind(now())
        .bind(c(end.rows_read))
        .bind(c(end.rows_written))
        .bind(c(end.bytes_written))
        .bind(c(end.rejected))
        .bind(c(end.diff_found))
        .bind(c(end.diff_left))
        .bind(&end.error)
        .bind(end.detail.as_ref().map(|d| d.to_string()))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err("recording the end of a run"))
        .map(|_| ())
    }

    /// Runs still `running` in the store (the server stopped or crashed during them)
    /// become `interrupted`; returns how many.
    pub async fn interrupt_open_runs(&self) -> StoreResult<u64> {
        sqlx::query(
            "UPDATE task_runs SET result = 'interrupted', finished_at = ?
             WHERE result = 'running'",
        )
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(err("closing the runs of the previous start"))
        .map(|r| r.rows_affected())
    }

    /// One run.
    pub async fn run(&self, id: i64) -> StoreResult<Option<RunRow>> {
        self.row_by_id(RUN_SELECT, id, run_row, "reading a run")
            .await
    }

    /// Runs passing `filter`, newest first.
    pub async fn runs(&self, filter: &RunFilter) -> StoreResult<Vec<RunRow>> {
        let what = "listing runs";
        let rows = sqlx::query(&format!(
            "{RUN_SELECT} WHERE (? IS NULL OR task_id = ?) AND (? IS NULL OR kind = ?)
               AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(filter.task)
        .bind(filter.task)
        .bind(&filter.kind)
        .bind(&filter.kind)
        .bind(filter.before)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// Every task's latest drift figure (its newest run that compared).
    pub async fn drifts(&self) -> StoreResult<Vec<DriftRow>> {
        let what = "reading drift figures";
        let rows = sqlx::query(
            "SELECT r.task_id, r.id, r.diff_left, r.finished_at FROM task_runs r
             JOIN (SELECT task_id, MAX(id) AS m FROM task_runs WHERE diff_left IS NOT NULL
                   GROUP BY task_id) x ON r.id = x.m ORDER BY r.task_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| {
                Ok(DriftRow {
                    task_id: opt_i(r, 0)?.unwrap_or(0),
                    run_id: opt_i(r, 1)?.unwrap_or(0),
                    rows_differing: count(r, 2)?.unwrap_or(0),
                    checked_at: s(r, 3)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// Deletes the task's runs beyond the newest [`RUNS_KEPT`].
    async fn prune_runs(&self, task: i64) -> StoreResult<()> {
        let what = "pruning the run history";
        // Two statements: MySQL refuses a subquery on the table a DELETE changes.
        let oldest_kept = sqlx::query(
            "SELECT id FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        )
        .bind(task)
        .bind(RUNS_KEPT - 1)
        .fetch_optional(&self.pool)
        .await
        .map_err(err(what))?;
        let Some(row) = oldest_kept else {
            return Ok(());
        };
        let id = opt_i(&row, 0).map_err(err(what))?.unwrap_or(0);
        sqlx::query("DELETE FROM task_runs WHERE task_id = ? AND id < ?")
            .bind(task)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(err(what))
            .map(|_| ())
    }
}

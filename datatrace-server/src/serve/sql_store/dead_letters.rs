//! The tasks' dead letters in the metadata store: one row per (task, unit, key), whose
//! `hits` count the rejections of that key, in state `new`, `replayed` or `discarded`.
//! The rejected record itself (with its schema) is kept as JSON in `entry`; it may hold
//! user data, so it leaves the store only through the role-checked API.

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{err, n, opt_i, opt_s, s, SqlStore};
use crate::serve::schema::Set;
use crate::serve::store::{now, LogFilter, StoreResult};

/// The states of a dead letter.
pub const STATES: &[&str] = &["new", "replayed", "discarded"];

/// A rejected record about to be stored.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The unit (table or index).
    pub unit: String,
    /// A digest of the record's key (of its values when it has none): what de-duplicates.
    pub key_digest: String,
    /// The key as text, for lists.
    pub key_text: String,
    /// `sink` or `transform`.
    pub stage: String,
    /// Why it was rejected.
    pub error: String,
    /// The whole [`datatrace_core::DeadLetter`] as JSON.
    pub entry: String,
    /// Write attempts made.
    pub attempts: u32,
}

/// A stored dead letter, without its record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetterRow {
    /// Its id.
    pub id: i64,
    /// The task.
    pub task_id: i64,
    /// The unit.
    pub unit: String,
    /// The record's key as text.
    pub key: String,
    /// `sink` or `transform`.
    pub stage: String,
    /// The last reason given.
    pub error: String,
    /// `new`, `replayed` or `discarded`.
    pub state: String,
    /// How many times this key was rejected.
    pub count: u64,
    /// Write attempts of the last rejection (replays add theirs).
    pub attempts: u64,
    /// The first rejection (RFC 3339).
    pub first_at: String,
    /// The last rejection.
    pub last_at: String,
    /// When it was replayed or discarded.
    pub state_at: Option<String>,
    /// Who replayed or discarded it.
    pub state_by: Option<String>,
}

/// Which dead letters to read (or replay, or discard).
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// One unit.
    pub unit: Option<String>,
    /// Only those whose error or key contains this text (case-insensitive for ASCII).
    pub search: Option<String>,
    /// One state.
    pub state: Option<String>,
    /// Last rejected at or after this instant (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Last rejected before this instant.
    pub until_us: Option<i64>,
    /// Only ids below this (the next page, newest first).
    pub before: Option<i64>,
    /// Only ids above this (walking all of them, oldest first).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// Dead letters per state.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeadLetterCounts {
    /// Waiting for a decision.
    pub new: u64,
    /// Written by a replay.
    pub replayed: u64,
    /// Given up.
    pub discarded: u64,
    /// When the newest `new` one was last rejected (microseconds since the epoch): an alert
    /// rule's "growing" reads it; not part of API answers.
    #[serde(skip)]
    pub newest_new_us: Option<i64>,
}

const DL_COLUMNS: &str = "id, task_id, unit, key_text, stage, error, state, hits, attempts,
    first_at, last_at, state_at, state_by";

fn dl_row(r: &AnyRow) -> Result<DeadLetterRow, sqlx::Error> {
    Ok(DeadLetterRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        task_id: opt_i(r, 1)?.unwrap_or(0),
        unit: s(r, 2)?,
        key: s(r, 3)?,
        stage: s(r, 4)?,
        error: s(r, 5)?,
        state: s(r, 6)?,
        count: n(r, 7)?,
        attempts: n(r, 8)?,
        first_at: s(r, 9)?,
        last_at: s(r, 10)?,
        state_at: opt_s(r, 11)?,
        state_by: opt_s(r, 12)?,
    })
}

/// The `WHERE` of a filtered query (binds: see [`SqlStore::bind_filter`]).
const FILTER: &str = "task_id = ? AND (? IS NULL OR unit = ?) AND (? IS NULL OR state = ?)
    AND (? IS NULL OR LOWER(error) LIKE ? ESCAPE '!' OR LOWER(key_text) LIKE ? ESCAPE '!')
    AND (? IS NULL OR last_us >= ?) AND (? IS NULL OR last_us < ?)
    AND (? IS NULL OR id < ?) AND (? IS NULL OR id > ?)";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_filter<'q>(q: AnyQuery<'q>, task: i64, f: &'q DeadLetterFilter) -> AnyQuery<'q> {
    let like = LogFilter {
        search: f.search.clone(),
        ..LogFilter::default()
    }
    .like();
    q.bind(task)
        .bind(f.unit.as_deref())
        .bind(f.unit.as_deref())
        .bind(f.state.as_deref())
        .bind(f.state.as_deref())
        .bind(like.clone())
        .bind(like.clone())
        .bind(like)
        .bind(f.since_us)
        .bind(f.since_us)
        .bind(f.until_us)
        .bind(f.until_us)
        .bind(f.before)
        .bind(f.before)
        .bind(f.after)
        .bind(f.after)
}

fn micros_now() -> i64 {
    datatrace_core::Timestamp::now().as_unix_micros()
}

impl SqlStore {
    /// Stores rejected records of a task: a key already there (in any state) is counted
    /// again, takes the new error and record, and is `new` again.
    pub async fn put_dead_letters(&self, task: i64, entries: &[NewDeadLetter]) -> StoreResult<()> {
        let what = "storing dead letters";
        let sql = self.dialect.upsert(
            "dead_letters",
            &[
                "task_id",
                "unit",
                "key_digest",
                "key_text",
                "stage",
                "error",
                "entry",
                "state",
                "hits",
                "attempts",
                "first_at",
                "last_at",
                "last_us",
                "state_at",
                "state_us",
                "state_by",
            ],
            "task_id, unit, key_digest",
            &[
                Set::New("stage"),
                Set::New("error"),
                Set::New("entry"),
                Set::New("state"),
                Set::Add("hits"),
                Set::New("attempts"),
                Set::New("last_at"),
                Set::New("last_us"),
                Set::New("state_at"),
                Set::New("state_us"),
                Set::New("state_by"),
            ],
        );
        let (ts, us) = (now(), micros_now());
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        for e in entries {
            sqlx::query(&sql)
                .bind(task)
                .bind(&e.unit)
                .bind(&e.key_digest)
                .bind(&e.key_text)
                .bind(&e.stage)
                .bind(&e.error)
                .bind(&e.entry)
                .bind("new")
                .bind(1i64)
                .bind(i64::from(e.attempts))
                .bind(&ts)
                .bind(&ts)
                .bind(us)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<String>)
                .execute(&mut *tx)
                .await
                .map_err(err(what))?;
        }
        tx.commit().await.map_err(err(what))
    }

    /// A task's dead letters passing `filter`: newest first, or with `filter.after`
    /// oldest first.
    pub async fn dead_letters(
        &self,
        task: i64,
        filter: &DeadLetterFilter,
    ) -> StoreResult<Vec<DeadLetterRow>> {
        let what = "reading dead letters";
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "SELECT {DL_COLUMNS} FROM dead_letters WHERE {FILTER} ORDER BY id {order} LIMIT ?"
        );
        let rows = bind_filter(sqlx::query(&sql), task, filter)
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err(what))?;
        rows.iter()
            .map(dl_row)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// How many of a task's dead letters pass `filter` (its paging keys ignored).
    pub async fn count_dead_letters(
        &self,
        task: i64,
        filter: &DeadLetterFilter,
    ) -> StoreResult<u64> {
        let what = "counting dead letters";
        let f = DeadLetterFilter {
            before: None,
            after: None,
            ..filter.clone()
        };
        let sql = format!("SELECT COUNT(*) FROM dead_letters WHERE {FILTER}");
        let row = bind_filter(sqlx::query(&sql), task, &f)
            .fetch_one(&self.pool)
            .await
            .map_err(err(what))?;
        n(&row, 0).map_err(err(what))
    }

    /// A task's dead letters per state.
    pub async fn dead_letter_counts(&self, task: i64) -> StoreResult<DeadLetterCounts> {
        let what = "counting dead letters";
        let rows = sqlx::query(
            "SELECT state, COUNT(*), MAX(last_us) FROM dead_letters WHERE task_id = ?
             GROUP BY state",
        )
        .bind(task)
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        let mut c = DeadLetterCounts::default();
        for r in &rows {
            let k = n(r, 1).map_err(err(what))?;
            match s(r, 0).map_err(err(what))?.as_str() {
                "new" => {
                    c.new = k;
                    c.newest_new_us = opt_i(r, 2).map_err(err(what))?;
                }
                "replayed" => c.replayed = k,
                _ => c.discarded += k,
            }
        }
        Ok(c)
    }

    /// One dead letter of a task with its stored entry (JSON).
    pub async fn dead_letter(
        &self,
        task: i64,
        id: i64,
    ) -> StoreResult<Option<(DeadLetterRow, String)>> {
        let what = "reading a dead letter";
        let row = sqlx::query(&format!(
            "SELECT {DL_COLUMNS}, entry FROM dead_letters WHERE task_id = ? AND id = ?"
        ))
        .bind(task)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(err(what))?;
        row.map(|r| Ok((dl_row(&r)?, s(&r, 13)?)))
            .transpose()
            .map_err(err(what))
    }

    /// Marks `new` dead letters `replayed` or `discarded` by `by`; how many changed.
    pub async fn set_dead_letter_state(
        &self,
        task: i64,
        ids: &[i64],
        state: &str,
        by: &str,
    ) -> StoreResult<u64> {
        let what = "changing dead letters";
        let (ts, us) = (now(), micros_now());
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        let mut changed = 0;
        for id in ids {
            changed += sqlx::query(
                "UPDATE dead_letters SET state = ?, state_at = ?, state_us = ?, state_by = ?
                 WHERE task_id = ? AND id = ? AND state = 'new'",
            )
            .bind(state)
            .bind(&ts)
            .bind(us)
            .bind(by)
            .bind(task)
            .bind(*id)
            .execute(&mut *tx)
            .await
            .map_err(err(what))?
            .rows_affected();
        }
        tx.commit().await.map_err(err(what))?;
        Ok(changed)
    }

    /// Records a replay the sink refused again: the new reason, one more attempt, still
    /// `new`.
    pub async fn dead_letter_refused(
        &self,
        task: i64,
        id: i64,
        error: &str,
        entry: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE dead_letters SET error = ?, entry = ?, attempts = attempts + 1
             WHERE task_id = ? AND id = ?",
        )
        .bind(error)
        .bind(entry)
        .bind(task)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err("changing a dead letter"))
        .map(|_| ())
    }

    /// The stored entries (JSON) of `ids`, for a replay.
    pub async fn dead_letter_entries(
        &self,
        task: i64,
        ids: &[i64],
    ) -> StoreResult<Vec<(i64, String)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, e)) = self.dead_letter(task, *id).await? {
                out.push((*id, e));
            }
        }
        Ok(out)
    }

    /// Deletes replayed and discarded dead letters decided before `cutoff_us`; `new` ones
    /// stay until someone decides. How many went.
    pub async fn prune_dead_letters(&self, cutoff_us: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM dead_letters WHERE state <> 'new' AND state_us < ?")
            .bind(cutoff_us)
            .execute(&self.pool)
            .await
            .map_err(err("removing old dead letters"))
            .map(|r| r.rows_affected())
    }
}

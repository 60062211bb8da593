//! [`SqliteStore`]: the metadata store in `<data-dir>/metadata.sqlite` (the default).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::store::{
    now, DataSourceRow, LogRow, MetadataStore, StoreError, StoreResult, TaskRow, UnitRow,
};

trait Ctx<T> {
    fn ctx(self, what: &str) -> StoreResult<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, what: &str) -> StoreResult<T> {
        self.map_err(|e| StoreError {
            context: what.to_owned(),
            conflict: matches!(
                &e,
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation
            ),
            message: e.to_string(),
        })
    }
}

/// The schema, one entry per version, applied in order.
const MIGRATIONS: &[&str] = &[
    // 1: everything.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE datasources (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        url TEXT NOT NULL,
        username TEXT,
        options TEXT NOT NULL DEFAULT '{}',
        password_enc TEXT,
        api_key_enc TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL);
     CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'idle',
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT);
     CREATE TABLE task_units (
        task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        unit TEXT NOT NULL,
        target TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        read INTEGER NOT NULL DEFAULT 0,
        written INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        estimated_total INTEGER,
        checkpoint TEXT,
        error TEXT,
        started_at TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (task_id, unit));
     CREATE TABLE logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id INTEGER,
        category TEXT NOT NULL,
        level TEXT NOT NULL,
        unit TEXT,
        message TEXT NOT NULL,
        ts TEXT NOT NULL);
     CREATE INDEX logs_task ON logs (task_id, id);",
];

/// The SQLite metadata store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating) `<dir>/metadata.sqlite` and applies the migrations.
    pub fn open(dir: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(dir.join("metadata.sqlite")).ctx("opening")?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )
        .ctx("preparing")?;
        let current: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
            .ctx("reading the schema version")?;
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version > current {
                let what = format!("migration {version}");
                conn.execute_batch(&format!(
                    "BEGIN; {sql}; INSERT INTO schema_version VALUES ({version}); COMMIT;"
                ))
                .ctx(&what)?;
            }
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
        what: &str,
    ) -> StoreResult<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).ctx(what)
    }
}

impl MetadataStore for SqliteStore {
    /// The schema version after migrations.
    fn schema_version(&self) -> StoreResult<i64> {
        self.with(
            |c| c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)),
            "reading the schema version",
        )
    }

    /// A `meta` value.
    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(
            |c| {
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()
            },
            "reading meta",
        )
    }

    /// Sets a `meta` value.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.with(
            |c| {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )
            },
            "writing meta",
        )
        .map(|_| ())
    }

    // ---- data sources ----

    /// Every data source, by id.
    fn datasources(&self) -> StoreResult<Vec<DataSourceRow>> {
        self.with(
            |c| {
                let mut st = c.prepare(&format!("{DS_SELECT} ORDER BY id"))?;
                let rows = st.query_map([], ds_row)?.collect();
                rows
            },
            "listing data sources",
        )
    }

    /// One data source.
    fn datasource(&self, id: i64) -> StoreResult<Option<DataSourceRow>> {
        self.with(
            |c| {
                c.query_row(&format!("{DS_SELECT} WHERE id = ?1"), [id], ds_row)
                    .optional()
            },
            "reading a data source",
        )
    }

    /// Inserts (`id` 0) or updates a data source; returns its id.
    fn save_datasource(&self, d: &DataSourceRow) -> StoreResult<i64> {
        let options = d.options.to_string();
        let ts = now();
        self.with(
            |c| {
                if d.id == 0 {
                    c.execute(
                        "INSERT INTO datasources (name, kind, url, username, options, password_enc,
                           api_key_enc, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                        params![
                            d.name,
                            d.kind,
                            d.url,
                            d.username,
                            options,
                            d.password_enc,
                            d.api_key_enc,
                            ts
                        ],
                    )?;
                    Ok(c.last_insert_rowid())
                } else {
                    c.execute(
                        "UPDATE datasources SET name = ?2, kind = ?3, url = ?4, username = ?5,
                           options = ?6, password_enc = ?7, api_key_enc = ?8, updated_at = ?9
                         WHERE id = ?1",
                        params![
                            d.id,
                            d.name,
                            d.kind,
                            d.url,
                            d.username,
                            options,
                            d.password_enc,
                            d.api_key_enc,
                            ts
                        ],
                    )?;
                    Ok(d.id)
                }
            },
            "saving a data source",
        )
    }

    /// Deletes a data source; whether it existed.
    fn delete_datasource(&self, id: i64) -> StoreResult<bool> {
        self.with(
            |c| c.execute("DELETE FROM datasources WHERE id = ?1", [id]),
            "deleting a data source",
        )
        .map(|n| n > 0)
    }

    // ---- tasks ----

    /// Every task, by id.
    fn tasks(&self) -> StoreResult<Vec<TaskRow>> {
        self.with(
            |c| {
                let mut st = c.prepare(&format!("{TASK_SELECT} ORDER BY id"))?;
                let rows = st.query_map([], task_row)?.collect();
                rows
            },
            "listing tasks",
        )
    }

    /// One task.
    fn task(&self, id: i64) -> StoreResult<Option<TaskRow>> {
        self.with(
            |c| {
                c.query_row(&format!("{TASK_SELECT} WHERE id = ?1"), [id], task_row)
                    .optional()
            },
            "reading a task",
        )
    }

    /// Inserts (`id` 0) or updates a task's name and configuration; returns its id.
    fn save_task(&self, id: i64, name: &str, config: &serde_json::Value) -> StoreResult<i64> {
        let ts = now();
        let config = config.to_string();
        self.with(
            |c| {
                if id == 0 {
                    c.execute(
                        "INSERT INTO tasks (name, config, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?3)",
                        params![name, config, ts],
                    )?;
                    Ok(c.last_insert_rowid())
                } else {
                    c.execute(
                        "UPDATE tasks SET name = ?2, config = ?3, updated_at = ?4 WHERE id = ?1",
                        params![id, name, config, ts],
                    )?;
                    Ok(id)
                }
            },
            "saving a task",
        )
    }

    /// Sets a task's status (and error); `started`/`finished` stamp the times.
    fn set_task_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        started: bool,
        finished: bool,
    ) -> StoreResult<()> {
        let ts = now();
        self.with(
            |c| {
                c.execute(
                    "UPDATE tasks SET status = ?2, error = ?3, updated_at = ?4,
                       started_at = CASE WHEN ?5 THEN ?4 ELSE started_at END,
                       finished_at = CASE WHEN ?6 THEN ?4 WHEN ?5 THEN NULL ELSE finished_at END
                     WHERE id = ?1",
                    params![id, status, error, ts, started, finished],
                )
            },
            "setting a task's status",
        )
        .map(|_| ())
    }

    /// Deletes a task with its units and logs; whether it existed.
    fn delete_task(&self, id: i64) -> StoreResult<bool> {
        self.with(
            |c| {
                c.execute("DELETE FROM task_units WHERE task_id = ?1", [id])?;
                c.execute("DELETE FROM logs WHERE task_id = ?1", [id])?;
                c.execute("DELETE FROM tasks WHERE id = ?1", [id])
            },
            "deleting a task",
        )
        .map(|n| n > 0)
    }

    // ---- units ----

    /// The units of a task, in the order they were planned.
    fn units(&self, task: i64) -> StoreResult<Vec<UnitRow>> {
        self.with(
            |c| {
                let mut st = c.prepare(
                    "SELECT unit, target, state, read, written, rejected, estimated_total, error,
                       started_at, updated_at FROM task_units WHERE task_id = ?1 ORDER BY rowid",
                )?;
                let rows = st
                    .query_map([task], |r| {
                        Ok(UnitRow {
                            unit: r.get(0)?,
                            target: r.get(1)?,
                            state: r.get(2)?,
                            read: r.get::<_, i64>(3)? as u64,
                            written: r.get::<_, i64>(4)? as u64,
                            rejected: r.get::<_, i64>(5)? as u64,
                            estimated_total: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
                            error: r.get(7)?,
                            started_at: r.get(8)?,
                            updated_at: r.get(9)?,
                        })
                    })?
                    .collect();
                rows
            },
            "listing units",
        )
    }

    /// Records the planned units of a task (keeping the state of units already known,
    /// forgetting units no longer planned).
    fn plan_units(&self, task: i64, units: &[(String, String, Option<u64>)]) -> StoreResult<()> {
        let ts = now();
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().ctx("planning units")?;
        {
            let names: Vec<&str> = units.iter().map(|u| u.0.as_str()).collect();
            let mut st = tx
                .prepare("SELECT unit FROM task_units WHERE task_id = ?1")
                .ctx("planning units")?;
            let known: Vec<String> = st
                .query_map([task], |r| r.get(0))
                .ctx("planning units")?
                .collect::<rusqlite::Result<_>>()
                .ctx("planning units")?;
            for k in known.iter().filter(|k| !names.contains(&k.as_str())) {
                tx.execute(
                    "DELETE FROM task_units WHERE task_id = ?1 AND unit = ?2",
                    params![task, k],
                )
                .ctx("planning units")?;
            }
            for (unit, target, est) in units {
                tx.execute(
                    "INSERT INTO task_units (task_id, unit, target, estimated_total, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(task_id, unit) DO UPDATE SET target = excluded.target,
                       estimated_total = excluded.estimated_total",
                    params![task, unit, target, est.map(|n| n as i64), ts],
                )
                .ctx("planning units")?;
            }
        }
        tx.commit().ctx("planning units")
    }

    /// Updates a unit's state and counters.
    fn update_unit(&self, task: i64, u: &UnitRow, starting: bool) -> StoreResult<()> {
        let ts = now();
        self.with(
            |c| {
                c.execute(
                    "UPDATE task_units SET state = ?3, read = ?4, written = ?5, rejected = ?6,
                       estimated_total = COALESCE(?7, estimated_total), error = ?8, updated_at = ?9,
                       started_at = CASE WHEN ?10 THEN ?9 ELSE started_at END
                     WHERE task_id = ?1 AND unit = ?2",
                    params![
                        task,
                        u.unit,
                        u.state,
                        u.read as i64,
                        u.written as i64,
                        u.rejected as i64,
                        u.estimated_total.map(|n| n as i64),
                        u.error,
                        ts,
                        starting
                    ],
                )
            },
            "updating a unit",
        )
        .map(|_| ())
    }

    /// A unit's checkpoint (JSON).
    fn checkpoint(&self, task: i64, unit: &str) -> StoreResult<Option<String>> {
        self.with(
            |c| {
                c.query_row(
                    "SELECT checkpoint FROM task_units WHERE task_id = ?1 AND unit = ?2",
                    params![task, unit],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
                .map(Option::flatten)
            },
            "loading a checkpoint",
        )
    }

    /// Every checkpoint of a task.
    fn checkpoints(&self, task: i64) -> StoreResult<Vec<(String, String)>> {
        self.with(
            |c| {
                let mut st = c.prepare(
                    "SELECT unit, checkpoint FROM task_units
                     WHERE task_id = ?1 AND checkpoint IS NOT NULL ORDER BY unit",
                )?;
                let rows = st
                    .query_map([task], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect();
                rows
            },
            "listing checkpoints",
        )
    }

    /// Saves (or with `None` clears) a unit's checkpoint, with its state, written count and
    /// error; the row is created when missing.
    fn save_checkpoint(
        &self,
        task: i64,
        unit: &str,
        checkpoint: Option<(&str, &str, u64, Option<&str>)>,
    ) -> StoreResult<()> {
        let ts = now();
        self.with(
            |c| match checkpoint {
                Some((json, state, written, error)) => c.execute(
                    "INSERT INTO task_units (task_id, unit, state, written, checkpoint, error, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(task_id, unit) DO UPDATE SET checkpoint = excluded.checkpoint,
                       state = excluded.state, written = MAX(written, excluded.written),
                       error = excluded.error, updated_at = excluded.updated_at",
                    params![task, unit, state, written as i64, json, error, ts],
                ),
                None => c.execute(
                    "UPDATE task_units SET checkpoint = NULL, state = 'pending', read = 0,
                       written = 0, rejected = 0, error = NULL, updated_at = ?3
                     WHERE task_id = ?1 AND unit = ?2",
                    params![task, unit, ts],
                ),
            },
            "saving a checkpoint",
        )
        .map(|_| ())
    }

    // ---- logs ----

    /// Appends a log line; returns it.
    fn add_log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) -> StoreResult<LogRow> {
        let ts = now();
        let id = self.with(
            |c| {
                c.execute(
                    "INSERT INTO logs (task_id, category, level, unit, message, ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![task, category, level, unit, message, ts],
                )?;
                Ok(c.last_insert_rowid())
            },
            "writing a log line",
        )?;
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

    /// Log lines, newest first: of a task (or the server's, `None`), of a category (`None`:
    /// all), with ids below `before`, at most `limit`.
    fn logs(
        &self,
        task: Option<i64>,
        category: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LogRow>> {
        self.with(
            |c| {
                let mut st = c.prepare(
                    "SELECT id, task_id, category, level, unit, message, ts FROM logs
                     WHERE ((?1 IS NULL AND task_id IS NULL) OR task_id = ?1)
                       AND (?2 IS NULL OR category = ?2) AND (?3 IS NULL OR id < ?3)
                     ORDER BY id DESC LIMIT ?4",
                )?;
                let rows = st
                    .query_map(params![task, category, before, limit], |r| {
                        Ok(LogRow {
                            id: r.get(0)?,
                            task_id: r.get(1)?,
                            category: r.get(2)?,
                            level: r.get(3)?,
                            unit: r.get(4)?,
                            message: r.get(5)?,
                            ts: r.get(6)?,
                        })
                    })?
                    .collect();
                rows
            },
            "reading logs",
        )
    }
}

const DS_SELECT: &str = "SELECT id, name, kind, url, username, options, password_enc, api_key_enc,
    created_at, updated_at FROM datasources";

fn ds_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataSourceRow> {
    let options: String = r.get(5)?;
    Ok(DataSourceRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        url: r.get(3)?,
        username: r.get(4)?,
        options: serde_json::from_str(&options).unwrap_or_else(|_| serde_json::json!({})),
        password_enc: r.get(6)?,
        api_key_enc: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

const TASK_SELECT: &str = "SELECT id, name, config, status, error, created_at, updated_at,
    started_at, finished_at FROM tasks";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    let config: String = r.get(2)?;
    Ok(TaskRow {
        id: r.get(0)?,
        name: r.get(1)?,
        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
        status: r.get(3)?,
        error: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
    })
}

//! [`MySqlStore`]: the metadata store in a MySQL / MariaDB database (`--metadata-url
//! mysql://user@host:3306/db`, password from `DATATRACE_METADATA_PASSWORD`), for teams that
//! keep it on a shared server. The same tables and migrations as SQLite, in MySQL's dialect.
//!
//! Calls are synchronous like SQLite's: each runs on the store's own small runtime and the
//! caller waits for the round trip.

use std::future::Future;

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Pool, Row, Value as My};

use super::store::{
    now, DataSourceRow, LogRow, MetadataStore, StoreError, StoreResult, TaskRow, UnitRow,
};

/// The environment variable holding the metadata database's password.
pub const PASSWORD_ENV: &str = "DATATRACE_METADATA_PASSWORD";

/// The schema, one list of statements per version, applied in order.
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE meta (k VARCHAR(191) PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE datasources (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(191) NOT NULL UNIQUE,
       kind VARCHAR(32) NOT NULL, url TEXT NOT NULL, username TEXT, options TEXT NOT NULL,
       password_enc TEXT, api_key_enc TEXT, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL)",
    "CREATE TABLE tasks (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(191) NOT NULL UNIQUE,
       config MEDIUMTEXT NOT NULL, status VARCHAR(16) NOT NULL DEFAULT 'idle', error TEXT,
       created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL, started_at VARCHAR(40),
       finished_at VARCHAR(40))",
    "CREATE TABLE task_units (seq BIGINT AUTO_INCREMENT PRIMARY KEY, task_id BIGINT NOT NULL,
       unit VARCHAR(191) NOT NULL, target TEXT, state VARCHAR(16) NOT NULL DEFAULT 'pending',
       `read` BIGINT NOT NULL DEFAULT 0, written BIGINT NOT NULL DEFAULT 0,
       rejected BIGINT NOT NULL DEFAULT 0, estimated_total BIGINT, checkpoint MEDIUMTEXT,
       error TEXT, started_at VARCHAR(40), updated_at VARCHAR(40) NOT NULL,
       UNIQUE KEY task_unit (task_id, unit))",
    "CREATE TABLE logs (id BIGINT AUTO_INCREMENT PRIMARY KEY, task_id BIGINT,
       category VARCHAR(16) NOT NULL, level VARCHAR(8) NOT NULL, unit VARCHAR(191),
       message TEXT NOT NULL, ts VARCHAR(40) NOT NULL, KEY logs_task (task_id, id))",
]];

macro_rules! p {
    ($($v:expr),* $(,)?) => { Params::Positional(vec![$(My::from($v)),*]) };
}

/// The MySQL metadata store.
pub struct MySqlStore {
    pool: Pool,
    rt: &'static tokio::runtime::Runtime,
}

fn err(what: &str, e: mysql_async::Error) -> StoreError {
    let conflict = matches!(&e, mysql_async::Error::Server(s) if s.code == 1062);
    StoreError {
        context: what.to_owned(),
        message: e.to_string(),
        conflict,
    }
}

impl MySqlStore {
    /// Connects to `url` (password from [`PASSWORD_ENV`] when set) and applies the
    /// migrations.
    pub fn open(url: &str) -> StoreResult<MySqlStore> {
        let setup = |m: String| StoreError {
            context: "connecting".into(),
            message: m,
            conflict: false,
        };
        let mut opts = mysql_async::OptsBuilder::from_opts(
            mysql_async::Opts::from_url(url).map_err(|e| setup(e.to_string()))?,
        );
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            opts = opts.pass(Some(p));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("datatrace-metadata")
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        // The store lives as long as the server.
        let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
        let store = MySqlStore {
            pool: Pool::new(opts),
            rt,
        };
        store.call("preparing", |pool| async move {
            let mut c = pool.get_conn().await?;
            c.query_drop("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")
                .await?;
            let current: Option<i64> = c
                .query_first("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                .await?;
            let current = current.unwrap_or(0);
            for (i, stmts) in MIGRATIONS.iter().enumerate() {
                let version = i as i64 + 1;
                if version > current {
                    for s in stmts.iter() {
                        c.query_drop(*s).await?;
                    }
                    c.exec_drop("INSERT INTO schema_version VALUES (?)", (version,))
                        .await?;
                }
            }
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` on the store's runtime and waits for it.
    fn call<T, F, Fut>(&self, what: &str, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = mysql_async::Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(f(pool).await);
        });
        match rx.recv() {
            Ok(r) => r.map_err(|e| err(what, e)),
            Err(_) => Err(StoreError {
                context: what.to_owned(),
                message: "the metadata runtime stopped".into(),
                conflict: false,
            }),
        }
    }

    fn rows(&self, what: &str, sql: &'static str, params: Params) -> StoreResult<Vec<Row>> {
        self.call(what, move |pool| async move {
            let mut c = pool.get_conn().await?;
            c.exec(sql, params).await
        })
    }

    fn exec(&self, what: &str, sql: &'static str, params: Params) -> StoreResult<(u64, u64)> {
        self.call(what, move |pool| async move {
            let mut c = pool.get_conn().await?;
            c.exec_drop(sql, params).await?;
            Ok((c.affected_rows(), c.last_insert_id().unwrap_or(0)))
        })
    }
}

fn opt_s(r: &Row, i: usize) -> Option<String> {
    r.get_opt::<Option<String>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

fn s(r: &Row, i: usize) -> String {
    opt_s(r, i).unwrap_or_default()
}

fn opt_i(r: &Row, i: usize) -> Option<i64> {
    r.get_opt::<Option<i64>, usize>(i)
        .and_then(Result::ok)
        .flatten()
}

fn ds_row(r: &Row) -> DataSourceRow {
    DataSourceRow {
        id: opt_i(r, 0).unwrap_or(0),
        name: s(r, 1),
        kind: s(r, 2),
        url: s(r, 3),
        username: opt_s(r, 4),
        options: serde_json::from_str(&s(r, 5)).unwrap_or_else(|_| serde_json::json!({})),
        password_enc: opt_s(r, 6),
        api_key_enc: opt_s(r, 7),
        created_at: s(r, 8),
        updated_at: s(r, 9),
    }
}

fn task_row(r: &Row) -> TaskRow {
    TaskRow {
        id: opt_i(r, 0).unwrap_or(0),
        name: s(r, 1),
        config: serde_json::from_str(&s(r, 2)).unwrap_or(serde_json::Value::Null),
        status: s(r, 3),
        error: opt_s(r, 4),
        created_at: s(r, 5),
        updated_at: s(r, 6),
        started_at: opt_s(r, 7),
        finished_at: opt_s(r, 8),
    }
}

fn log_row(r: &Row) -> LogRow {
    LogRow {
        id: opt_i(r, 0).unwrap_or(0),
        task_id: opt_i(r, 1),
        category: s(r, 2),
        level: s(r, 3),
        unit: opt_s(r, 4),
        message: s(r, 5),
        ts: s(r, 6),
    }
}

impl MetadataStore for MySqlStore {
    fn schema_version(&self) -> StoreResult<i64> {
        let rows = self.rows(
            "reading the schema version",
            "SELECT MAX(version) FROM schema_version",
            p![],
        )?;
        Ok(rows.first().and_then(|r| opt_i(r, 0)).unwrap_or(0))
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let rows = self.rows(
            "reading meta",
            "SELECT value FROM meta WHERE k = ?",
            p![key],
        )?;
        Ok(rows.first().and_then(|r| opt_s(r, 0)))
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.exec(
            "writing meta",
            "INSERT INTO meta (k, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
            p![key, value],
        )
        .map(|_| ())
    }

    fn datasources(&self) -> StoreResult<Vec<DataSourceRow>> {
        let rows = self.rows("listing data sources", DS_ORDERED, p![])?;
        Ok(rows.iter().map(ds_row).collect())
    }

    fn datasource(&self, id: i64) -> StoreResult<Option<DataSourceRow>> {
        let rows = self.rows("reading a data source", DS_BY_ID, p![id])?;
        Ok(rows.first().map(ds_row))
    }

    fn save_datasource(&self, d: &DataSourceRow) -> StoreResult<i64> {
        let ts = now();
        let options = d.options.to_string();
        if d.id == 0 {
            let (_, id) = self.exec(
                "saving a data source",
                "INSERT INTO datasources (name, kind, url, username, options, password_enc, api_key_enc, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                p![d.name.as_str(), d.kind.as_str(), d.url.as_str(), d.username.clone(), options,
                   d.password_enc.clone(), d.api_key_enc.clone(), ts.as_str(), ts.as_str()],
            )?;
            Ok(id as i64)
        } else {
            self.exec(
                "saving a data source",
                "UPDATE datasources SET name = ?, kind = ?, url = ?, username = ?, options = ?,
                   password_enc = ?, api_key_enc = ?, updated_at = ? WHERE id = ?",
                p![
                    d.name.as_str(),
                    d.kind.as_str(),
                    d.url.as_str(),
                    d.username.clone(),
                    options,
                    d.password_enc.clone(),
                    d.api_key_enc.clone(),
                    ts.as_str(),
                    d.id
                ],
            )?;
            Ok(d.id)
        }
    }

    fn delete_datasource(&self, id: i64) -> StoreResult<bool> {
        let (n, _) = self.exec(
            "deleting a data source",
            "DELETE FROM datasources WHERE id = ?",
            p![id],
        )?;
        Ok(n > 0)
    }

    fn tasks(&self) -> StoreResult<Vec<TaskRow>> {
        let rows = self.rows("listing tasks", TASK_ORDERED, p![])?;
        Ok(rows.iter().map(task_row).collect())
    }

    fn task(&self, id: i64) -> StoreResult<Option<TaskRow>> {
        let rows = self.rows("reading a task", TASK_BY_ID, p![id])?;
        Ok(rows.first().map(task_row))
    }

    fn save_task(&self, id: i64, name: &str, config: &serde_json::Value) -> StoreResult<i64> {
        let ts = now();
        let config = config.to_string();
        if id == 0 {
            let (_, id) = self.exec(
                "saving a task",
                "INSERT INTO tasks (name, config, created_at, updated_at) VALUES (?, ?, ?, ?)",
                p![name, config, ts.as_str(), ts.as_str()],
            )?;
            Ok(id as i64)
        } else {
            self.exec(
                "saving a task",
                "UPDATE tasks SET name = ?, config = ?, updated_at = ? WHERE id = ?",
                p![name, config, ts, id],
            )?;
            Ok(id)
        }
    }

    fn set_task_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        started: bool,
        finished: bool,
    ) -> StoreResult<()> {
        let ts = now();
        self.exec(
            "setting a task's status",
            "UPDATE tasks SET status = ?, error = ?, updated_at = ?,
               started_at = CASE WHEN ? THEN ? ELSE started_at END,
               finished_at = CASE WHEN ? THEN ? WHEN ? THEN NULL ELSE finished_at END
             WHERE id = ?",
            p![
                status,
                error,
                ts.as_str(),
                started,
                ts.as_str(),
                finished,
                ts.as_str(),
                started,
                id
            ],
        )
        .map(|_| ())
    }

    fn delete_task(&self, id: i64) -> StoreResult<bool> {
        self.exec(
            "deleting a task",
            "DELETE FROM task_units WHERE task_id = ?",
            p![id],
        )?;
        self.exec(
            "deleting a task",
            "DELETE FROM logs WHERE task_id = ?",
            p![id],
        )?;
        let (n, _) = self.exec("deleting a task", "DELETE FROM tasks WHERE id = ?", p![id])?;
        Ok(n > 0)
    }

    fn units(&self, task: i64) -> StoreResult<Vec<UnitRow>> {
        let rows = self.rows(
            "listing units",
            "SELECT unit, target, state, `read`, written, rejected, estimated_total, error, started_at, updated_at
             FROM task_units WHERE task_id = ? ORDER BY seq",
            p![task],
        )?;
        Ok(rows
            .iter()
            .map(|r| UnitRow {
                unit: s(r, 0),
                target: opt_s(r, 1),
                state: s(r, 2),
                read: opt_i(r, 3).unwrap_or(0) as u64,
                written: opt_i(r, 4).unwrap_or(0) as u64,
                rejected: opt_i(r, 5).unwrap_or(0) as u64,
                estimated_total: opt_i(r, 6).map(|n| n as u64),
                error: opt_s(r, 7),
                started_at: opt_s(r, 8),
                updated_at: s(r, 9),
            })
            .collect())
    }

    fn plan_units(&self, task: i64, units: &[(String, String, Option<u64>)]) -> StoreResult<()> {
        let known = self.units(task)?;
        for k in known
            .iter()
            .filter(|k| !units.iter().any(|u| u.0 == k.unit))
        {
            self.exec(
                "planning units",
                "DELETE FROM task_units WHERE task_id = ? AND unit = ?",
                p![task, k.unit.as_str()],
            )?;
        }
        let ts = now();
        for (unit, target, est) in units {
            self.exec(
                "planning units",
                "INSERT INTO task_units (task_id, unit, target, estimated_total, updated_at) VALUES (?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE target = VALUES(target), estimated_total = VALUES(estimated_total)",
                p![task, unit.as_str(), target.as_str(), est.map(|n| n as i64), ts.as_str()],
            )?;
        }
        Ok(())
    }

    fn update_unit(&self, task: i64, u: &UnitRow, starting: bool) -> StoreResult<()> {
        let ts = now();
        self.exec(
            "updating a unit",
            "UPDATE task_units SET state = ?, `read` = ?, written = ?, rejected = ?,
               estimated_total = COALESCE(?, estimated_total), error = ?, updated_at = ?,
               started_at = CASE WHEN ? THEN ? ELSE started_at END
             WHERE task_id = ? AND unit = ?",
            p![
                u.state.as_str(),
                u.read as i64,
                u.written as i64,
                u.rejected as i64,
                u.estimated_total.map(|n| n as i64),
                u.error.clone(),
                ts.as_str(),
                starting,
                ts.as_str(),
                task,
                u.unit.as_str()
            ],
        )
        .map(|_| ())
    }

    fn checkpoint(&self, task: i64, unit: &str) -> StoreResult<Option<String>> {
        let rows = self.rows(
            "loading a checkpoint",
            "SELECT checkpoint FROM task_units WHERE task_id = ? AND unit = ?",
            p![task, unit],
        )?;
        Ok(rows.first().and_then(|r| opt_s(r, 0)))
    }

    fn checkpoints(&self, task: i64) -> StoreResult<Vec<(String, String)>> {
        let rows = self.rows(
            "listing checkpoints",
            "SELECT unit, checkpoint FROM task_units WHERE task_id = ? AND checkpoint IS NOT NULL ORDER BY unit",
            p![task],
        )?;
        Ok(rows.iter().map(|r| (s(r, 0), s(r, 1))).collect())
    }

    fn save_checkpoint(
        &self,
        task: i64,
        unit: &str,
        checkpoint: Option<(&str, &str, u64, Option<&str>)>,
    ) -> StoreResult<()> {
        let ts = now();
        match checkpoint {
            Some((json, state, written, error)) => self.exec(
                "saving a checkpoint",
                "INSERT INTO task_units (task_id, unit, state, written, checkpoint, error, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE checkpoint = VALUES(checkpoint), state = VALUES(state),
                   written = GREATEST(written, VALUES(written)), error = VALUES(error),
                   updated_at = VALUES(updated_at)",
                p![task, unit, state, written as i64, json, error, ts],
            ),
            None => self.exec(
                "saving a checkpoint",
                "UPDATE task_units SET checkpoint = NULL, state = 'pending', `read` = 0, written = 0,
                   rejected = 0, error = NULL, updated_at = ? WHERE task_id = ? AND unit = ?",
                p![ts, task, unit],
            ),
        }
        .map(|_| ())
    }

    fn add_log(
        &self,
        task: Option<i64>,
        category: &str,
        level: &str,
        unit: Option<&str>,
        message: &str,
    ) -> StoreResult<LogRow> {
        let ts = now();
        let (_, id) = self.exec(
            "writing a log line",
            "INSERT INTO logs (task_id, category, level, unit, message, ts) VALUES (?, ?, ?, ?, ?, ?)",
            p![task, category, level, unit, message, ts.as_str()],
        )?;
        Ok(LogRow {
            id: id as i64,
            task_id: task,
            category: category.to_owned(),
            level: level.to_owned(),
            unit: unit.map(str::to_owned),
            message: message.to_owned(),
            ts,
        })
    }

    fn logs(
        &self,
        task: Option<i64>,
        category: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LogRow>> {
        let rows = self.rows(
            "reading logs",
            "SELECT id, task_id, category, level, unit, message, ts FROM logs
             WHERE ((? IS NULL AND task_id IS NULL) OR task_id = ?)
               AND (? IS NULL OR category = ?) AND (? IS NULL OR id < ?)
             ORDER BY id DESC LIMIT ?",
            p![task, task, category, category, before, before, limit],
        )?;
        Ok(rows.iter().map(log_row).collect())
    }
}

const DS_ORDERED: &str = "SELECT id, name, kind, url, username, options, password_enc, api_key_enc, created_at, updated_at FROM datasources ORDER BY id";
const DS_BY_ID: &str = "SELECT id, name, kind, url, username, options, password_enc, api_key_enc, created_at, updated_at FROM datasources WHERE id = ?";
const TASK_ORDERED: &str = "SELECT id, name, config, status, error, created_at, updated_at, started_at, finished_at FROM tasks ORDER BY id";
const TASK_BY_ID: &str = "SELECT id, name, config, status, error, created_at, updated_at, started_at, finished_at FROM tasks WHERE id = ?";

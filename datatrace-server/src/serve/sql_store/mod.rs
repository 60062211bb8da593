//! [`SqlStore`]: the metadata store, asynchronous, over one `sqlx` pool of either backend:
//! SQLite in `<data-dir>/metadata.sqlite` (the default) or a shared MySQL / MariaDB
//! database (`--metadata-url mysql://user@host:3306/db`, password from
//! [`PASSWORD_ENV`]). The same statements run on both (the schema is one definition, see
//! [`super::schema`]); no call blocks a thread of the runtime.

pub mod accounts;
pub mod alerts;
pub mod dead_letters;
mod logs;
pub mod runs;
pub mod schedules;
mod units;

use std::path::Path;

pub use accounts::{AuditFilter, AuditRow, TokenRow, UserRow};
pub use runs::{DriftRow, RunEnd, RunFilter, RunRow};
pub use schedules::ScheduleRow;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use super::schema::{Dialect, Set, MIGRATIONS, SQLITE_V1_ADOPTION};
use super::store::{now, DataSourceRow, StoreError, StoreResult, TaskRow};

/// The environment variable holding the metadata database's password.
pub const PASSWORD_ENV: &str = "DATATRACE_METADATA_PASSWORD";

/// Statements that differ between the dialects, rendered once.
struct Statements {
    set_meta: String,
    plan_unit: String,
    save_checkpoint: String,
}

impl Statements {
    fn new(d: Dialect) -> Statements {
        Statements {
            set_meta: d.upsert("meta", &["k", "value"], "k", &[Set::New("value")]),
            plan_unit: d.upsert(
                "task_units",
                &["task_id", "unit", "target", "estimated_total", "updated_at"],
                "task_id, unit",
                &[Set::New("target"), Set::New("estimated_total")],
            ),
            save_checkpoint: d.upsert(
                "task_units",
                &[
                    "task_id",
                    "unit",
                    "state",
                    "written",
                    "checkpoint",
                    "error",
                    "updated_at",
                ],
                "task_id, unit",
                &[
                    Set::New("checkpoint"),
                    Set::New("state"),
                    Set::Max("written"),
                    Set::New("error"),
                    Set::New("updated_at"),
                ],
            ),
        }
    }
}

/// The store the server uses (shared).
pub type Store = std::sync::Arc<SqlStore>;

/// The metadata store; share it as [`Store`].
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    sql: Statements,
}

fn err(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| {
        let conflict = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
        StoreError {
            context: what.to_owned(),
            message: e.to_string(),
            conflict,
        }
    }
}

/// Reads a row of one table into its typed form.
type RowMapper<T> = fn(&AnyRow) -> Result<T, sqlx::Error>;

impl SqlStore {
    /// Every row of `select` (a `SELECT .. FROM table` without a condition), by id.
    async fn rows_by_id<T>(
        &self,
        select: &str,
        map: RowMapper<T>,
        what: &str,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(&format!("{select} ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(err(what))?;
        rows.iter()
            .map(map)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// The row of `select` with this `id`, if there is one.
    async fn row_by_id<T>(
        &self,
        select: &str,
        id: i64,
        map: RowMapper<T>,
        what: &str,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(&format!("{select} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err(what))?;
        row.as_ref().map(map).transpose().map_err(err(what))
    }

    /// Deletes the row of `table` with this `id`; whether it existed.
    async fn delete_by_id(&self, table: &str, id: i64, what: &str) -> StoreResult<bool> {
        sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(err(what))
            .map(|r| r.rows_affected() > 0)
    }
}

fn setup(context: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError {
        context: context.to_owned(),
        message: message.to_string(),
        conflict: false,
    }
}

/// A text column: MySQL's `TEXT` types reach `sqlx`'s `Any` rows as bytes.
fn opt_s(r: &AnyRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    match r.try_get::<Option<String>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => r
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose(),
    }
}

fn s(r: &AnyRow, i: usize) -> Result<String, sqlx::Error> {
    Ok(opt_s(r, i)?.unwrap_or_default())
}

/// An integer column of any width.
fn opt_i(r: &AnyRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
    match r.try_get::<Option<i64>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => Ok(r.try_get::<Option<i32>, _>(i)?.map(i64::from)),
    }
}

fn n(r: &AnyRow, i: usize) -> Result<u64, sqlx::Error> {
    Ok(opt_i(r, i)?.unwrap_or(0).max(0) as u64)
}

/// A count as the store keeps it (saturating: counters never go past `i64::MAX`).
fn db_n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// Opens (creating) `<dir>/metadata.sqlite` (a `0600` file) and applies the
    /// migrations.
    pub async fn open_sqlite(dir: &Path) -> StoreResult<SqlStore> {
        let file = dir.join("metadata.sqlite");
        super::private::private_file(&file)
            .map_err(|e| setup(&format!("opening {}", file.display()), e))?;
        let path = file.to_string_lossy();
        let mut url = String::from("sqlite://");
        for c in path.chars() {
            match c {
                '%' => url.push_str("%25"),
                '?' => url.push_str("%3F"),
                '#' => url.push_str("%23"),
                c => url.push(c),
            }
        }
        url.push_str("?mode=rwc");
        sqlx::any::install_default_drivers();
        // One connection: SQLite has one writer, and waiting for it here (asynchronously)
        // is better than its busy errors.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    for p in [
                        "PRAGMA journal_mode=WAL",
                        "PRAGMA synchronous=NORMAL",
                        "PRAGMA foreign_keys=ON",
                        "PRAGMA busy_timeout=5000",
                    ] {
                        sqlx::query(p).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| setup(&format!("opening {}", file.display()), e))?;
        Self::migrated(pool, Dialect::Sqlite).await
    }

    /// Connects to `url` (`mysql://user@host:3306/db`; the password from [`PASSWORD_ENV`]
    /// when set) and applies the migrations.
    pub async fn open_mysql(url: &str) -> StoreResult<SqlStore> {
        let mut parsed = url::Url::parse(url).map_err(|e| setup("connecting", e))?;
        if parsed.scheme() != "mysql" {
            return Err(setup(
                "connecting",
                "expected mysql://user@host:3306/database",
            ));
        }
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            parsed
                .set_password(Some(&p))
                .map_err(|_| setup("connecting", "the URL cannot carry a password"))?;
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(parsed.as_str())
            .await
            .map_err(|e| setup("connecting", e))?;
        Self::migrated(pool, Dialect::MySql).await
    }

    async fn migrated(pool: AnyPool, dialect: Dialect) -> StoreResult<SqlStore> {
        let store = SqlStore {
            pool,
            dialect,
            sql: Statements::new(dialect),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations not yet recorded in `schema_version`, each in order.
    async fn migrate(&self) -> StoreResult<()> {
        let what = "preparing the schema";
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
        let current = self.schema_version().await?;
        if current == 1 && self.dialect == Dialect::Sqlite && self.is_legacy_sqlite().await? {
            self.run_all(SQLITE_V1_ADOPTION, "adopting the shared schema")
                .await?;
        }
        for (i, stmts) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version > current {
                let what = format!("migration {version}");
                let mut all: Vec<&str> = stmts.to_vec();
                let record = format!("INSERT INTO schema_version (version) VALUES ({version})");
                all.push(&record);
                self.run_all(&all, &what).await?;
            }
        }
        Ok(())
    }

    /// Runs statements in one transaction (SQLite's DDL is transactional; MySQL commits
    /// each DDL statement by itself).
    async fn run_all(&self, stmts: &[&str], what: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        for s in stmts {
            sqlx::query(&self.dialect.render(s))
                .execute(&mut *tx)
                .await
                .map_err(err(what))?;
        }
        tx.commit().await.map_err(err(what))
    }

    /// Whether a SQLite file has the schema of before it was shared (`meta.key`).
    async fn is_legacy_sqlite(&self) -> StoreResult<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM pragma_table_info('meta') WHERE name = 'key'")
            .fetch_one(&self.pool)
            .await
            .map_err(err("reading the schema"))?;
        Ok(opt_i(&row, 0).map_err(err("reading the schema"))? == Some(1))
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// An `INSERT` that answers the new row's `id` on SQLite (`RETURNING id`: `sqlx`'s
    /// `Any` driver reports no insert id for SQLite); MySQL's comes with the result.
    fn returning_id(&self, insert: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{insert} RETURNING id"),
            Dialect::MySql => insert.to_owned(),
        }
    }

    /// Runs an insert made with [`SqlStore::returning_id`]; the new row's id.
    async fn insert_id<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        what: &str,
    ) -> StoreResult<i64> {
        let id = match self.dialect {
            Dialect::Sqlite => {
                let row = q.fetch_one(&self.pool).await.map_err(err(what))?;
                opt_i(&row, 0).map_err(err(what))?
            }
            Dialect::MySql => q
                .execute(&self.pool)
                .await
                .map_err(err(what))?
                .last_insert_id(),
        };
        id.ok_or_else(|| setup(what, "the database gave no id"))
    }

    /// The schema version after migrations.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let what = "reading the schema version";
        let row = sqlx::query("SELECT MAX(version) FROM schema_version")
            .fetch_one(&self.pool)
            .await
            .map_err(err(what))?;
        Ok(opt_i(&row, 0).map_err(err(what))?.unwrap_or(0))
    }

    /// A `meta` value.
    pub async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let what = "reading meta";
        let row = sqlx::query("SELECT value FROM meta WHERE k = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(err(what))?;
        match row {
            Some(r) => opt_s(&r, 0).map_err(err(what)),
            None => Ok(None),
        }
    }

    /// Sets a `meta` value.
    pub async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(&self.sql.set_meta)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(err("writing meta"))
            .map(|_| ())
    }

    // ---- data sources ----

    /// Every data source, by id.
    pub async fn datasources(&self) -> StoreResult<Vec<DataSourceRow>> {
        self.rows_by_id(DS_SELECT, ds_row, "listing data sources")
            .await
    }

    /// One data source.
    pub async fn datasource(&self, id: i64) -> StoreResult<Option<DataSourceRow>> {
        self.row_by_id(DS_SELECT, id, ds_row, "reading a data source")
            .await
    }

    /// Inserts (`id` 0) or updates a data source; returns its id.
    pub async fn save_datasource(&self, d: &DataSourceRow) -> StoreResult<i64> {
        let what = "saving a data source";
        let options = d.options.to_string();
        let ts = now();
        if d.id == 0 {
            let sql = self.returning_id(
                "INSERT INTO datasources (name, kind, url, username, options, password_enc,
                   api_key_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            let id = self
                .insert_id(
                    sqlx::query(&sql)
                        .bind(&d.name)
                        .bind(&d.kind)
                        .bind(&d.url)
                        .bind(&d.username)
                        .bind(&options)
                        .bind(&d.password_enc)
                        .bind(&d.api_key_enc)
                        .bind(&ts)
                        .bind(&ts),
                    what,
                )
                .await?;
            Ok(id)
        } else {
            sqlx::query(
                "UPDATE datasources SET name = ?, kind = ?, url = ?, username = ?, options = ?,
                   password_enc = ?, api_key_enc = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&d.name)
            .bind(&d.kind)
            .bind(&d.url)
            .bind(&d.username)
            .bind(&options)
            .bind(&d.password_enc)
            .bind(&d.api_key_enc)
            .bind(&ts)
            .bind(d.id)
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
            Ok(d.id)
        }
    }

    /// Deletes a data source; whether it existed.
    pub async fn delete_datasource(&self, id: i64) -> StoreResult<bool> {
        self.delete_by_id("datasources", id, "deleting a data source")
            .await
    }

    // ---- tasks ----

    /// Every task, by id.
    pub async fn tasks(&self) -> StoreResult<Vec<TaskRow>> {
        self.rows_by_id(TASK_SELECT, task_row, "listing tasks")
            .await
    }

    /// One task.
    pub async fn task(&self, id: i64) -> StoreResult<Option<TaskRow>> {
        self.row_by_id(TASK_SELECT, id, task_row, "reading a task")
            .await
    }

    /// Inserts (`id` 0) or updates a task's name and configuration; returns its id.
    pub async fn save_task(
        &self,
        id: i64,
        name: &str,
        config: &serde_json::Value,
    ) -> StoreResult<i64> {
        let what = "saving a task";
        let ts = now();
        let config = config.to_string();
        if id == 0 {
            let sql = self.returning_id(
                "INSERT INTO tasks (name, config, created_at, updated_at) VALUES (?, ?, ?, ?)",
            );
            let id = self
                .insert_id(
                    sqlx::query(&sql)
                        .bind(name)
                        .bind(&config)
                        .bind(&ts)
                        .bind(&ts),
                    what,
                )
                .await?;
            Ok(id)
        } else {
            sqlx::query("UPDATE tasks SET name = ?, config = ?, updated_at = ? WHERE id = ?")
                .bind(name)
                .bind(&config)
                .bind(&ts)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(err(what))?;
            Ok(id)
        }
    }

    /// Sets a task's status (and error); `started`/`finished` stamp the times.
    pub async fn set_task_status(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        started: bool,
        finished: bool,
    ) -> StoreResult<()> {
        let ts = now();
        let started_at = started.then_some(ts.as_str());
        let finished_at = finished.then_some(ts.as_str());
        sqlx::query(
            "UPDATE tasks SET status = ?, error = ?, updated_at = ?,
               started_at = COALESCE(?, started_at),
               finished_at = CASE WHEN ? IS NOT NULL THEN ? WHEN ? IS NOT NULL THEN NULL
                 ELSE finished_at END
             WHERE id = ?",
        )
        .bind(status)
        .bind(error)
        .bind(&ts)
        .bind(started_at)
        .bind(finished_at)
        .bind(finished_at)
        .bind(started_at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err("setting a task's status"))
        .map(|_| ())
    }

    /// Deletes a task with its units, logs, schedules, runs and dead letters; whether it existed.
    pub async fn delete_task(&self, id: i64) -> StoreResult<bool> {
        let what = "deleting a task";
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        for sql in [
            "DELETE FROM task_units WHERE task_id = ?",
            "DELETE FROM logs WHERE task_id = ?",
            "DELETE FROM schedules WHERE task_id = ?",
            "DELETE FROM task_runs WHERE task_id = ?",
            "DELETE FROM dead_letters WHERE task_id = ?",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err(what))?;
        }
        let r = sqlx::query("DELETE FROM tasks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err(what))?;
        tx.commit().await.map_err(err(what))?;
        Ok(r.rows_affected() > 0)
    }

    /// Names of the tasks that use a data source.
    pub async fn tasks_using(&self, datasource: i64) -> StoreResult<Vec<String>> {
        Ok(self
            .tasks()
            .await?
            .into_iter()
            .filter(|t| uses(&t.config, datasource))
            .map(|t| t.name)
            .collect())
    }
}

/// Whether a task configuration reads from or writes to data source `datasource`.
pub fn uses(config: &serde_json::Value, datasource: i64) -> bool {
    ["source", "target"].iter().any(|k| {
        config
            .get(k)
            .and_then(|s| s.get("datasource"))
            .and_then(|v| v.as_i64())
            == Some(datasource)
    })
}

const DS_SELECT: &str = "SELECT id, name, kind, url, username, options, password_enc, api_key_enc,
    created_at, updated_at FROM datasources";

fn ds_row(r: &AnyRow) -> Result<DataSourceRow, sqlx::Error> {
    Ok(DataSourceRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        name: s(r, 1)?,
        kind: s(r, 2)?,
        url: s(r, 3)?,
        username: opt_s(r, 4)?,
        options: serde_json::from_str(&s(r, 5)?).unwrap_or_else(|_| serde_json::json!({})),
        password_enc: opt_s(r, 6)?,
        api_key_enc: opt_s(r, 7)?,
        created_at: s(r, 8)?,
        updated_at: s(r, 9)?,
    })
}

const TASK_SELECT: &str = "SELECT id, name, config, status, error, created_at, updated_at,
    started_at, finished_at FROM tasks";

fn task_row(r: &AnyRow) -> Result<TaskRow, sqlx::Error> {
    Ok(TaskRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        name: s(r, 1)?,
        config: serde_json::from_str(&s(r, 2)?).unwrap_or(serde_json::Value::Null),
        status: s(r, 3)?,
        error: opt_s(r, 4)?,
        created_at: s(r, 5)?,
        updated_at: s(r, 6)?,
        started_at: opt_s(r, 7)?,
        finished_at: opt_s(r, 8)?,
    })
}

//! The sink's bulk path: snapshot batches as `LOAD DATA LOCAL INFILE`, streamed from memory.
//!
//! A batch of snapshot rows ([`Op::Read`]) is encoded as the tab-separated text of
//! [`crate::load_data`] and handed to the server through the driver's one-time local-infile
//! handler of the session (no file is written, and a server asking for any other file gets
//! nothing). The server parses that text as it parses a file of its own: it spends less per
//! row than on multi-row `INSERT` statements.
//!
//! Semantics follow the sink's [`WriteMode`], so a resumed chunk stays idempotent. Into a
//! fresh table ([`LoadTarget::fresh`]: one the sink created or emptied in this run, or found
//! empty when a unit writing to it started from the beginning) `upsert` and `replace` batches
//! load with a plain `LOAD DATA`, which costs the server less than `REPLACE`: a key that is
//! there already (a batch written again after a retry, or two source rows meeting in one
//! target) makes the server warn, and the batch is then written with the mode's `INSERT`
//! statement, so the result is the same. Elsewhere:
//!
//! | mode | statement |
//! |---|---|
//! | `upsert` | `LOAD DATA ... REPLACE`, where that equals an upsert of whole rows: the target's only unique index is its primary key, it has no triggers, no foreign key refers to it, and the batch writes every one of its columns. Elsewhere the batch is written with `INSERT ... ON DUPLICATE KEY UPDATE` |
//! | `replace` | `LOAD DATA ... REPLACE` |
//! | `insert` | `LOAD DATA` (a duplicate makes the server warn: the batch is then written with `INSERT`, which rejects the duplicate rows one by one) |
//! | `insert-ignore` | `LOAD DATA ... IGNORE` |
//!
//! Exactness: the load runs in a transaction, and the server's warning count is read after
//! each statement. A warning means the server changed or dropped something (a value
//! truncated or out of range, a duplicate, an invalid character for the column's charset):
//! the transaction is rolled back and the batch is written again with `INSERT` under the
//! session's strict `sql_mode`, which refuses such rows with an error naming table, column and
//! key (and the pipeline's error policy decides). A value with no exact text form does the
//! same before anything is sent. So the bulk path stores exactly what the `INSERT` path
//! stores, or nothing.
//!
//! Where the server refuses local files (`local_infile = OFF`, checked once per sink), every
//! batch is written with multi-row `INSERT`, as before, with one log line saying so.
//!
//! Session settings ([`SessionSettings`]), when `bulk_session` asks for them: a batch into a
//! fresh table ([`LoadTarget::fresh`]) that has no secondary unique key and no foreign key
//! (from or to it) runs with `unique_checks = 0, foreign_key_checks = 0`: there is no check
//! for them to skip, and MariaDB then loads an empty table in its bulk insert mode. With
//! `skip_binlog`, every batch of the path runs with `sql_log_bin = 0`. The settings are
//! restored after the batch; a batch that fails before restoring them leaves its session to
//! the pool's reset (only clean sessions skip it, see `keep_warm` in `connect.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datatrace_core::{Op, Record, Schema, SinkError};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::WriteMode;
use crate::error::MySqlError;
use crate::load_data::{encode_row, load_statement, FieldForm, OnDuplicate};
use crate::types::ColumnKind;

/// Server errors that mean "no local files here": not allowed (1148), disabled on either
/// side (3948, MySQL 8), refused by the client's restrictions (2068).
const LOCAL_REFUSED: &[u16] = &[1148, 3948, 2068, 4166];

/// Bytes per packet of the streamed file, at most (and below the server's
/// `max_allowed_packet`).
const CHUNK: usize = 1 << 20;

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

/// The target of a run of records.
pub(crate) struct LoadTarget<'a> {
    /// Database.
    pub db: &'a str,
    /// Table.
    pub table: &'a str,
    /// `` `db`.`table` ``.
    pub sql: &'a str,
    /// Whether the sink created or emptied the table in this run, or found it empty when a
    /// unit writing to it started from the beginning (see the module docs).
    pub fresh: bool,
}

/// Which session settings the bulk path may use (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionSettings {
    /// `unique_checks = 0, foreign_key_checks = 0` on fresh tables without keys to check.
    pub relax_checks: bool,
    /// `sql_log_bin = 0`.
    pub skip_binlog: bool,
}

impl SessionSettings {
    /// The statements that set and restore the session for a batch, if any.
    fn statements(&self, relax: bool) -> Option<(String, String)> {
        let mut set = Vec::new();
        let mut back = Vec::new();
        if relax && self.relax_checks {
            set.push("unique_checks = 0, foreign_key_checks = 0");
            back.push("unique_checks = DEFAULT, foreign_key_checks = DEFAULT");
        }
        if self.skip_binlog {
            set.push("sql_log_bin = 0");
            back.push("sql_log_bin = 1");
        }
        (!set.is_empty()).then(|| {
            (
                format!("SET SESSION {}", set.join(", ")),
                format!("SET SESSION {}", back.join(", ")),
            )
        })
    }
}

/// What the bulk path knows of a target table (read once from `information_schema`).
#[derive(Debug)]
struct Shape {
    /// Column kinds by lower-cased name (MySQL column names ignore case).
    columns: HashMap<String, ColumnKind>,
    /// Writable columns (generated ones left out), lower-cased.
    writable: Vec<String>,
    /// Whether a primary key or unique index exists.
    keyed: bool,
    /// Whether no unique index but the first, and no foreign key from or to the table, exists:
    /// then `unique_checks = 0, foreign_key_checks = 0` skip nothing.
    unchecked: bool,
    /// Why `REPLACE` would not equal an upsert here (more unique indexes, triggers, foreign
    /// keys referring to the table), if it would not.
    replace_differs: Option<String>,
}

/// The bulk path's state, shared by the sink's writers.
pub(crate) struct BulkLoad {
    enabled: bool,
    session: SessionSettings,
    /// Bytes per packet of the streamed file.
    chunk: usize,
    server: AtomicU8,
    shapes: Mutex<HashMap<String, Arc<Shape>>>,
    loaded: AtomicU64,
}

impl BulkLoad {
    /// A bulk path, used when `enabled` and the server allows local files; the file goes in
    /// packets of at most `packet` bytes.
    pub(crate) fn new(enabled: bool, packet: usize, session: SessionSettings) -> Self {
        BulkLoad {
            enabled,
            session,
            chunk: CHUNK.min(packet).max(1024),
            server: AtomicU8::new(UNKNOWN),
            shapes: Mutex::new(HashMap::new()),
            loaded: AtomicU64::new(0),
        }
    }

    /// Rows written with `LOAD DATA` so far.
    pub(crate) fn loaded_rows(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Forgets what it knows of `sql` (after a table change).
    pub(crate) fn forget(&self, sql: &str) {
        self.shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sql);
    }

    /// Writes `records` (every one [`Op::Read`]) to their targets with `LOAD DATA`. `Ok(true)`
    /// when the batch is written; `Ok(false)` when it is not for this path (or the server
    /// warned, and it was rolled back): the caller writes it with `INSERT`.
    pub(crate) async fn write(
        &self,
        c: &mut Conn,
        mode: WriteMode,
        records: &[Record],
        targets: &[LoadTarget<'_>],
    ) -> Result<bool, SinkError> {
        if !self.enabled
            || records.is_empty()
            || records.len() != targets.len()
            || records.iter().any(|r| r.op != Op::Read)
            || !self.server_allows(c).await?
        {
            return Ok(false);
        }
        // Consecutive records of one target and schema make one statement.
        let mut loads: Vec<(String, Bytes)> = Vec::new();
        let mut relax = true;
        let mut start = 0;
        while start < records.len() {
            let (t, schema) = (&targets[start], &records[start].schema);
            let mut end = start + 1;
            while end < records.len()
                && targets[end].sql == t.sql
                && Arc::ptr_eq(&records[end].schema, schema)
            {
                end += 1;
            }
            let shape = self.shape(c, t).await?;
            relax &= t.fresh && shape.unchecked;
            let Some((sql, forms)) = plan(t, schema, &shape, mode) else {
                return Ok(false);
            };
            let mut text = Vec::with_capacity(
                records[start..end]
                    .iter()
                    .map(|r| r.approx_size())
                    .sum::<usize>()
                    .min(64 << 20),
            );
            for r in &records[start..end] {
                if let Err(why) = encode_row(&mut text, &r.values, &forms) {
                    tracing::debug!(target = %t.sql, %why, "a row has no LOAD DATA form: writing the batch with INSERT");
                    return Ok(false);
                }
            }
            loads.push((sql, Bytes::from(text)));
            start = end;
        }
        let session = self.session.statements(relax);
        let done = self.run(c, targets, loads, session).await?;
        if done {
            self.loaded
                .fetch_add(records.len() as u64, Ordering::Relaxed);
        }
        Ok(done)
    }

    /// Runs the loads in one transaction under `session`'s settings (set, then restored).
    async fn run(
        &self,
        c: &mut Conn,
        targets: &[LoadTarget<'_>],
        loads: Vec<(String, Bytes)>,
        session: Option<(String, String)>,
    ) -> Result<bool, SinkError> {
        let Some((set, restore)) = session else {
            return self.run_tx(c, targets, loads).await;
        };
        if let Err(e) = c.query_drop(&set).await {
            let hint = if self.session.skip_binlog {
                " (skip_binlog = true needs the SUPER or BINLOG ADMIN privilege: grant it, or set skip_binlog = false)"
            } else {
                ""
            };
            let e = MySqlError::from_driver(format!("{set}{hint}"), e);
            return Err(to_sink_error(e));
        }
        let result = self.run_tx(c, targets, loads).await;
        let restored = c.query_drop(&restore).await;
        match (result, restored) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(to_sink_error(MySqlError::from_driver(restore, e))),
            (Ok(done), Ok(())) => Ok(done),
        }
    }

    /// Runs the loads in one transaction; rolls back on a warning or a data error.
    async fn run_tx(
        &self,
        c: &mut Conn,
        targets: &[LoadTarget<'_>],
        loads: Vec<(String, Bytes)>,
    ) -> Result<bool, SinkError> {
        let mut names: Vec<String> = Vec::new();
        for t in targets {
            let n = format!("{}.{}", t.db, t.table);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let what = names.join(", ");
        let context = || format!("writing {what}");
        let fail = |e| to_sink_error(MySqlError::from_driver(context(), e));
        c.query_drop("START TRANSACTION").await.map_err(fail)?;
        for (sql, text) in loads {
            let step = self.chunk;
            let chunks: Vec<Bytes> = (0..text.len())
                .step_by(step)
                .map(|at| text.slice(at..(at + step).min(text.len())))
                .collect();
            c.set_infile_handler(async move { Ok(futures::stream::iter(chunks).map(Ok).boxed()) });
            let result = c.query_drop(&sql).await;
            let warnings = c.get_warnings();
            match result {
                Ok(()) if warnings == 0 => {}
                Ok(()) => {
                    let shown = first_warnings(c).await;
                    let _ = c.query_drop("ROLLBACK").await;
                    tracing::debug!(target = %what, warnings, %shown, "LOAD DATA warned: rolled back, writing the batch with INSERT");
                    return Ok(false);
                }
                Err(e) => {
                    let _ = c.query_drop("ROLLBACK").await;
                    let refused = matches!(&e, mysql_async::Error::Server(s) if LOCAL_REFUSED.contains(&s.code));
                    if refused {
                        self.server.store(OFF, Ordering::Relaxed);
                        tracing::info!(error = %e, "the server refuses LOAD DATA LOCAL INFILE: snapshot batches are written with INSERT");
                        return Ok(false);
                    }
                    let err = MySqlError::from_driver(context(), e);
                    if err.is_data() {
                        tracing::debug!(error = %err, "LOAD DATA refused a row: writing the batch with INSERT");
                        return Ok(false);
                    }
                    return Err(to_sink_error(err));
                }
            }
        }
        c.query_drop("COMMIT").await.map_err(fail)?;
        Ok(true)
    }

    /// Whether the server takes local files (`@@local_infile`), asked once.
    async fn server_allows(&self, c: &mut Conn) -> Result<bool, SinkError> {
        match self.server.load(Ordering::Relaxed) {
            ON => return Ok(true),
            OFF => return Ok(false),
            _ => {}
        }
        let on: Option<i64> = c
            .query_first("SELECT @@local_infile")
            .await
            .map_err(|e| to_sink_error(MySqlError::from_driver("reading @@local_infile", e)))?;
        let on = on.unwrap_or(0) != 0;
        if !on {
            tracing::info!("local_infile is OFF on the target server: snapshot batches are written with multi-row INSERT (SET GLOBAL local_infile = 1 enables the faster LOAD DATA path)");
        }
        self.server
            .store(if on { ON } else { OFF }, Ordering::Relaxed);
        Ok(on)
    }

    async fn shape(&self, c: &mut Conn, t: &LoadTarget<'_>) -> Result<Arc<Shape>, SinkError> {
        if let Some(s) = self
            .shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(t.sql)
        {
            return Ok(s.clone());
        }
        let shape = Arc::new(read_shape(c, t).await.map_err(to_sink_error)?);
        self.shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.sql.to_string(), shape.clone());
        Ok(shape)
    }
}

/// The statement and field forms for `schema` into `t`, or `None` when this batch is for
/// the `INSERT` path (a column the target lacks, an upsert that `REPLACE` would not equal).
fn plan(
    t: &LoadTarget<'_>,
    schema: &Schema,
    shape: &Shape,
    mode: WriteMode,
) -> Option<(String, Vec<FieldForm>)> {
    if shape.columns.is_empty() {
        return None;
    }
    let mut forms = Vec::with_capacity(schema.len());
    let mut names = Vec::with_capacity(schema.len());
    for c in schema.columns() {
        let kind = shape.columns.get(&c.name.to_lowercase())?;
        forms.push(FieldForm::of(*kind));
        names.push(c.name.as_str());
    }
    let dup = match mode {
        // Nothing to replace in a table this run created or found empty: a plain load costs
        // the server less than `REPLACE`, and a key already there (a batch written again
        // after a retry) makes it warn, so the batch is written with the mode's statement.
        WriteMode::Replace | WriteMode::Upsert if t.fresh => OnDuplicate::Warn,
        WriteMode::Replace => OnDuplicate::Replace,
        WriteMode::InsertIgnore => OnDuplicate::Ignore,
        WriteMode::Insert => OnDuplicate::Warn,
        WriteMode::Upsert if !shape.keyed => OnDuplicate::Warn,
        WriteMode::Upsert => {
            if let Some(why) = &shape.replace_differs {
                tracing::debug!(target = %t.sql, %why, "upserts written with INSERT");
                return None;
            }
            // REPLACE resets the columns a batch does not write; an upsert keeps them.
            let written: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
            if shape.writable.iter().any(|c| !written.contains(c)) {
                return None;
            }
            OnDuplicate::Replace
        }
    };
    Some((load_statement(t.sql, &names, &forms, dup), forms))
}

/// Reads the columns, unique indexes, triggers and referring foreign keys of `t`.
async fn read_shape(c: &mut Conn, t: &LoadTarget<'_>) -> Result<Shape, MySqlError> {
    let ctx = || format!("reading the columns of {}.{}", t.db, t.table);
    let cols: Vec<(String, String, String, String)> = c
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (t.db, t.table),
        )
        .await
        .map_err(|e| MySqlError::from_driver(ctx(), e))?;
    let mut columns = HashMap::new();
    let mut writable = Vec::new();
    for (name, data_type, column_type, extra) in cols {
        let lower = name.to_lowercase();
        // Unknown types (a plugin's) travel as text, as the INSERT path writes them.
        let kind = ColumnKind::parse(&data_type, &column_type).unwrap_or(ColumnKind::Text);
        // MariaDB's JSON is LONGTEXT with a check; either way it is text here.
        columns.insert(lower.clone(), kind);
        if !extra.to_ascii_uppercase().contains("GENERATED") {
            writable.push(lower);
        }
    }
    let unique: Option<u64> = c
        .exec_first(
            "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0",
            (t.db, t.table),
        )
        .await
        .map_err(|e| MySqlError::from_driver(ctx(), e))?;
    let triggers: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?",
            (t.db, t.table),
        )
        .await
        .map_err(|e| MySqlError::from_driver(ctx(), e))?;
    let foreign: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (t.db, t.table),
        )
        .await
        .map_err(|e| MySqlError::from_driver(ctx(), e))?;
    let referred: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?",
            (t.db, t.table),
        )
        .await
        .map_err(|e| MySqlError::from_driver(ctx(), e))?;
    let (unique, triggers, referred) = (
        unique.unwrap_or(0),
        triggers.unwrap_or(0),
        referred.unwrap_or(0),
    );
    let replace_differs = if unique > 1 {
        Some(format!(
            "{unique} unique indexes (REPLACE may delete several rows for one)"
        ))
    } else if triggers > 0 {
        Some(format!(
            "{triggers} triggers (REPLACE fires delete triggers)"
        ))
    } else if referred > 0 {
        Some(format!(
            "{referred} foreign keys refer to it (REPLACE deletes the old row first)"
        ))
    } else {
        None
    };
    Ok(Shape {
        columns,
        writable,
        keyed: unique > 0,
        unchecked: unique <= 1 && referred == 0 && foreign.unwrap_or(0) == 0,
        replace_differs,
    })
}

/// The first warnings of the last statement, for the log.
async fn first_warnings(c: &mut Conn) -> String {
    let rows: Vec<(String, u32, String)> =
        c.query("SHOW WARNINGS LIMIT 3").await.unwrap_or_default();
    rows.into_iter()
        .map(|(_, code, msg)| format!("{code}: {msg}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn to_sink_error(e: MySqlError) -> SinkError {
    if e.is_transient() {
        SinkError::transient(e)
    } else {
        SinkError::fatal(e)
    }
}

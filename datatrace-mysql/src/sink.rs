//! [`MySqlSink`]: writes batches as multi-row statements, one transaction per batch.
//!
//! A batch becomes a few statements (consecutive records of one target and kind share one
//! statement, kept under `max_allowed_packet`), run in one transaction, in record order, so a
//! delete after an insert of the same key in the same batch wins. If the transaction fails
//! on a data error (a value too long or out of range, a bad date, a NULL in a NOT NULL
//! column, a duplicate in insert mode), it is rolled back and the batch is written again one
//! row per statement in one transaction: good rows land, bad rows are reported as
//! [`Outcome::Rejected`] naming table, column and primary key, and the pipeline's error
//! policy (fail, skip, dead-letter) decides. Deadlocks, lock wait timeouts and lost
//! connections are [`SinkError::Transient`]: the runner retries the batch.
//!
//! Table changes of a change stream ([`TableChange`]: `TRUNCATE`, `DROP TABLE`,
//! `RENAME TABLE`) are handled under [`MySqlSink::table_changes`]: applied to the target
//! table (the default), refused with an error naming the change (`fail`), or ignored. Applying
//! is idempotent, since a change is replayed after a crash: `TRUNCATE` of a missing table
//! and `DROP TABLE IF EXISTS` do nothing, and a rename already done (old target missing, new
//! one present) is not done again.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{
    Batch, Cause, Op, Outcome, PrepareContext, Record, Schema, Sink, SinkError, TableChange,
    TableChangeKind, TableChanges,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::bulk_load::{BulkLoad, LoadTarget, SessionSettings};
use crate::config::SinkOptions;
use crate::connect::{keep_warm, MySqlConnection};
use crate::ddl::{create_table_deferred_sql, create_table_sql, deferred_keys};
use crate::error::{MySqlError, Result};
use crate::sql::{ident, table_ref};
use crate::write::column_in_message;

mod deferred;
mod statements;
mod table_changes;

/// Writes records into MySQL tables (see the module docs).
pub struct MySqlSink {
    conn: MySqlConnection,
    opts: SinkOptions,
    limit: usize,
    created: tokio::sync::Mutex<HashSet<String>>,
    schema_changes: crate::schema_change::SchemaChanges,
    followed: crate::schema_change::Followed,
    table_changes: TableChanges,
    bulk: BulkLoad,
    /// Fresh tables: created or emptied by this sink in this run, or found empty by a unit
    /// starting from the beginning (see [`SinkOptions::bulk_session`] and `crate::bulk_load`).
    fresh: std::sync::Mutex<HashSet<String>>,
    /// Unique keys to add when their unit finishes (see [`SinkOptions::defer_indexes`]).
    deferred: deferred::Deferred,
}

/// Where a record goes.
struct Target {
    db: String,
    table: String,
    sql: String,
}

impl Target {
    fn name(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }
}

impl MySqlSink {
    /// A sink writing through `conn`.
    pub fn new(conn: MySqlConnection, opts: SinkOptions) -> Result<Self> {
        opts.validate()?;
        let packet = conn
            .info()
            .max_allowed_packet
            .saturating_sub(4096)
            .max(4096);
        let limit = opts.max_statement_bytes.clamp(4096, packet.max(4096));
        let session = SessionSettings {
            relax_checks: opts.bulk_session,
            skip_binlog: opts.skip_binlog,
        };
        let bulk = BulkLoad::new(opts.load_data, limit, session);
        Ok(MySqlSink {
            conn,
            opts,
            limit,
            created: tokio::sync::Mutex::new(HashSet::new()),
            schema_changes: Default::default(),
            followed: Default::default(),
            table_changes: TableChanges::Apply,
            bulk,
            fresh: Default::default(),
            deferred: Default::default(),
        })
    }

    /// How schema changes of a change stream reach the target (see
    /// [`crate::schema_change`]); the default is to not compare.
    pub fn schema_changes(mut self, policy: crate::schema_change::SchemaChanges) -> Self {
        self.schema_changes = policy;
        self
    }

    /// What the sink does with the table changes of a change stream (`TRUNCATE`,
    /// `DROP TABLE`, `RENAME TABLE`): [`TableChanges::Apply`] (the default) truncates, drops
    /// or renames the target table, [`TableChanges::Fail`] stops the unit with an error naming
    /// the change and the target table, [`TableChanges::Ignore`] leaves the target as it is
    /// (with a warning).
    pub fn table_changes(mut self, policy: TableChanges) -> Self {
        self.table_changes = policy;
        self
    }

    /// Rows this sink wrote with `LOAD DATA LOCAL INFILE` (the bulk path of snapshot
    /// batches, see [`SinkOptions::load_data`]); the others went as `INSERT` statements.
    pub fn loaded_rows(&self) -> u64 {
        self.bulk.loaded_rows()
    }

    /// The largest statement this sink sends, in bytes.
    pub fn statement_limit(&self) -> usize {
        self.limit
    }

    fn target(&self, name: &str) -> Result<Target, String> {
        let name = self.opts.table.as_deref().unwrap_or(name);
        let (db, table) = match name.split_once('.') {
            Some((d, t)) if self.opts.table.is_none() || self.opts.database.is_none() => {
                (d.to_string(), t.to_string())
            }
            _ => {
                let db = self
                    .opts
                    .database
                    .as_deref()
                    .or(self.conn.default_database())
                    .ok_or_else(|| {
                        format!("no target database for table {name}: set `database` in the sink options or in the URL")
                    })?;
                (db.to_string(), name.to_string())
            }
        };
        Ok(Target {
            sql: table_ref(&db, &table),
            db,
            table,
        })
    }

    /// Creates the target table when missing (with `create_table`); true when this call
    /// created it. With `defer`, a table with unique keys besides its primary key is created
    /// without them (see [`SinkOptions::defer_indexes`]).
    async fn ensure_created(
        &self,
        c: &mut Conn,
        t: &Target,
        schema: &Schema,
        defer: bool,
    ) -> Result<bool, SinkError> {
        if !self.opts.create_table {
            return Ok(false);
        }
        let mut created = self.created.lock().await;
        if created.contains(&t.sql) {
            return Ok(false);
        }
        let defer = defer && !schema.primary_key().is_empty() && !deferred_keys(schema).is_empty();
        let sql = match defer {
            true => create_table_deferred_sql(&t.db, &t.table, schema),
            false => create_table_sql(&t.db, &t.table, schema),
        };
        let context = || format!("creating table {}", t.name());
        match c.query_drop(&sql).await {
            Ok(()) => {}
            Err(e) => match MySqlError::from_driver(context(), e) {
                // A table in a database that is not there yet: create the database too.
                MySqlError::UnknownDatabase { .. } => {
                    c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", ident(&t.db)))
                        .await
                        .map_err(|e| classify(format!("creating database {}", t.db), e))?;
                    tracing::info!(database = %t.db, "created the target database");
                    c.query_drop(&sql)
                        .await
                        .map_err(|e| classify(context(), e))?;
                }
                other => return Err(to_sink_error(other)),
            },
        }
        // CREATE TABLE IF NOT EXISTS notes (1050) a table that was there already.
        let now = c.get_warnings() == 0;
        if now {
            tracing::info!(target = %t.name(), deferred_keys = defer, "created the target table");
        }
        created.insert(t.sql.clone());
        Ok(now)
    }

    /// Runs `stmts` in one transaction. Errors keep their classification.
    async fn run_tx(&self, c: &mut Conn, what: &str, stmts: &[String]) -> Result<(), MySqlError> {
        let ctx = || format!("writing {what}");
        c.query_drop("START TRANSACTION")
            .await
            .map_err(|e| MySqlError::from_driver(ctx(), e))?;
        for s in stmts {
            if let Err(e) = c.query_drop(s).await {
                let _ = c.query_drop("ROLLBACK").await;
                return Err(MySqlError::from_driver(ctx(), e));
            }
        }
        c.query_drop("COMMIT")
            .await
            .map_err(|e| MySqlError::from_driver(ctx(), e))
    }

    /// Writes the batch one record per statement in one transaction.
    async fn write_one_by_one(
        &self,
        c: &mut Conn,
        records: &[Record],
        targets: &[Option<Target>],
        outcomes: &mut [Option<Outcome>],
    ) -> Result<(), SinkError> {
        let tx = |e| classify("writing a batch row by row".into(), e);
        c.query_drop("START TRANSACTION").await.map_err(tx)?;
        for i in 0..records.len() {
            if outcomes[i].is_some() {
                continue;
            }
            let b = self.build(records, targets, outcomes, Some(i));
            // A record may take two statements (a key-changing update): all or nothing.
            let several = b.statements.len() > 1;
            if several {
                c.query_drop("SAVEPOINT dt_row").await.map_err(tx)?;
            }
            for st in &b.statements {
                if let Err(e) = c.query_drop(&st.sql).await {
                    let t = targets[i].as_ref().map(Target::name).unwrap_or_default();
                    let err = MySqlError::from_driver(format!("writing {t}"), e);
                    if err.is_data() {
                        if several {
                            c.query_drop("ROLLBACK TO SAVEPOINT dt_row")
                                .await
                                .map_err(tx)?;
                        }
                        outcomes[i] = Some(Outcome::Rejected(reject_cause(&t, &records[i], err)));
                        break;
                    }
                    let _ = c.query_drop("ROLLBACK").await;
                    return Err(to_sink_error(err));
                }
            }
        }
        c.query_drop("COMMIT").await.map_err(tx)
    }
}

fn reject_message(table: &str, r: &Record, err: &MySqlError) -> String {
    let msg = match err {
        MySqlError::Data { message, .. } => message.clone(),
        other => other.to_string(),
    };
    match column_in_message(&msg) {
        Some(col) => format!(
            "table {table}, column {col}, key {}: {msg}",
            r.key_string(",")
        ),
        None => format!("table {table}, key {}: {msg}", r.key_string(",")),
    }
}

/// A rejected row's cause: the server's error, described by table, column and key.
fn reject_cause(table: &str, r: &Record, err: MySqlError) -> Cause {
    let message = reject_message(table, r, &err);
    Cause::new(err).with_message(message)
}

fn to_sink_error(e: MySqlError) -> SinkError {
    if e.is_transient() {
        SinkError::transient(e)
    } else {
        SinkError::fatal(e)
    }
}

fn classify(context: String, e: mysql_async::Error) -> SinkError {
    to_sink_error(MySqlError::from_driver(context, e))
}

/// Whether `table` has no row (`false` when it cannot be read: a missing table is reported
/// by the writes that need it).
async fn is_empty(c: &mut Conn, table: &str) -> bool {
    matches!(
        c.query_first::<u8, _>(format!("SELECT 1 FROM {table} LIMIT 1"))
            .await,
        Ok(None)
    )
}

#[async_trait]
impl Sink for MySqlSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        if let Some(schema) = &ctx.schema {
            let t = self.target(schema.name()).map_err(SinkError::fatal)?;
            let defer = self.opts.defer_indexes && !ctx.resumed;
            let created = self.ensure_created(&mut c, &t, schema, defer).await?;
            // Rows without a key cannot be overwritten: a copy that starts from the
            // beginning (first run, --restart, a scan read again) empties the target first.
            let keyless = schema.primary_key().is_empty();
            let empties = (self.opts.truncate || keyless) && !ctx.resumed;
            // Created now, or there and empty: the bulk path loads it without REPLACE (a
            // table emptied below is marked there, without asking whether it is empty now).
            let fresh = !ctx.resumed
                && !empties
                && (created || (self.opts.load_data && is_empty(&mut c, &t.sql).await));
            if fresh {
                self.fresh
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(t.sql.clone());
            }
            // Keys deferred by this run or by an earlier one that stopped before its end.
            self.deferred
                .remember(&mut c, &ctx.unit, &t, schema)
                .await?;
            if empties {
                if keyless && !self.opts.truncate {
                    tracing::warn!(
                        unit = %ctx.unit,
                        target = %t.name(),
                        "the source table has no primary key: emptying the target table before copying it, so no row is copied twice"
                    );
                }
                match c.query_drop(format!("TRUNCATE TABLE {}", t.sql)).await {
                    Ok(()) => {
                        self.fresh
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(t.sql.clone());
                    }
                    Err(e) => {
                        match MySqlError::from_driver(format!("truncating {}", t.name()), e) {
                            // Not created (create_table = false and missing): nothing to empty.
                            MySqlError::NoTable { .. } if keyless => {}
                            other => return Err(to_sink_error(other)),
                        }
                    }
                }
            }
        }
        for (i, s) in self.opts.pre_sql.iter().enumerate() {
            c.query_drop(s)
                .await
                .map_err(|e| classify(format!("unit {}: pre_sql[{i}]", ctx.unit), e))?;
        }
        Ok(())
    }

    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let records = &batch.records;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
        let mut targets = Vec::with_capacity(records.len());
        for r in records {
            targets.push(Some(
                self.target(r.target_name()).map_err(SinkError::fatal)?,
            ));
        }
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        if self.opts.create_table {
            let mut seen = HashSet::new();
            for (r, t) in records.iter().zip(&targets) {
                let t = t.as_ref().expect("set above");
                if seen.insert(t.sql.clone()) {
                    self.ensure_created(&mut c, t, &r.schema, false).await?;
                }
            }
        }
        if self.schema_changes != crate::schema_change::SchemaChanges::Ignore {
            let mut checked: Vec<(&str, usize)> = Vec::new();
            for (r, t) in records.iter().zip(&targets) {
                let t = t.as_ref().expect("set above");
                let key = (t.sql.as_str(), Arc::as_ptr(&r.schema) as usize);
                if r.op != Op::Read && !checked.contains(&key) {
                    checked.push(key);
                    self.followed
                        .check(
                            self.schema_changes,
                            &mut c,
                            &t.db,
                            &t.table,
                            &t.sql,
                            &r.schema,
                        )
                        .await?;
                }
            }
        }
        // Snapshot batches: LOAD DATA where the server allows it (see crate::bulk_load).
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let loads: Vec<LoadTarget> = targets
            .iter()
            .flatten()
            .map(|t| LoadTarget {
                db: &t.db,
                table: &t.table,
                sql: &t.sql,
                fresh: fresh.contains(&t.sql),
            })
            .collect();
        if self
            .bulk
            .write(&mut c, self.opts.mode, records, &loads)
            .await?
        {
            keep_warm(&mut c);
            return Ok(vec![Outcome::Written; records.len()]);
        }
        drop(loads);
        let b = self.build(records, &targets, &mut outcomes, None);
        let stmts: Vec<String> = b.statements.into_iter().map(|s| s.sql).collect();
        let mut names: Vec<String> = Vec::new();
        for t in targets.iter().flatten() {
            let n = t.name();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        match self.run_tx(&mut c, &names.join(", "), &stmts).await {
            Ok(()) => {}
            Err(e) if e.is_data() => {
                tracing::debug!(error = %e, "batch refused, writing row by row to find the bad rows");
                self.write_one_by_one(&mut c, records, &targets, &mut outcomes)
                    .await?;
            }
            Err(e) => return Err(to_sink_error(e)),
        }
        keep_warm(&mut c);
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Written))
            .collect())
    }

    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let fatal = |m: String| SinkError::Fatal(format!("{change}: {m}").into());
        let from = self.target(change.target_name()).map_err(fatal)?;
        let to = match &change.kind {
            TableChangeKind::Rename { to, to_target } => Some(
                self.target(to_target.as_deref().unwrap_or(to.name()))
                    .map_err(fatal)?,
            ),
            _ => None,
        };
        let left = match &to {
            Some(to) => format!(
                "target tables {} and {} are left as they are",
                from.name(),
                to.name()
            ),
            None => format!("target table {} is left as it is", from.name()),
        };
        match self.table_changes {
            TableChanges::Ignore => {
                tracing::warn!(%change, "table change not applied: {left} (table_changes = \"ignore\")");
                return Ok(());
            }
            TableChanges::Fail => {
                return Err(SinkError::Fatal(format!(
                    "{change}: {left} because table_changes = \"fail\"; the stream stopped before this change and replays it when run again: to apply it, run again with table_changes = \"apply\" (idempotent, also after applying it by hand); to keep the target as it is, run with table_changes = \"ignore\" until the stream is past it (later table changes are then ignored too)"
                ).into()))
            }
            TableChanges::Apply => {}
        }
        let applied = self.apply_table_change(change, &from, to.as_ref()).await;
        // Whatever happened, the target may have changed: read it again when next written.
        self.forget(&from).await;
        if let Some(to) = &to {
            self.forget(to).await;
        }
        applied
    }

    /// Adds the unique keys deferred on every table (wrappers that forward only `finish`
    /// still end with every key), then runs `post_sql`.
    async fn finish(&self) -> Result<(), SinkError> {
        self.build_deferred(None).await?;
        self.post_sql().await
    }

    /// Adds the unique keys deferred on this unit's table, then runs `post_sql`.
    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.build_deferred(Some(&ctx.unit)).await?;
        self.post_sql().await
    }
}

impl MySqlSink {
    async fn post_sql(&self) -> Result<(), SinkError> {
        if self.opts.post_sql.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        for (i, s) in self.opts.post_sql.iter().enumerate() {
            c.query_drop(s)
                .await
                .map_err(|e| classify(format!("post_sql[{i}]"), e))?;
        }
        Ok(())
    }
}

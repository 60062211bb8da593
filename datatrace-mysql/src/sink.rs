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
    Batch, Op, Outcome, PrepareContext, Record, Schema, Sink, SinkError, TableChange,
    TableChangeKind, TableChanges,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::{SinkOptions, WriteMode};
use crate::connect::MySqlConnection;
use crate::ddl::create_table_sql;
use crate::error::{MySqlError, Result};
use crate::sql::table_ref;
use crate::write::{actions, column_in_message, key_term, row_tuple, Action, Builder, Group};

/// Writes records into MySQL tables (see the module docs).
pub struct MySqlSink {
    conn: MySqlConnection,
    opts: SinkOptions,
    limit: usize,
    created: tokio::sync::Mutex<HashSet<String>>,
    schema_changes: crate::schema_change::SchemaChanges,
    followed: crate::schema_change::Followed,
    table_changes: TableChanges,
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
        let packet = conn
            .info()
            .max_allowed_packet
            .saturating_sub(4096)
            .max(4096);
        let limit = opts.max_statement_bytes.clamp(4096, packet.max(4096));
        Ok(MySqlSink {
            conn,
            opts,
            limit,
            created: tokio::sync::Mutex::new(HashSet::new()),
            schema_changes: Default::default(),
            followed: Default::default(),
            table_changes: TableChanges::Apply,
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

    async fn ensure_created(
        &self,
        c: &mut Conn,
        t: &Target,
        schema: &Schema,
    ) -> Result<(), SinkError> {
        if !self.opts.create_table {
            return Ok(());
        }
        let mut created = self.created.lock().await;
        if created.contains(&t.sql) {
            return Ok(());
        }
        let sql = create_table_sql(&t.db, &t.table, schema);
        c.query_drop(&sql)
            .await
            .map_err(|e| classify(format!("creating table {}", t.name()), e))?;
        created.insert(t.sql.clone());
        Ok(())
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

    /// Builds statements for the records not yet resolved; records that cannot be rendered
    /// get their outcome set.
    fn build(
        &self,
        records: &[Record],
        targets: &[Option<Target>],
        outcomes: &mut [Option<Outcome>],
        single: Option<usize>,
    ) -> Builder {
        let mut b = Builder::new(self.limit);
        let range: Vec<usize> = match single {
            Some(i) => vec![i],
            None => (0..records.len()).collect(),
        };
        for i in range {
            if outcomes[i].is_some() {
                continue;
            }
            let (r, Some(t)) = (&records[i], &targets[i]) else {
                continue;
            };
            for action in actions(r) {
                let delete = matches!(action, Action::Delete(_));
                let piece = match &action {
                    Action::Write => row_tuple(&r.values),
                    Action::Delete(key) => {
                        if !r.has_key() {
                            outcomes[i] = Some(Outcome::Rejected(format!(
                                "table {}, key {}: cannot delete: the schema has no primary key",
                                t.name(),
                                r.key_string(",")
                            )));
                            break;
                        }
                        let cols: Vec<String> = r
                            .schema
                            .primary_key_names()
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                        key_term(&cols, key)
                    }
                };
                let piece = match piece {
                    Ok(p) => p,
                    Err(why) => {
                        outcomes[i] = Some(Outcome::Rejected(format!(
                            "table {}, key {}: {why}",
                            t.name(),
                            r.key_string(",")
                        )));
                        break;
                    }
                };
                // Updates are upserts even in insert modes (the row exists by definition).
                let mode = match (r.op, self.opts.mode) {
                    (Op::Update, WriteMode::Insert | WriteMode::InsertIgnore) => WriteMode::Upsert,
                    (_, m) => m,
                };
                let group = Group {
                    table: t.sql.clone(),
                    delete,
                    mode,
                    schema: r.schema.clone(),
                };
                if !b.push(&group, &piece, i) {
                    outcomes[i] = Some(Outcome::Rejected(format!(
                        "table {}, key {}: the row needs a statement of {} bytes, above the limit of {} (max_allowed_packet)",
                        t.name(),
                        r.key_string(","),
                        piece.len(),
                        self.limit
                    )));
                    break;
                }
            }
            if single.is_some() {
                b.close();
            }
        }
        b.close();
        b
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
                        outcomes[i] =
                            Some(Outcome::Rejected(reject_message(&t, &records[i], &err)));
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

impl MySqlSink {
    /// Applies a table change to the target (see the module docs).
    async fn apply_table_change(
        &self,
        change: &TableChange,
        from: &Target,
        to: Option<&Target>,
    ) -> Result<(), SinkError> {
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        let what = |verb: &str| format!("{change}: {verb} target table {}", from.name());
        match (&change.kind, to) {
            (TableChangeKind::Truncate, _) => {
                match c.query_drop(format!("TRUNCATE TABLE {}", from.sql)).await {
                    Ok(()) => {
                        tracing::info!(%change, target = %from.name(), "target table truncated")
                    }
                    Err(e) => match MySqlError::from_driver(what("truncating"), e) {
                        // Replayed after a later DROP, or never created: nothing to empty.
                        MySqlError::NoTable { .. } => {
                            tracing::info!(%change, target = %from.name(), "target table does not exist: nothing to truncate")
                        }
                        other => return Err(to_sink_error(other)),
                    },
                }
            }
            (TableChangeKind::Drop, _) => {
                c.query_drop(format!("DROP TABLE IF EXISTS {}", from.sql))
                    .await
                    .map_err(|e| classify(what("dropping"), e))?;
                tracing::info!(%change, target = %from.name(), "target table dropped");
            }
            (TableChangeKind::Rename { .. }, Some(to)) => {
                if to.sql == from.sql {
                    tracing::info!(%change, target = %from.name(), "both names have the same target table: nothing to rename");
                } else {
                    let old = table_exists(&mut c, from, change).await?;
                    let new = table_exists(&mut c, to, change).await?;
                    match (old, new) {
                        (true, false) => {
                            c.query_drop(format!("RENAME TABLE {} TO {}", from.sql, to.sql))
                                .await
                                .map_err(|e| {
                                    classify(format!("{change}: renaming target table {} to {}", from.name(), to.name()), e)
                                })?;
                            tracing::info!(%change, from = %from.name(), to = %to.name(), "target table renamed");
                        }
                        (true, true) => {
                            return Err(SinkError::Fatal(format!(
                                "{change}: both target tables {} and {} exist, and renaming would overwrite {}; drop or rename one of them by hand, then run again",
                                from.name(),
                                to.name(),
                                to.name()
                            )))
                        }
                        // Already renamed (the change is replayed after a crash).
                        (false, true) => {
                            tracing::info!(%change, to = %to.name(), "target table already renamed")
                        }
                        (false, false) => {
                            tracing::info!(%change, from = %from.name(), to = %to.name(), "neither target table exists: nothing to rename")
                        }
                    }
                }
            }
            (TableChangeKind::Rename { .. }, None) => {}
        }
        Ok(())
    }

    /// Forgets what the sink knows of `t` (created, schemas compared).
    async fn forget(&self, t: &Target) {
        self.created.lock().await.remove(&t.sql);
        self.followed.forget(&t.sql);
    }
}

/// Whether target table `t` exists.
async fn table_exists(c: &mut Conn, t: &Target, change: &TableChange) -> Result<bool, SinkError> {
    let n: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&t.db, &t.table),
        )
        .await
        .map_err(|e| classify(format!("{change}: looking up target table {}", t.name()), e))?;
    Ok(n.unwrap_or(0) > 0)
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

fn to_sink_error(e: MySqlError) -> SinkError {
    if e.is_transient() {
        SinkError::Transient(e.to_string())
    } else {
        SinkError::Fatal(e.to_string())
    }
}

fn classify(context: String, e: mysql_async::Error) -> SinkError {
    to_sink_error(MySqlError::from_driver(context, e))
}

#[async_trait]
impl Sink for MySqlSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        if let Some(schema) = &ctx.schema {
            let t = self.target(schema.name()).map_err(SinkError::Fatal)?;
            self.ensure_created(&mut c, &t, schema).await?;
            if self.opts.truncate && !ctx.resumed {
                c.query_drop(format!("TRUNCATE TABLE {}", t.sql))
                    .await
                    .map_err(|e| classify(format!("truncating {}", t.name()), e))?;
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
                self.target(r.target_name()).map_err(SinkError::Fatal)?,
            ));
        }
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        if self.opts.create_table {
            let mut seen = HashSet::new();
            for (r, t) in records.iter().zip(&targets) {
                let t = t.as_ref().expect("set above");
                if seen.insert(t.sql.clone()) {
                    self.ensure_created(&mut c, t, &r.schema).await?;
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
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Written))
            .collect())
    }

    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let fatal = |m: String| SinkError::Fatal(format!("{change}: {m}"));
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
                )))
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

    async fn finish(&self) -> Result<(), SinkError> {
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

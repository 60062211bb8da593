//! Unique keys deferred until the load ends ([`crate::SinkOptions::defer_indexes`]).
//!
//! A table the sink creates for a full copy gets its primary key only and the comment
//! [`DEFERRED_KEYS_COMMENT`]. When the unit's last write succeeded, one `ALTER TABLE` adds
//! the unique keys the table lacks and clears the comment, atomically (InnoDB's DDL is
//! crash-safe: after a crash the table has either all the keys and no comment, or none of
//! them and the comment). So the comment is the state, kept where the keys are:
//!
//! - a crash during the load: the run that resumes the unit finds the comment in `prepare`
//!   and adds the keys when the unit ends;
//! - a crash during the `ALTER`, or after it and before the unit was recorded as done: the
//!   unit's end runs again and adds the keys still missing (none if the `ALTER` had ended),
//!   compared by their columns: every key exactly once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use datatrace_core::{Schema, SinkError};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{to_sink_error, MySqlSink, Target};
use crate::ddl::{add_keys_sql, deferred_keys, DEFERRED_KEYS_COMMENT};
use crate::error::MySqlError;

/// A table whose unique keys wait for the end of its unit.
#[derive(Debug, Clone)]
struct Pending {
    db: String,
    table: String,
    sql: String,
    keys: Vec<Vec<String>>,
}

/// The tables with deferred keys, by unit.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    by_unit: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Deferred {
    /// Remembers `t` for `unit` when its comment says that its keys are deferred.
    pub(super) async fn remember(
        &self,
        c: &mut Conn,
        unit: &str,
        t: &Target,
        schema: &Schema,
    ) -> Result<(), SinkError> {
        let keys = deferred_keys(schema);
        if keys.is_empty() || !is_deferred(c, t).await? {
            return Ok(());
        }
        let mut by_unit = self.by_unit.lock().unwrap_or_else(|e| e.into_inner());
        let pending = by_unit.entry(unit.to_string()).or_default();
        if !pending.iter().any(|p| p.sql == t.sql) {
            pending.push(Pending {
                db: t.db.clone(),
                table: t.table.clone(),
                sql: t.sql.clone(),
                keys,
            });
        }
        Ok(())
    }

    /// Takes the tables of `unit`, or of every unit.
    fn take(&self, unit: Option<&str>) -> Vec<Pending> {
        let mut by_unit = self.by_unit.lock().unwrap_or_else(|e| e.into_inner());
        match unit {
            Some(u) => by_unit.remove(u).unwrap_or_default(),
            None => by_unit.drain().flat_map(|(_, p)| p).collect(),
        }
    }

    /// Puts tables back (their build failed: a later finish tries again).
    fn put_back(&self, unit: Option<&str>, pending: Vec<Pending>) {
        let mut by_unit = self.by_unit.lock().unwrap_or_else(|e| e.into_inner());
        by_unit
            .entry(unit.unwrap_or_default().to_string())
            .or_default()
            .extend(pending);
    }
}

impl MySqlSink {
    /// Adds the deferred keys of `unit`'s tables (of every unit's with `None`).
    pub(super) async fn build_deferred(&self, unit: Option<&str>) -> Result<(), SinkError> {
        let pending = self.deferred.take(unit);
        if pending.is_empty() {
            return Ok(());
        }
        let mut c = match self.conn.get().await {
            Ok(c) => c,
            Err(e) => {
                self.deferred.put_back(unit, pending);
                return Err(to_sink_error(e));
            }
        };
        for (i, p) in pending.iter().enumerate() {
            if let Err(e) = add_keys(&mut c, p).await {
                self.deferred.put_back(unit, pending[i..].to_vec());
                return Err(e);
            }
            // The bulk path reads the table's unique keys again.
            self.bulk.forget(&p.sql);
        }
        Ok(())
    }
}

/// Whether `t`'s comment says that its unique keys are still to be added.
async fn is_deferred(c: &mut Conn, t: &Target) -> Result<bool, SinkError> {
    let comment: Option<String> = c
        .exec_first(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&t.db, &t.table),
        )
        .await
        .map_err(|e| {
            to_sink_error(MySqlError::from_driver(
                format!("reading the comment of {}", t.name()),
                e,
            ))
        })?;
    Ok(comment.as_deref() == Some(DEFERRED_KEYS_COMMENT))
}

/// Adds the keys `p`'s table lacks and clears its comment, in one `ALTER TABLE`.
async fn add_keys(c: &mut Conn, p: &Pending) -> Result<(), SinkError> {
    let name = format!("{}.{}", p.db, p.table);
    let t = Target {
        db: p.db.clone(),
        table: p.table.clone(),
        sql: p.sql.clone(),
    };
    // Dropped, renamed or already built meanwhile (a finish that ran again).
    if !is_deferred(c, &t).await? {
        return Ok(());
    }
    let ctx = || format!("reading the unique keys of {name}");
    let rows: Vec<(String, String)> = c
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&p.db, &p.table),
        )
        .await
        .map_err(|e| to_sink_error(MySqlError::from_driver(ctx(), e)))?;
    let mut present: Vec<(String, Vec<String>)> = Vec::new();
    for (index, column) in rows {
        match present.last_mut() {
            Some((i, cols)) if *i == index => cols.push(column.to_lowercase()),
            _ => present.push((index, vec![column.to_lowercase()])),
        }
    }
    let missing: Vec<Vec<String>> = p
        .keys
        .iter()
        .filter(|k| {
            let lower: Vec<String> = k.iter().map(|c| c.to_lowercase()).collect();
            !present.iter().any(|(_, cols)| *cols == lower)
        })
        .cloned()
        .collect();
    let sql = add_keys_sql(&p.db, &p.table, &missing);
    let started = Instant::now();
    c.query_drop(&sql).await.map_err(|e| {
        let err = MySqlError::from_driver(format!("adding the unique keys of {name} deferred until the end of its copy"), e);
        if err.is_data() {
            // A duplicate: the rows break a unique key of the source's schema.
            SinkError::fatal(format!(
                "{err}: the copied rows break a unique key; remove the duplicates from {name} and run the job again (the keys are added when the copy ends), or set defer_indexes = false to have such rows rejected one by one during the copy"
            ))
        } else {
            to_sink_error(err)
        }
    })?;
    tracing::info!(
        target = %name,
        keys = missing.len(),
        secs = started.elapsed().as_secs_f64(),
        "added the unique keys deferred until the end of the copy"
    );
    Ok(())
}

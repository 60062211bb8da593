//! How the MySQL sink follows schema changes of a change stream ([`SchemaChanges`]).
//!
//! Records of a binlog stream carry the table's schema as it is after each DDL statement. When
//! the sink sees a schema it has not checked for a target table, it compares it with the
//! target's columns: a column the target lacks was added at the source (`ADD COLUMN`, or the
//! new name of a `RENAME COLUMN`), a column whose type differs was modified (`MODIFY`).
//! `apply` adds / modifies those columns in the target (`ALTER TABLE`); `fail` stops the
//! unit with an error naming table and columns. Target columns the source no longer has
//! (`DROP COLUMN`, the old name of a renamed column) are left in place, and get NULL in rows
//! written since: the target keeps the data it had.

use std::sync::Arc;

use datatrace_core::{Schema, SinkError};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};

use crate::ddl::{mapped_type, usable_native};
use crate::sql::ident;

/// What the MySQL sink does when the source schema gains or changes columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaChanges {
    /// Do not compare (full copies; the default of [`crate::MySqlSink::new`]).
    #[default]
    Ignore,
    /// `ALTER TABLE` the target: add new columns, modify changed ones.
    Apply,
    /// Stop with an error naming the table and the columns.
    Fail,
}

/// Schemas already compared, per target table (kept alive so their addresses stay unique).
#[derive(Default)]
pub(crate) struct Followed {
    seen: std::sync::Mutex<Vec<(String, Arc<Schema>)>>,
}

impl Followed {
    /// Forgets the schemas compared for target `sql` (a table dropped or renamed).
    pub(crate) fn forget(&self, sql: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(t, _)| t != sql);
    }

    /// Compares `schema` with target `db.table` (`sql` is its quoted name) once per schema.
    pub(crate) async fn check(
        &self,
        policy: SchemaChanges,
        c: &mut Conn,
        db: &str,
        table: &str,
        sql: &str,
        schema: &Arc<Schema>,
    ) -> Result<(), SinkError> {
        if policy == SchemaChanges::Ignore {
            return Ok(());
        }
        {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.iter().any(|(t, s)| t == sql && Arc::ptr_eq(s, schema)) {
                return Ok(());
            }
        }
        let cols: Vec<(String, String)> = c
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(|e| {
                SinkError::transient(e).context(format!("reading the columns of {db}.{table}"))
            })?;
        if !cols.is_empty() {
            let (added, changed) = differences(schema, &cols);
            if !added.is_empty() || !changed.is_empty() {
                apply(policy, c, db, table, sql, &added, &changed).await?;
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 256 {
            seen.remove(0);
        }
        seen.push((sql.to_string(), schema.clone()));
        Ok(())
    }
}

/// A column the target lacks or has with another type: its name and the type it should have.
type ColumnChange = (String, String);

/// The source's columns the target lacks (`added`) and those whose native type differs
/// (`changed`), compared with the target's `(name, COLUMN_TYPE)` list.
fn differences(
    schema: &Schema,
    cols: &[(String, String)],
) -> (Vec<ColumnChange>, Vec<ColumnChange>) {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for col in schema.columns() {
        let want = usable_native(col)
            .map(str::to_string)
            .unwrap_or_else(|| mapped_type(col.data_type, false));
        let base = want
            .to_ascii_lowercase()
            .split(" character set")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        match cols.iter().find(|(n, _)| n.eq_ignore_ascii_case(&col.name)) {
            None => added.push((col.name.clone(), want)),
            Some((_, have))
                if usable_native(col).is_some() && have.to_ascii_lowercase() != base =>
            {
                changed.push((col.name.clone(), want))
            }
            Some(_) => {}
        }
    }
    (added, changed)
}

/// Follows a schema change on the target: refused under `fail`, else one `ALTER TABLE`.
async fn apply(
    policy: SchemaChanges,
    c: &mut Conn,
    db: &str,
    table: &str,
    sql: &str,
    added: &[ColumnChange],
    changed: &[ColumnChange],
) -> Result<(), SinkError> {
    let names = |v: &[ColumnChange]| {
        v.iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if policy == SchemaChanges::Fail {
        return Err(SinkError::Fatal(format!(
            "table {db}.{table}: the source schema changed (added: [{}], changed: [{}]) and schema_changes = \"fail\": change the target table, then run again",
            names(added),
            names(changed)
        ).into()));
    }
    let mut parts = Vec::new();
    for (n, t) in added {
        parts.push(format!("ADD COLUMN {} {t} NULL", ident(n)));
    }
    for (n, t) in changed {
        parts.push(format!("MODIFY COLUMN {} {t} NULL", ident(n)));
    }
    let alter = format!("ALTER TABLE {sql} {}", parts.join(", "));
    c.query_drop(&alter).await.map_err(|e| {
        SinkError::Fatal(
            format!("table {db}.{table}: applying the source's schema change ({alter}): {e}")
                .into(),
        )
    })?;
    tracing::info!(table = %format!("{db}.{table}"), %alter, "schema change applied to the target");
    Ok(())
}

//! Checks that need the data, run by `validate`: how many documents a shared row reaches
//! (fan-out), and foreign keys whose cascades would change rows behind the binlog's back.
//!
//! **Fan-out.** A change to a row of a `many_to_one` or `many_to_many` relation (a product)
//! rebuilds every document that embeds it. For each such relation the check finds the
//! busiest related row and counts the distinct documents it reaches (the lookup's own join
//! chain, grouped): above the document's `max_fan_out` it is an error naming the relation,
//! the row and the count. It reads the tables in full once: it runs in `validate`, not
//! before every run.
//!
//! **Cascades.** `ON DELETE/UPDATE CASCADE`, `SET NULL` and `SET DEFAULT` are applied by the
//! storage engine, and the rows they change are not written to the binlog as row events, so
//! no change stream sees them: a stream of documents reading such a table would keep stale
//! documents. Streams refuse them ([`check_cascades`]).

use datatrace_core::Value;
use datatrace_mysql::types::ColumnKind;
use datatrace_mysql::MySqlConnection;
use mysql_async::prelude::Queryable;

use crate::clock::Clock;
use crate::definition::{Definition, Link};
use crate::error::{DenormalError, InDocument, Result};
use crate::keys::key_string;
use crate::stream::lookup::{self, Hop, Start};

/// The busiest related row of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct FanOut {
    /// The relation's path (`items.product`).
    pub relation: String,
    /// The related row's link values.
    pub row: Vec<Value>,
    /// Documents that embed it.
    pub documents: u64,
}

/// The busiest related row of every `many_to_one` and `many_to_many` relation of `def`.
pub async fn fan_outs(def: &Definition, clock: &Clock) -> Result<Vec<FanOut>> {
    let mut out = Vec::new();
    for (i, n) in def.nodes.iter().enumerate() {
        let (hop, kinds): (Hop, Vec<ColumnKind>) = match &n.link {
            Some(Link::ParentHolds { fk, .. }) => {
                let p = &def.nodes[n.parent.unwrap_or(0)];
                (
                    Hop::Columns(fk.clone()),
                    fk.iter().map(|&c| p.table.kinds[c]).collect(),
                )
            }
            Some(Link::Through {
                table, target_key, ..
            }) => (
                Hop::Through { via: i },
                target_key.iter().map(|&c| table.kinds[c]).collect(),
            ),
            _ => continue,
        };
        let start = Start {
            def: 0,
            kind: n.kind,
            level: n.parent.unwrap_or(0),
            hop,
        };
        let (st, width) = lookup::fan_out(def, &start);
        let mut kinds = kinds;
        kinds.push(ColumnKind::Int { unsigned: true });
        let mut txn = clock.begin(None).await?;
        let what = format!("measuring the fan-out of {}", def.path(i));
        let rows = txn.rows(&st, &kinds, &what).await?;
        txn.finish().await?;
        if let Some(mut row) = rows.into_iter().next() {
            let count = row.pop().and_then(|v| v.as_u64()).unwrap_or(0);
            row.truncate(width);
            out.push(FanOut {
                relation: def.path(i),
                row,
                documents: count,
            });
        }
    }
    Ok(out)
}

/// Fails when a relation's busiest related row reaches more documents than
/// `max_fan_out` (see the module docs).
pub async fn check_fan_out(def: &Definition, clock: &Clock) -> Result<Vec<FanOut>> {
    let found = fan_outs(def, clock).await?;
    for f in &found {
        if f.documents > def.spec.max_fan_out {
            return Err(DenormalError::definition(
                def.name(),
                Some(&f.relation),
                format!(
                    "the row {} is embedded in {} documents, above max_fan_out ({}): each change to it rebuilds all of them; raise max_fan_out if that is acceptable, or leave the relation out (or make it a child document)",
                    key_string(&f.row, ", "),
                    f.documents,
                    def.spec.max_fan_out
                ),
            ));
        }
    }
    Ok(found)
}

/// Fails when a table of `def` is the referencing side of a foreign key with a cascading
/// action (see the module docs).
pub async fn check_cascades(def: &Definition, conn: &MySqlConnection) -> Result<()> {
    let tables = def.tables();
    let mut c = conn.get().await.in_doc(def.name())?;
    let rows: Vec<(String, String, String, String, String, String)> = c
        .query(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, \
             UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
             OR DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT')",
        )
        .await
        .map_err(|e| datatrace_mysql::MySqlError::from_driver("reading foreign keys", e))
        .in_doc(def.name())?;
    for (db, table, name, referenced, upd, del) in rows {
        if !tables.contains(&(db.clone(), table.clone())) {
            continue;
        }
        let relation = def
            .nodes
            .iter()
            .enumerate()
            .find(|(_, n)| {
                (n.table.database == db && n.table.name == table)
                    || matches!(&n.link, Some(Link::Through { table: j, .. }) if j.database == db && j.name == table)
            })
            .map(|(i, _)| def.path(i));
        return Err(DenormalError::definition(
            def.name(),
            relation.as_deref(),
            format!(
                "foreign key {name} of {db}.{table} (referencing {referenced}) has ON UPDATE {upd} ON DELETE {del}: the rows such actions change are not written to the binlog, so a change stream cannot follow them; use RESTRICT or NO ACTION and change the rows explicitly, or copy these documents without a stream (mode = \"full\")"
            ),
        ));
    }
    Ok(())
}

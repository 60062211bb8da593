//! `check` of MySQL tables: a table as either side of a unit (scans in key ranges, lookups
//! by key with `WHERE key IN (..)`, through the MySQL source's own reader so that values
//! come out exactly as a copy reads them), and range checksums on both servers when both
//! sides are MySQL tables of the same shape.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{DataType, Part, Record, Schema, Source, Value};
use datatrace_mysql::checksum::range_checksum;
use datatrace_mysql::chunk::ChunkSpec;
use datatrace_mysql::{table_info, MySqlConnection, SourceOptions, TableInfo};

use crate::check::normalize::{row_doc, Doc, FieldRule, Rules};
use crate::check::side::{table_key, CheckSource, CheckTarget, RangeChecksum, TargetKey, R};
use crate::connectors::api::{CheckSourceConn, CheckTargetConn};
use crate::plan::PlannedUnit;

pub use super::table::MySqlTable;

/// A MySQL table's shape, with the key the source uses.
async fn mysql_table(
    conn: &MySqlConnection,
    qualified: &str,
    key_columns: &[String],
    keys: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<TableInfo, String> {
    let (db, table) = qualified
        .split_once('.')
        .ok_or_else(|| format!("{qualified}: expected db.table"))?;
    // A table without a key is compared as a multiset of rows (`check::multiset`).
    table_info(conn, db, table)
        .await
        .map_err(|e| e.to_string())?
        .with_key_settings(key_columns, keys)
        .map_err(|e| e.to_string())
}

/// Same columns (names, types, charsets) and key: checksums are comparable.
fn same_shape(a: &TableInfo, b: &TableInfo) -> bool {
    let (x, y) = (a.schema.columns(), b.schema.columns());
    x.len() == y.len()
        && x.iter()
            .zip(y)
            .all(|(p, q)| p.name == q.name && p.native_type == q.native_type)
        && a.key_names() == b.key_names()
}

/// A MySQL source connected for `check`.
pub struct MySqlCheckSourceConn {
    /// The server.
    pub conn: MySqlConnection,
    /// The source's read settings.
    pub opts: SourceOptions,
}

#[async_trait]
impl CheckSourceConn for MySqlCheckSourceConn {
    async fn unit(&self, unit: &PlannedUnit) -> Result<Box<dyn CheckSource>, String> {
        let table = mysql_table(
            &self.conn,
            &unit.name,
            &self.opts.key_columns,
            &self.opts.key,
        )
        .await?;
        Ok(Box::new(MySqlTable {
            conn: self.conn.clone(),
            table,
            opts: SourceOptions {
                consistent_snapshot: false,
                ..self.opts.clone()
            },
        }))
    }
}

/// A MySQL target connected for `check`.
pub struct MySqlCheckTargetConn {
    /// The server.
    pub conn: MySqlConnection,
}

#[async_trait]
impl CheckTargetConn for MySqlCheckTargetConn {
    async fn unit(
        &self,
        unit: &PlannedUnit,
        source: &dyn CheckSource,
    ) -> Result<Box<dyn CheckTarget>, String> {
        let table = mysql_table(&self.conn, &unit.target, &[], &Default::default())
            .await
            .map_err(|e| format!("target: {e}"))?;
        // Zero dates read as the source reads them.
        let zero_date = source
            .as_any()
            .downcast_ref::<MySqlTable>()
            .map(|s| s.opts.zero_date)
            .unwrap_or_default();
        Ok(Box::new(MySqlTable {
            conn: self.conn.clone(),
            table,
            opts: SourceOptions {
                zero_date,
                ..Default::default()
            },
        }))
    }
}

#[async_trait]
impl CheckSource for MySqlTable {
    fn key_of(&self, r: &Record) -> Vec<Value> {
        MySqlTable::key_of(self, r)
    }

    fn key_for(&self, tk: &TargetKey, target: &dyn CheckTarget) -> Option<Vec<Value>> {
        let types: Vec<DataType> = self
            .table
            .key
            .iter()
            .map(|&i| self.table.schema.columns()[i].data_type)
            .collect();
        target.key_parts(tk, &types)
    }

    async fn parts(&self, chunk_rows: u64, _parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)> {
        let (s, p) = MySqlTable::parts(self, chunk_rows).await?;
        Ok((s, p))
    }

    async fn lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        MySqlTable::lookup(self, keys).await
    }

    fn checksum(
        &self,
        target: &dyn CheckTarget,
        copied_as_is: bool,
    ) -> Option<Arc<dyn RangeChecksum>> {
        let tgt = target.as_any().downcast_ref::<MySqlTable>()?;
        let comparable =
            copied_as_is && self.opts.filter.is_none() && same_shape(&self.table, &tgt.table);
        comparable.then(|| {
            Arc::new(MySqlChecksum {
                source: self.clone(),
                target: tgt.clone(),
            }) as Arc<dyn RangeChecksum>
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl CheckTarget for MySqlTable {
    fn key_of(&self, tr: &Record, unit: &str, target: &str) -> R<TargetKey> {
        let mut key = Vec::with_capacity(self.table.key.len());
        for name in self.key_names() {
            match tr.get(&name) {
                Some(v) => key.push(v.clone()),
                None => {
                    return Err(format!(
                        "key column {name} of the target table {target} is not in the rows of {unit} after the transforms"
                    ))
                }
            }
        }
        Ok(table_key(key))
    }

    fn doc_of(&self, tr: &Record, _unit: &str) -> R<Doc> {
        Ok(row_doc(
            tr.schema.columns().iter().map(|c| c.name.clone()),
            &tr.values,
        ))
    }

    fn row(&self, r: &Record) -> (TargetKey, Doc) {
        (
            table_key(MySqlTable::key_of(self, r)),
            row_doc(r.schema.columns().iter().map(|c| c.name.clone()), &r.values),
        )
    }

    async fn lookup(&self, keys: &[TargetKey]) -> R<Vec<Record>> {
        let ks: Vec<Vec<Value>> = keys.iter().map(|k| k.key.clone()).collect();
        MySqlTable::lookup(self, &ks).await
    }

    async fn parts(&self, chunk_rows: u64, _parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)> {
        let (s, p) = MySqlTable::parts(self, chunk_rows).await?;
        Ok((s, p))
    }

    fn key_parts(&self, tk: &TargetKey, types: &[DataType]) -> Option<Vec<Value>> {
        (tk.key.len() == types.len()).then(|| tk.key.clone())
    }

    fn rules(&self) -> Rules {
        use datatrace_mysql::types::ColumnKind;
        self.table
            .schema
            .columns()
            .iter()
            .zip(&self.table.kinds)
            .filter_map(|(c, k)| {
                let rule = match k {
                    ColumnKind::Float => FieldRule::Float32,
                    ColumnKind::JsonText => FieldRule::JsonText,
                    ColumnKind::Json => FieldRule::Json,
                    _ => return None,
                };
                Some((c.name.clone(), rule))
            })
            .collect()
    }

    fn id_text(&self, tk: &TargetKey) -> String {
        tk.display()
    }

    fn delete_values(
        &self,
        t: &TargetKey,
        schema: &Schema,
        unit: &str,
        target: &str,
    ) -> R<Vec<Value>> {
        let mut values = vec![Value::Null; schema.len()];
        for (name, v) in self.key_names().iter().zip(&t.key) {
            let i = schema.index_of(name).ok_or_else(|| {
                format!("unit {unit}: key column {name} of {target} is not in the copied rows")
            })?;
            values[i] = v.clone();
        }
        Ok(values)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Range checksums of two MySQL tables of the same shape.
struct MySqlChecksum {
    source: MySqlTable,
    target: MySqlTable,
}

#[async_trait]
impl RangeChecksum for MySqlChecksum {
    async fn ranges(&self, chunk_rows: u64) -> R<(Arc<dyn Source>, Arc<dyn Source>, Vec<Part>)> {
        let (source, parts) = self.source.parts(chunk_rows).await?;
        let target = self.target.source(SourceOptions {
            consistent_snapshot: false,
            ..self.target.opts.clone()
        })?;
        Ok((source, target, parts))
    }

    async fn compare(&self, range: &Part) -> R<(u64, u64, bool)> {
        let spec = ChunkSpec::from_part(range).map_err(|e| e.to_string())?;
        let (lo, hi) = (spec.lo.as_deref(), spec.hi.as_deref());
        let (src, tgt) = (&self.source, &self.target);
        let filter = src.opts.filter.as_deref();
        let (a, b) = tokio::try_join!(
            range_checksum(&src.conn, &src.table, lo, hi, filter),
            range_checksum(&tgt.conn, &tgt.table, lo, hi, None),
        )
        .map_err(|e| e.to_string())?;
        Ok((a.rows, b.rows, a == b))
    }

    async fn narrow(&self, range: &Part, rows: (u64, u64), leaf_rows: u64) -> R<Vec<Part>> {
        super::narrow::narrow(&self.source, &self.target, range, rows, leaf_rows).await
    }
}

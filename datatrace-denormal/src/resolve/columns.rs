//! Finding the tables and columns a definition names, with errors that list what exists,
//! and the selected columns, transforms and order of a node ([`Shaped`]).

use std::sync::Arc;

use datatrace_core::transforms::{build_specs, check_specs, TransformSpec};
use datatrace_mysql::{table_info, MySqlError, TableInfo};

use super::{Resolver, Shaped};
use crate::error::{DenormalError, Result};

impl Resolver<'_> {
    /// `db.table`, or `table` in `default_db`.
    pub(super) fn split<'n>(
        &self,
        rel: Option<&str>,
        name: &'n str,
        default_db: Option<&'n str>,
    ) -> Result<(String, String)> {
        match name.split_once('.') {
            Some((d, t)) => Ok((d.to_string(), t.to_string())),
            None => default_db
                .map(|d| (d.to_string(), name.to_string()))
                .ok_or_else(|| {
                    self.err(
                        rel,
                        format!("table {name:?} has no database and the connection URL names none: write it as db.table"),
                    )
                }),
        }
    }

    pub(super) async fn table(
        &mut self,
        rel: Option<&str>,
        db: &str,
        name: &str,
        key: &[String],
    ) -> Result<Arc<TableInfo>> {
        let k = (db.to_string(), name.to_string());
        let info = match self.tables.get(&k) {
            Some(t) => (**t).clone(),
            None => {
                let t = table_info(self.conn, db, name).await.map_err(|e| match e {
                    MySqlError::NoTable { .. } => {
                        self.err(rel, format!("table {db}.{name} not found"))
                    }
                    other => DenormalError::MySql {
                        document: self.spec.name.clone(),
                        source: other,
                    },
                })?;
                self.tables.insert(k, Arc::new(t.clone()));
                t
            }
        };
        if key.is_empty() {
            return Ok(Arc::new(info));
        }
        let t = info
            .with_key_columns(key)
            .map_err(|e| self.err(rel, format!("key: {e}")))?;
        Ok(Arc::new(t))
    }

    pub(super) fn columns(
        &self,
        rel: Option<&str>,
        what: &str,
        table: &TableInfo,
        names: &[String],
    ) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                table.schema.index_of(n).ok_or_else(|| {
                    let have: Vec<&str> = table
                        .schema
                        .columns()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    self.err(
                        rel,
                        format!(
                            "{what}: column {n:?} not found in {} (columns: {})",
                            table.qualified_name(),
                            have.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }

    /// `names`, or else the table's key (an error when it has none).
    pub(super) fn refs(
        &self,
        rel: Option<&str>,
        what: &str,
        table: &TableInfo,
        names: &[String],
    ) -> Result<Vec<usize>> {
        if !names.is_empty() {
            return self.columns(rel, what, table, names);
        }
        if table.key.is_empty() {
            return Err(self.err(
                rel,
                format!(
                    "{what}: {} has no primary key to reference; name the referenced columns",
                    table.qualified_name()
                ),
            ));
        }
        Ok(table.key.clone())
    }

    /// Selected columns, transforms, output schema, scalar and order of a node.
    pub(super) fn shape_of(
        &self,
        rel: Option<&str>,
        table: &TableInfo,
        columns: &[String],
        transforms: &[TransformSpec],
        scalar: Option<&str>,
        order_by: &[String],
    ) -> Result<Shaped> {
        let mut input = if columns.is_empty() {
            (0..table.schema.len()).collect()
        } else {
            self.columns(rel, "columns", table, columns)?
        };
        input.sort_unstable();
        input.dedup();
        let cols = input
            .iter()
            .map(|&i| table.schema.columns()[i].clone())
            .collect();
        let input_schema = Arc::new(table.schema.derive(cols));
        let built =
            build_specs(transforms).map_err(|e| self.err(rel, format!("transforms: {e}")))?;
        let output = check_specs(transforms, &input_schema)
            .map_err(|e| self.err(rel, format!("transforms: {e}")))?;
        let scalar = match scalar {
            None => None,
            Some(s) => Some(output.index_of(s).ok_or_else(|| {
                let have: Vec<&str> = output.columns().iter().map(|c| c.name.as_str()).collect();
                self.err(
                    rel,
                    format!("scalar: field {s:?} is not among the relation's fields (after transforms: {})", have.join(", ")),
                )
            })?),
        };
        let mut order = Vec::new();
        for o in order_by {
            let (name, desc) = match o.strip_prefix('-') {
                Some(n) => (n.to_string(), true),
                None => (o.clone(), false),
            };
            let i = self.columns(rel, "order_by", table, &[name])?[0];
            order.push((i, desc));
        }
        Ok(Shaped {
            input,
            input_schema,
            transforms: built,
            output_schema: output,
            scalar,
            order_by: order,
        })
    }

    pub(super) fn same_len(&self, rel: Option<&str>, what: &str, a: usize, b: usize) -> Result<()> {
        if a == b {
            Ok(())
        } else {
            Err(self.err(rel, format!("{what} has {a} column(s) but references {b}")))
        }
    }
}

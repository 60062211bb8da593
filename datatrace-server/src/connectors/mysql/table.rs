//! A MySQL table as `check` reads it: scans in key ranges and lookups by key through the
//! MySQL source's own reader, so values come out exactly as a copy reads them.

use std::sync::Arc;

use datatrace_core::{Part, Record, Source, Value};
use datatrace_mysql::types::write_literal;
use datatrace_mysql::{MySqlConnection, MySqlSource, SourceOptions, TableInfo};

use crate::check::side::{read_all, R};

/// `` `a` IN (1, 2) `` for a single-column key, `` (`a` = 1 AND `b` = 'x') OR .. `` for a
/// composite one: a row constructor `(a, b) IN ((..), (..))` with several rows misses rows
/// whose text columns are in another character set than the connection (MariaDB compares
/// the rows of such a list under a common collation), which would report them as extra.
pub fn in_condition(key_names: &[String], keys: &[Vec<Value>]) -> R<String> {
    let cols: Vec<String> = key_names
        .iter()
        .map(|c| datatrace_mysql::sql::ident(c))
        .collect();
    let single = cols.len() == 1;
    let mut sql = if single {
        format!("{} IN (", cols[0])
    } else {
        "(".to_string()
    };
    for (i, key) in keys.iter().enumerate() {
        if key.len() != key_names.len() {
            return Err(format!(
                "key {:?} does not have the {} column(s) of the key ({})",
                key.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                key_names.len(),
                key_names.join(", ")
            ));
        }
        if i > 0 {
            sql.push_str(if single { ", " } else { " OR " });
        }
        if !single {
            sql.push('(');
        }
        for (j, (c, v)) in cols.iter().zip(key).enumerate() {
            if !single {
                if j > 0 {
                    sql.push_str(" AND ");
                }
                sql.push_str(c);
                sql.push_str(" = ");
            }
            write_literal(&mut sql, v).map_err(|e| format!("key value {v}: {e}"))?;
        }
        if !single {
            sql.push(')');
        }
    }
    sql.push(')');
    Ok(sql)
}

/// A MySQL table as the check reads it.
#[derive(Clone)]
pub struct MySqlTable {
    /// The server.
    pub conn: MySqlConnection,
    /// The table, with the key the reads use.
    pub table: TableInfo,
    /// Read settings (zero dates, filter, key columns, chunk size).
    pub opts: SourceOptions,
}

impl MySqlTable {
    /// A reader of this table with extra settings.
    pub fn source(&self, opts: SourceOptions) -> R<Arc<MySqlSource>> {
        MySqlSource::new(self.conn.clone(), self.table.clone(), opts)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// The key column names.
    pub fn key_names(&self) -> Vec<String> {
        self.table.key_names()
    }

    /// The key of one of its records.
    pub fn key_of(&self, r: &Record) -> Vec<Value> {
        self.table
            .key
            .iter()
            .map(|&i| r.values.get(i).cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// Key ranges of about `chunk_rows` rows each, tiling the key space.
    pub async fn parts(&self, chunk_rows: u64) -> R<(Arc<MySqlSource>, Vec<Part>)> {
        let opts = SourceOptions {
            chunk_rows: chunk_rows.max(1),
            consistent_snapshot: false,
            ..self.opts.clone()
        };
        let source = self.source(opts)?;
        let parts = source.split(1_000_000).await.map_err(|e| e.to_string())?;
        Ok((source, parts))
    }

    /// The rows with these keys (those the `filter`, if any, keeps).
    pub async fn lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cond = in_condition(&self.key_names(), keys)?;
        let filter = match &self.opts.filter {
            Some(f) => format!("({f}) AND {cond}"),
            None => cond,
        };
        let opts = SourceOptions {
            filter: Some(filter),
            consistent_snapshot: false,
            page_rows: (keys.len() as u64 + 1).max(100),
            ..self.opts.clone()
        };
        let source = self.source(opts)?;
        read_all(source, vec![Part::whole()]).await
    }
}

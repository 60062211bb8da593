//! Range checksums for verification (`datatrace check`): the row count and an
//! order-independent hash of the rows of one key range, computed by the server itself
//! (pt-table-checksum's method), so that two copies of a table can be compared chunk by
//! chunk without moving the rows.
//!
//! The hash is `BIT_XOR(CRC32(CONCAT_WS('#', c1, c2, .., CONCAT(ISNULL(c1), ISNULL(c2), ..))))`
//! over the rows of the range: the NULL flags make NULL differ from an empty string,
//! binary and geometry columns are hashed as `HEX()`, BIT columns as numbers, everything
//! else as the server prints it. Two servers give the same answer for the same rows when the
//! column types are the same (compare [`TableInfo::schema`] columns first); a difference in
//! a column type must be compared row by row instead.

use datatrace_core::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Params;

use crate::connect::{keep_warm, MySqlConnection, ServerInfo};
use crate::error::{Context, Result};
use crate::schema::TableInfo;
use crate::sql::{ident, key_after, key_at_most, table_ref};
use crate::types::{to_param, ColumnKind};

/// The count and hash of the rows of a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeChecksum {
    /// Rows in the range.
    pub rows: u64,
    /// `BIT_XOR` of the per-row CRC32 (0 for no rows).
    pub hash: u64,
}

/// Whether the server has `JSON_NORMALIZE` (MariaDB 10.7+). MariaDB's JSON columns are
/// text copied byte for byte and hashed as text; columns of MySQL's JSON type are hashed
/// through `JSON_NORMALIZE` where the server has it.
pub fn has_json_normalize(info: &ServerInfo) -> bool {
    if !info.is_mariadb {
        return false;
    }
    let mut nums = info
        .version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    (major, minor) >= (10, 7)
}

/// The per-row expression hashed by [`range_checksum`] for `table`; `normalize_json`: hash
/// JSON columns through `JSON_NORMALIZE` (see [`has_json_normalize`]).
pub fn row_hash_expr(table: &TableInfo, normalize_json: bool) -> String {
    let mut parts = Vec::with_capacity(table.kinds.len() + 1);
    let mut nulls = Vec::with_capacity(table.kinds.len());
    for (col, kind) in table.schema.columns().iter().zip(&table.kinds) {
        let c = ident(&col.name);
        parts.push(match kind {
            ColumnKind::Binary | ColumnKind::Geometry => format!("HEX({c})"),
            ColumnKind::Bit(_) => format!("CAST({c} AS UNSIGNED)"),
            ColumnKind::Json if normalize_json => format!("JSON_NORMALIZE({c})"),
            _ => c.clone(),
        });
        nulls.push(format!("ISNULL({c})"));
    }
    parts.push(format!("CONCAT({})", nulls.join(", ")));
    format!("CRC32(CONCAT_WS('#', {}))", parts.join(", "))
}

/// The condition "key in `(lo, hi]`" (`None`: unbounded) and an optional extra condition
/// (trusted SQL, e.g. a source `filter`), as ` WHERE ..` (empty when there is none), with
/// its parameters.
pub fn range_where(
    table: &TableInfo,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    filter: Option<&str>,
) -> (String, Vec<Value>) {
    let keys = table.key_names();
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(lo) = lo {
        let (s, p) = key_after(&keys, lo);
        conds.push(s);
        params.extend(p);
    }
    if let Some(hi) = hi {
        let (s, p) = key_at_most(&keys, hi);
        conds.push(s);
        params.extend(p);
    }
    if let Some(f) = filter {
        conds.push(format!("({f})"));
    }
    if conds.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", conds.join(" AND ")), params)
    }
}

/// The SQL of [`range_checksum`] and its parameters: rows with key in `(lo, hi]` (`None`:
/// unbounded), with an optional extra condition (trusted SQL, e.g. a source `filter`).
pub fn range_checksum_sql(
    table: &TableInfo,
    normalize_json: bool,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    filter: Option<&str>,
) -> (String, Vec<Value>) {
    let (cond, params) = range_where(table, lo, hi, filter);
    let sql = format!(
        "SELECT COUNT(*), COALESCE(BIT_XOR({}), 0) FROM {}{cond}",
        row_hash_expr(table, normalize_json),
        table_ref(&table.database, &table.name)
    );
    (sql, params)
}

/// Counts and hashes the rows of `table` whose key is in `(lo, hi]`.
pub async fn range_checksum(
    conn: &MySqlConnection,
    table: &TableInfo,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    filter: Option<&str>,
) -> Result<RangeChecksum> {
    let normalize = has_json_normalize(conn.info());
    let (sql, params) = range_checksum_sql(table, normalize, lo, hi, filter);
    let params: Vec<mysql_async::Value> = params.iter().map(to_param).collect();
    let params = if params.is_empty() {
        Params::Empty
    } else {
        Params::Positional(params)
    };
    let mut c = conn.get().await?;
    let row: Option<(u64, u64)> = c
        .exec_first(sql, params)
        .await
        .ctx(|| format!("checksumming {}", table.qualified_name()))?;
    keep_warm(&mut c);
    let (rows, hash) = row.unwrap_or((0, 0));
    Ok(RangeChecksum { rows, hash })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datatrace_core::{Column, DataType, Schema};

    use super::*;
    use crate::schema::KeySource;

    #[test]
    fn sql_hashes_every_column_with_null_flags() {
        let schema = Schema::new(
            "t",
            vec![
                Column::new("id", DataType::Int),
                Column::new("b", DataType::Bytes),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap();
        let table = TableInfo {
            database: "d".into(),
            name: "t".into(),
            schema: Arc::new(schema),
            kinds: vec![ColumnKind::Int { unsigned: false }, ColumnKind::Binary],
            key: vec![0],
            key_source: KeySource::Primary,
            estimated_rows: 0,
        };
        let (sql, params) = range_checksum_sql(
            &table,
            true,
            Some(&[Value::Int(1)]),
            Some(&[Value::Int(9)]),
            None,
        );
        assert_eq!(
            sql,
            "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', `id`, HEX(`b`), \
             CONCAT(ISNULL(`id`), ISNULL(`b`))))), 0) FROM `d`.`t` WHERE (`id` > ?) AND (`id` <= ?)"
        );
        assert_eq!(params, vec![Value::Int(1), Value::Int(9)]);
    }
}

//! Narrowing a key range whose checksums differ (`datatrace check`, pt-table-sync's way):
//! the range is cut into sub-ranges of about equal row counts at keys the server picks
//! ([`split_keys`]), and every sub-range is checksummed on each server in one query
//! ([`split_checksums`]), so that only the sub-ranges that differ are looked at further,
//! and scattered differences never pull whole chunks of rows into the client.

use datatrace_core::Value;
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row};

use crate::checksum::{has_json_normalize, range_where, row_hash_expr, RangeChecksum};
use crate::connect::{keep_warm, MySqlConnection};
use crate::error::{Context, MySqlError, Result};
use crate::schema::TableInfo;
use crate::sql::{column_list, key_at_most, table_ref};
use crate::types::{decode, to_param, DecodeError};

fn params(values: &[Value]) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values.iter().map(to_param).collect())
    }
}

/// Whether the server has window functions (`ROW_NUMBER() OVER`): MariaDB 10.2+, MySQL 8+.
fn has_window_functions(conn: &MySqlConnection) -> bool {
    let info = conn.info();
    let mut nums = info
        .version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if info.is_mariadb {
        (major, minor) >= (10, 2)
    } else {
        major >= 8
    }
}

/// The key of a row of key columns, decoded as the table's reader decodes keys (a zero
/// date in a key column stays text).
fn decode_key(table: &TableInfo, row: Row) -> Result<Vec<Value>> {
    row.unwrap()
        .into_iter()
        .zip(&table.key)
        .map(|(v, &i)| match decode(table.kinds[i], v) {
            Err(DecodeError::ZeroDate(text)) => Ok(Value::String(text)),
            other => other.map_err(|e| MySqlError::Data {
                context: format!(
                    "table {}, key column {}",
                    table.qualified_name(),
                    table.schema.columns()[i].name
                ),
                message: format!("{e:?}"),
            }),
        })
        .collect()
}

/// Every `step`-th key (in key order) of the rows of `table` with key in `(lo, hi]`: the
/// upper bounds of sub-ranges of `step` rows (the last sub-range ends at `hi`). One
/// index-ordered scan of the range on the server; servers without window functions send
/// the range's keys and the client picks.
pub async fn split_keys(
    conn: &MySqlConnection,
    table: &TableInfo,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    step: u64,
) -> Result<Vec<Vec<Value>>> {
    let step = step.max(1);
    let cols = column_list(&table.key_names());
    let (cond, values) = range_where(table, lo, hi, None);
    let from = table_ref(&table.database, &table.name);
    let window = has_window_functions(conn);
    let sql = if window {
        format!(
            "SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (ORDER BY {cols}) AS datatrace_rn \
             FROM {from}{cond}) AS datatrace_keys WHERE datatrace_rn % {step} = 0 ORDER BY {cols}"
        )
    } else {
        format!("SELECT {cols} FROM {from}{cond} ORDER BY {cols}")
    };
    let ctx = || format!("splitting a key range of {}", table.qualified_name());
    let mut c = conn.get().await?;
    let rows: Vec<Row> = c.exec(sql, params(&values)).await.ctx(ctx)?;
    keep_warm(&mut c);
    let picked = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| window || (*i as u64 + 1).is_multiple_of(step))
        .map(|(_, row)| decode_key(table, row));
    picked.collect()
}

/// The count and hash ([`RangeChecksum`], as [`crate::checksum::range_checksum`] computes
/// them) of each sub-range `(lo, b1], (b1, b2], .., (bk, hi]` of `(lo, hi]`, in one query:
/// `bounds.len() + 1` results, in order. `bounds` must be ascending in key order (as
/// [`split_keys`] gives them).
pub async fn split_checksums(
    conn: &MySqlConnection,
    table: &TableInfo,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    bounds: &[Vec<Value>],
) -> Result<Vec<RangeChecksum>> {
    let (sql, values) = split_checksums_sql(table, has_json_normalize(conn.info()), lo, hi, bounds);
    let ctx = || format!("checksumming sub-ranges of {}", table.qualified_name());
    let mut c = conn.get().await?;
    let rows: Vec<(u64, u64, u64)> = c.exec(sql, params(&values)).await.ctx(ctx)?;
    keep_warm(&mut c);
    let mut out = vec![RangeChecksum::default(); bounds.len() + 1];
    for (part, count, hash) in rows {
        if let Some(slot) = usize::try_from(part).ok().and_then(|p| out.get_mut(p)) {
            *slot = RangeChecksum { rows: count, hash };
        }
    }
    Ok(out)
}

/// The SQL of [`split_checksums`] and its parameters.
pub fn split_checksums_sql(
    table: &TableInfo,
    normalize_json: bool,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    bounds: &[Vec<Value>],
) -> (String, Vec<Value>) {
    let keys = table.key_names();
    let mut values = Vec::new();
    let mut case = String::from("CASE");
    for (i, b) in bounds.iter().enumerate() {
        let (cond, p) = key_at_most(&keys, b);
        case.push_str(&format!(" WHEN {cond} THEN {i}"));
        values.extend(p);
    }
    case.push_str(&format!(" ELSE {} END", bounds.len()));
    let (cond, p) = range_where(table, lo, hi, None);
    values.extend(p);
    let sql = format!(
        "SELECT {case} AS datatrace_part, COUNT(*), COALESCE(BIT_XOR({}), 0) FROM {}{cond} \
         GROUP BY datatrace_part",
        row_hash_expr(table, normalize_json),
        table_ref(&table.database, &table.name)
    );
    (sql, values)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datatrace_core::{Column, DataType, Schema};

    use super::*;
    use crate::schema::KeySource;
    use crate::types::ColumnKind;

    #[test]
    fn sub_ranges_are_told_apart_by_one_case_in_key_order() {
        let schema = Schema::new(
            "t",
            vec![
                Column::new("a", DataType::Int),
                Column::new("b", DataType::String),
            ],
        )
        .with_primary_key(&["a", "b"])
        .unwrap();
        let table = TableInfo {
            database: "d".into(),
            name: "t".into(),
            schema: Arc::new(schema),
            kinds: vec![ColumnKind::Int { unsigned: false }, ColumnKind::Text],
            key: vec![0, 1],
            key_source: KeySource::Primary,
            estimated_rows: 0,
        };
        let bounds = vec![
            vec![Value::Int(1), Value::from("x")],
            vec![Value::Int(2), Value::from("y")],
        ];
        let lo = [Value::Int(0), Value::from("a")];
        let (sql, params) = split_checksums_sql(&table, false, Some(&lo), None, &bounds);
        assert_eq!(
            sql,
            "SELECT CASE WHEN (`a` < ? OR (`a` = ? AND `b` <= ?)) THEN 0 \
             WHEN (`a` < ? OR (`a` = ? AND `b` <= ?)) THEN 1 ELSE 2 END AS datatrace_part, \
             COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', `a`, `b`, CONCAT(ISNULL(`a`), \
             ISNULL(`b`))))), 0) FROM `d`.`t` WHERE (`a` > ? OR (`a` = ? AND `b` > ?)) \
             GROUP BY datatrace_part"
        );
        assert_eq!(params.len(), 9);
        assert_eq!(params[6], Value::Int(0));
    }
}

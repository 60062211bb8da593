//! What `datatrace validate` checks in the data itself, before any of it moves: values that
//! the job's settings would send where the target refuses them. (Planning, shared with
//! `run`, checks the settings, schemas and targets; these checks read the tables, so they
//! run in `validate` only.)
//!
//! For a MySQL source and an Elasticsearch target:
//!
//! - **JSON columns under `mapping.json = "object"`**: the index maps the fields inside a
//!   JSON column from the first value it sees (dynamic mapping) and refuses later values
//!   that do not fit: an array mixing types (`[1, "a"]`), a field that is a number in one
//!   row and text or an object in another, a date-like text followed by another text, a
//!   column whose value is not an object at all. Every JSON value is read (streaming, only
//!   the key and JSON columns) and put through the same rules; the first conflict is
//!   reported with its table, column, row key and path.
//! - **`zero_date = "keep"`**: zero dates are kept as text (`0000-00-00`), which a `date`
//!   field refuses: a DATE/DATETIME/TIMESTAMP column holding one is reported.
//! - **BOOLEAN (`TINYINT(1)`) columns** are mapped as `boolean`: a value other than 0 and 1
//!   is reported.

use std::collections::HashMap;

use datatrace_core::{DataType, Schema};
use datatrace_es::JsonMapping;
use datatrace_mysql::types::ColumnKind;
use datatrace_mysql::{table_info, MySqlConnection, TableInfo, ZeroDate};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Row;
use serde_json::Value as Json;

use super::Plan;
use crate::connectors::{EsTargetSpec, MySqlSourceSpec};
use crate::job_file::{JobFile, JobFileError};

/// The kinds a dynamically mapped field can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Date,
    Number,
    Bool,
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "a text",
            Kind::Date => "a date",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Object => "an object",
        }
    }
}

/// Whether text looks like a date to Elasticsearch's date detection
/// (`strict_date_optional_time`, `yyyy/MM/dd HH:mm:ss`, `yyyy/MM/dd`).
fn date_like(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let sep = b[4];
    (sep == b'-' || sep == b'/')
        && b[7] == sep
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b' ')
}

fn kind_of(v: &Json) -> Option<Kind> {
    Some(match v {
        Json::Null | Json::Array(_) => return None,
        Json::String(s) if date_like(s) => Kind::Date,
        Json::String(_) => Kind::Text,
        Json::Number(_) => Kind::Number,
        Json::Bool(_) => Kind::Bool,
        Json::Object(_) => Kind::Object,
    })
}

/// Whether a field first seen as `first` takes `v` (Elasticsearch coerces numbers and
/// booleans into text, numeric text into numbers, `"true"`/`"false"` into booleans, numbers
/// into dates as epoch milliseconds).
fn accepts(first: Kind, v: &Json) -> bool {
    match (first, v) {
        (_, Json::Null) => true,
        (Kind::Object, Json::Object(_)) => true,
        (Kind::Object, _) | (_, Json::Object(_)) => false,
        (Kind::Text, _) => true,
        (Kind::Date, Json::String(s)) => date_like(s),
        (Kind::Date, Json::Number(_)) => true,
        (Kind::Number, Json::Number(_)) => true,
        (Kind::Number, Json::String(s)) => s.trim().parse::<f64>().is_ok(),
        (Kind::Bool, Json::Bool(_)) => true,
        (Kind::Bool, Json::String(s)) => s == "true" || s == "false",
        _ => false,
    }
}

/// The fields seen so far in one JSON column, by path, with their first kind.
#[derive(Default)]
struct Shapes {
    seen: HashMap<String, Kind>,
}

impl Shapes {
    /// Walks a value at `path`; `Err` describes the first value the index would refuse.
    fn walk(&mut self, path: &str, v: &Json) -> Result<(), String> {
        match v {
            Json::Null => Ok(()),
            // Arrays are transparent: their elements are values of the same field.
            Json::Array(items) => items.iter().try_for_each(|x| self.walk(path, x)),
            _ => {
                let kind = kind_of(v).unwrap_or(Kind::Text);
                match self.seen.get(path) {
                    Some(&first) if !accepts(first, v) => {
                        return Err(format!(
                            "at {path}, {} ({}) where earlier values made it {} field",
                            kind.name(),
                            short(v),
                            first
                                .name()
                                .trim_start_matches("a ")
                                .trim_start_matches("an ")
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.seen.insert(path.to_string(), kind);
                    }
                }
                if let Json::Object(m) = v {
                    for (k, x) in m {
                        self.walk(&format!("{path}.{k}"), x)?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn short(v: &Json) -> String {
    let t = v.to_string();
    if t.chars().count() > 40 {
        format!("{}...", t.chars().take(40).collect::<String>())
    } else {
        t
    }
}

/// The data checks of a planned job (see the module docs). `Err` names the first value the
/// target would refuse.
pub async fn data_checks(job: &JobFile, plan: &Plan) -> Result<(), JobFileError> {
    let (Some(src), Some(tgt)) = (
        job.source.get::<MySqlSourceSpec>(),
        job.target.get::<EsTargetSpec>(),
    ) else {
        return Ok(());
    };
    // Documents jobs check their own way (datatrace-denormal's fan-out checks).
    if !src.documents.is_empty() {
        return Ok(());
    }
    let err = |at: &str, m: String| JobFileError::new(&job.file, at, job.scrub(&m));
    let conn = MySqlConnection::connect(&src.connection)
        .await
        .map_err(|e| err("source.url", e.to_string()))?;
    for u in &plan.units {
        let Some(schema) = &u.schema else { continue };
        let Some((db, table)) = u.name.split_once('.') else {
            continue;
        };
        let info = table_info(&conn, db, table)
            .await
            .map_err(|e| err("source.tables", e.to_string()))?
            .with_key_settings(&src.options.key_columns, &src.options.key)
            .map_err(|e| err("source.key", e.to_string()))?;
        if tgt.options.mapping.json == JsonMapping::Object {
            json_shapes(&conn, &info, schema)
                .await
                .map_err(|m| err("target.mapping.json", m))?;
        }
        if src.options.zero_date == ZeroDate::Keep {
            zero_dates(&conn, &info, schema, &u.target)
                .await
                .map_err(|m| err("source.zero_date", m))?;
        }
        booleans(&conn, &info, &u.target)
            .await
            .map_err(|m| err("source.tables", m))?;
    }
    Ok(())
}

fn quoted(info: &TableInfo) -> String {
    datatrace_mysql::sql::table_ref(&info.database, &info.name)
}

fn key_select(info: &TableInfo) -> String {
    if info.key.is_empty() {
        "NULL".into()
    } else {
        info.key_names()
            .iter()
            .map(|k| datatrace_mysql::sql::ident(k))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn key_text(info: &TableInfo, v: Option<mysql_async::Value>) -> String {
    match v {
        Some(mysql_async::Value::Bytes(b)) if !info.key.is_empty() => {
            format!("row with key {}", String::from_utf8_lossy(&b))
        }
        _ => "a row".into(),
    }
}

/// Every JSON column's values through the dynamic mapping rules.
async fn json_shapes(
    conn: &MySqlConnection,
    info: &TableInfo,
    schema: &Schema,
) -> Result<(), String> {
    let cols: Vec<&str> = schema
        .columns()
        .iter()
        .filter(|c| {
            c.data_type == DataType::Json
                && !c.native_type.as_deref().is_some_and(|n| n.starts_with('{'))
        })
        .map(|c| c.name.as_str())
        .filter(|n| info.schema.index_of(n).is_some())
        .collect();
    if cols.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = cols
        .iter()
        .map(|c| datatrace_mysql::sql::ident(c))
        .collect();
    let sql = format!(
        "SELECT CONCAT_WS(',', {}), {} FROM {}",
        key_select(info),
        list.join(", "),
        quoted(info)
    );
    let mut c = conn.get().await.map_err(|e| e.to_string())?;
    let mut result = c.query_iter(sql).await.map_err(|e| e.to_string())?;
    let mut stream = result
        .stream::<Row>()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no result set")?;
    let mut shapes: Vec<Shapes> = cols.iter().map(|_| Shapes::default()).collect();
    while let Some(row) = stream.next().await {
        let mut row = row.map_err(|e| e.to_string())?;
        for (i, col) in cols.iter().enumerate() {
            let text: Option<Vec<u8>> =
                row.take::<mysql_async::Value, _>(i + 1)
                    .and_then(|v| match v {
                        mysql_async::Value::Bytes(b) => Some(b),
                        _ => None,
                    });
            let Some(text) = text else { continue };
            let Ok(v) = serde_json::from_slice::<Json>(&text) else {
                continue;
            };
            let problem = match &v {
                Json::Object(_) | Json::Null => shapes[i].walk(col, &v).err(),
                Json::Array(items) if items.iter().all(|x| x.is_object() || x.is_null()) => {
                    shapes[i].walk(col, &v).err()
                }
                other => Some(format!(
                    "the value is {} ({}), not a JSON object, and the column is mapped as an object",
                    match other {
                        Json::Array(_) => "an array of values",
                        Json::String(_) => "a text",
                        Json::Number(_) => "a number",
                        _ => "a boolean",
                    },
                    short(other)
                )),
            };
            if let Some(p) = problem {
                let key = key_text(info, row.take(0));
                return Err(format!(
                    "table {}, column {col}, {key}: {p}; the index would refuse this row (Elasticsearch maps the fields of an object column from their first values): set mapping = {{ json = \"flattened\" }} in [target] to index the column as one flattened field, or fix the data",
                    info.qualified_name()
                ));
            }
        }
    }
    Ok(())
}

/// A zero date in a column mapped as `date`, under `zero_date = "keep"`.
async fn zero_dates(
    conn: &MySqlConnection,
    info: &TableInfo,
    schema: &Schema,
    index: &str,
) -> Result<(), String> {
    for (col, kind) in info.schema.columns().iter().zip(&info.kinds) {
        if !kind.is_date_like() || schema.index_of(&col.name).is_none() {
            continue;
        }
        let c_ = datatrace_mysql::sql::ident(&col.name);
        let sql = format!(
            "SELECT CONCAT_WS(',', {}) FROM {} WHERE {c_} IS NOT NULL AND (MONTH({c_}) = 0 OR DAYOFMONTH({c_}) = 0) LIMIT 1",
            key_select(info),
            quoted(info)
        );
        let mut c = conn.get().await.map_err(|e| e.to_string())?;
        let found: Option<Row> = c.query_first(sql).await.map_err(|e| e.to_string())?;
        if let Some(mut row) = found {
            return Err(format!(
                "table {}, column {}, {}: a zero date, which zero_date = \"keep\" writes as text (0000-00-00) and the date field of index {index} refuses; use zero_date = \"null\" (or \"error\") in [source]",
                info.qualified_name(),
                col.name,
                key_text(info, row.take(0))
            ));
        }
    }
    Ok(())
}

/// A BOOLEAN (`TINYINT(1)`) column holding another value than 0 or 1, mapped as `boolean`.
async fn booleans(conn: &MySqlConnection, info: &TableInfo, index: &str) -> Result<(), String> {
    for (col, kind) in info.schema.columns().iter().zip(&info.kinds) {
        if *kind != ColumnKind::Bool {
            continue;
        }
        let c_ = datatrace_mysql::sql::ident(&col.name);
        let sql = format!(
            "SELECT CONCAT_WS(',', {}), {c_} FROM {} WHERE {c_} NOT IN (0, 1) LIMIT 1",
            key_select(info),
            quoted(info)
        );
        let mut c = conn.get().await.map_err(|e| e.to_string())?;
        let found: Option<Row> = c.query_first(sql).await.map_err(|e| e.to_string())?;
        if let Some(mut row) = found {
            let value: Option<i64> = row.take(1);
            return Err(format!(
                "table {}, column {} is BOOLEAN (TINYINT(1)) and holds {} ({}), which the boolean field of index {index} refuses; declare the column TINYINT (not TINYINT(1)) so it maps as a number, or fix the data",
                info.qualified_name(),
                col.name,
                value.map_or("a value other than 0 and 1".into(), |v| v.to_string()),
                key_text(info, row.take(0))
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_conflict(values: &[Json]) -> Option<String> {
        let mut s = Shapes::default();
        values.iter().find_map(|v| s.walk("j", v).err())
    }

    #[test]
    fn dynamic_mapping_conflicts_are_found() {
        assert!(first_conflict(&[json!({"a": [1, "x"]})]).is_some());
        assert!(first_conflict(&[json!({"a": ["x", 1]})]).is_none());
        assert!(first_conflict(&[json!({"a": 1}), json!({"a": {"b": 1}})]).is_some());
        assert!(first_conflict(&[json!({"a": "2024-01-01"}), json!({"a": "soon"})]).is_some());
        assert!(first_conflict(&[json!({"a": [{"b": 1}, {"b": 2.5}]})]).is_none());
        assert!(first_conflict(&[json!({"a": true}), json!({"a": 1})]).is_some());
        assert!(first_conflict(&[json!({"a": 5}), json!({"a": "7"})]).is_none());
        let msg = first_conflict(&[json!({"a": [1, "x"]})]).unwrap();
        assert!(msg.contains("j.a"), "{msg}");
    }
}

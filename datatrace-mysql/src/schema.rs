//! Table discovery: which tables a [`TableSelector`] picks, and each table's shape from
//! `information_schema` ([`TableInfo`]).

use std::sync::Arc;

use datatrace_core::{Column, Schema};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::config::TableSelector;
use crate::connect::MySqlConnection;
use crate::error::{Context, MySqlError, Result};
use crate::sql::table_ref;
use crate::types::ColumnKind;

/// Where a table's key (for chunking, resume, upserts and deletes) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The primary key.
    Primary,
    /// A unique key whose columns are all NOT NULL (named), used when there is no primary key.
    Unique(String),
    /// Columns named in [`crate::SourceOptions::key_columns`].
    Configured,
    /// No key: the table is read in one sequential scan; resume restarts it, and sinks can
    /// only insert.
    None,
}

/// A table's shape as the connector uses it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The database.
    pub database: String,
    /// The table name.
    pub name: String,
    /// Columns (generated columns left out: they cannot be written), with `native_type` =
    /// `COLUMN_TYPE` plus `CHARACTER SET .. COLLATE ..` for text, the primary key (or the
    /// configured key columns) and unique keys.
    pub schema: Arc<Schema>,
    /// How each column's values are read, in schema order.
    pub kinds: Vec<ColumnKind>,
    /// Positions of the key columns used for chunking and resume (empty: none).
    pub key: Vec<usize>,
    /// Where `key` comes from.
    pub key_source: KeySource,
    /// `information_schema.TABLES.TABLE_ROWS` (an estimate for InnoDB).
    pub estimated_rows: u64,
}

impl TableInfo {
    /// `db.table`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }
    /// The key column names.
    pub fn key_names(&self) -> Vec<String> {
        self.key
            .iter()
            .map(|&i| self.schema.columns()[i].name.clone())
            .collect()
    }
    /// Uses `columns` as the key (for tables without a usable one).
    pub fn with_key_columns<S: AsRef<str>>(mut self, columns: &[S]) -> Result<Self> {
        if columns.is_empty() {
            return Ok(self);
        }
        let schema = (*self.schema)
            .clone()
            .with_primary_key(columns)
            .map_err(|e| MySqlError::Config(format!("key_columns: {e}")))?;
        self.key = schema.primary_key().to_vec();
        self.schema = Arc::new(schema);
        self.key_source = KeySource::Configured;
        Ok(self)
    }

    /// The table as read under `zero_date`: with `null`, a DATE, DATETIME or TIMESTAMP
    /// column may hold zero dates that are read as NULL, so it is nullable in the schema
    /// (a target created from it takes the NULLs).
    pub fn with_zero_dates(mut self, zero_date: crate::config::ZeroDate) -> Self {
        if zero_date != crate::config::ZeroDate::Null {
            return self;
        }
        let kinds = self.kinds.clone();
        let schema = self
            .schema
            .with_nullability(|i, c| c.nullable || kinds.get(i).is_some_and(|k| k.is_date_like()));
        self.schema = Arc::new(schema);
        self
    }

    /// The table with the key its settings name: the columns of the first `keys` entry
    /// whose pattern (`db.table` or `table`, `*` and `?` as wildcards) matches it, else
    /// `key_columns` when not empty, else its own key. The error names the table.
    pub fn with_key_settings(
        self,
        key_columns: &[String],
        keys: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<Self> {
        let name = self.qualified_name();
        let (db, table) = (self.database.clone(), self.name.clone());
        let named = keys.iter().find(|(p, _)| match p.split_once('.') {
            Some((d, t)) => glob(d, &db) && glob(t, &table),
            None => glob(p, &table),
        });
        match named {
            Some((pattern, cols)) => self
                .with_key_columns(cols)
                .map_err(|e| MySqlError::Config(format!("key {pattern:?} of table {name}: {e}"))),
            None => self
                .with_key_columns(key_columns)
                .map_err(|e| MySqlError::Config(format!("table {name}: {e}"))),
        }
    }
}

/// Matches `*` (any run) and `?` (one character): the core's pattern rule.
pub(crate) use datatrace_core::pattern::glob_match as glob;

/// Splits a pattern into (database pattern, table pattern).
fn split_pattern<'a>(pattern: &'a str, default_db: Option<&'a str>) -> Result<(&'a str, &'a str)> {
    match pattern.split_once('.') {
        Some((d, t)) => Ok((d, t)),
        None => default_db.map(|d| (d, pattern)).ok_or_else(|| {
            MySqlError::Config(format!(
                "table pattern {pattern:?} has no database and the connection URL names none"
            ))
        }),
    }
}

const SYSTEM_DBS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// The tables `selector` picks, each with its shape, sorted by database and name.
///
/// A pattern without wildcards that matches nothing is an error: [`MySqlError::NoTable`],
/// [`MySqlError::NoPrivilege`] or [`MySqlError::UnknownDatabase`] as the server reports it.
pub async fn discover_tables(
    conn: &MySqlConnection,
    selector: &TableSelector,
) -> Result<Vec<TableInfo>> {
    let mut c = conn.get().await?;
    let rows: Vec<(String, String)> = c
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .ctx(|| "listing tables".to_string())?;
    let default_db = conn.default_database();
    let mut chosen: Vec<(String, String)> = Vec::new();
    for pat in &selector.include {
        let (dp, tp) = split_pattern(pat, default_db)?;
        let before = chosen.len();
        for (d, t) in &rows {
            let system = SYSTEM_DBS.contains(&d.as_str()) && dp != d;
            if !system && glob(dp, d) && glob(tp, t) && !chosen.contains(&(d.clone(), t.clone())) {
                chosen.push((d.clone(), t.clone()));
            }
        }
        let literal = !pat.contains(['*', '?']);
        if literal && chosen.len() == before && !chosen.contains(&(dp.into(), tp.into())) {
            // Ask the server why: missing table, database or privilege.
            probe(&mut c, dp, tp).await?;
            return Err(MySqlError::NoTable {
                context: format!("selecting table {dp}.{tp}"),
                message: "not a base table".into(),
            });
        }
    }
    for pat in &selector.exclude {
        let (dp, tp) = split_pattern(pat, default_db)?;
        chosen.retain(|(d, t)| !(glob(dp, d) && glob(tp, t)));
    }
    chosen.sort();
    let mut out = Vec::with_capacity(chosen.len());
    for (d, t) in chosen {
        out.push(load_table(&mut c, &d, &t).await?);
    }
    Ok(out)
}

async fn probe(c: &mut Conn, db: &str, table: &str) -> Result<()> {
    let sql = format!("SELECT 1 FROM {} LIMIT 0", table_ref(db, table));
    c.query_drop(sql)
        .await
        .ctx(|| format!("selecting table {db}.{table}"))
}

/// The shape of one table. Errors name the table when it is missing or not readable.
pub async fn table_info(conn: &MySqlConnection, database: &str, table: &str) -> Result<TableInfo> {
    let mut c = conn.get().await?;
    probe(&mut c, database, table).await?;
    load_table(&mut c, database, table).await
}

fn s(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::NULL => None,
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn n(row: &Row, i: usize) -> Option<u64> {
    match row.as_ref(i)? {
        mysql_async::Value::Int(v) => u64::try_from(*v).ok(),
        mysql_async::Value::UInt(v) => Some(*v),
        mysql_async::Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

async fn load_table(c: &mut Conn, db: &str, table: &str) -> Result<TableInfo> {
    let qn = format!("{db}.{table}");
    let ctx = || format!("reading the schema of {qn}");
    let (columns, kinds) = load_columns(c, db, table, &qn).await?;
    let indexes = unique_indexes(c, db, table, &qn).await?;
    let schema = Schema::new(table, columns).with_namespace(db);
    let (schema, key_source, key) = choose_key(schema, &indexes)?;
    let estimated_rows: Option<u64> = c
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .ctx(ctx)?
        .flatten();
    Ok(TableInfo {
        database: db.to_string(),
        name: table.to_string(),
        schema: Arc::new(schema),
        kinds,
        key,
        key_source,
        estimated_rows: estimated_rows.unwrap_or(0),
    })
}

/// The stored (not generated) columns of `db.table` (`qn`), in order, with their kinds.
async fn load_columns(
    c: &mut Conn,
    db: &str,
    table: &str,
    qn: &str,
) -> Result<(Vec<Column>, Vec<ColumnKind>)> {
    let ctx = || format!("reading the schema of {qn}");
    let cols: Vec<Row> = c
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, \
             COLLATION_NAME, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .ctx(ctx)?;
    if cols.is_empty() {
        return Err(MySqlError::NoTable {
            context: ctx(),
            message: format!("no columns visible for {qn}"),
        });
    }
    let json_cols = json_columns(c, db, table).await;
    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    for row in &cols {
        if let Some((col, kind)) = column_of(row, qn, &json_cols)? {
            columns.push(col);
            kinds.push(kind);
        }
    }
    Ok((columns, kinds))
}

/// The columns MariaDB declares as JSON: it spells JSON as LONGTEXT with a `json_valid()`
/// check (none where the checks cannot be read).
async fn json_columns(c: &mut Conn, db: &str, table: &str) -> Vec<String> {
    let checks: Vec<String> = c
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .unwrap_or_default();
    checks
        .iter()
        .filter_map(|cl| {
            let inner = cl.trim().strip_prefix("json_valid(`")?.strip_suffix("`)")?;
            Some(inner.replace("``", "`"))
        })
        .collect()
}

/// One row of `information_schema.COLUMNS` as a column and its kind; `None` for a generated
/// column (it is not read).
fn column_of(row: &Row, qn: &str, json_cols: &[String]) -> Result<Option<(Column, ColumnKind)>> {
    let name = s(row, 0).unwrap_or_default();
    let data_type = s(row, 1).unwrap_or_default();
    let column_type = s(row, 2).unwrap_or_default();
    let extra = s(row, 6).unwrap_or_default().to_ascii_uppercase();
    if extra.contains("GENERATED") || extra.contains("VIRTUAL") || extra.contains("PERSISTENT") {
        return Ok(None);
    }
    let is_json = json_cols.contains(&name) && data_type.eq_ignore_ascii_case("longtext");
    let kind = if is_json {
        ColumnKind::JsonText
    } else {
        ColumnKind::parse(&data_type, &column_type).ok_or_else(|| MySqlError::Data {
            context: format!("table {qn}, column {name}"),
            message: format!("type {column_type} is not supported"),
        })?
    };
    let native = match (is_json, s(row, 4), s(row, 5)) {
        (true, _, _) => "json".to_string(),
        (false, Some(cs), Some(coll)) => {
            format!("{column_type} CHARACTER SET {cs} COLLATE {coll}")
        }
        _ => column_type.clone(),
    };
    let mut col = Column::new(name, kind.data_type()).native(native);
    col.nullable = s(row, 3).as_deref() == Some("YES");
    Ok(Some((col, kind)))
}

/// A unique index of a table.
struct UniqueIndex {
    /// The index name (`PRIMARY` for the primary key).
    name: String,
    /// Its columns, in index order.
    columns: Vec<String>,
    /// Whether every column is indexed whole (no prefix index).
    full: bool,
}

/// The unique indexes of `db.table` (`qn`), by name.
async fn unique_indexes(c: &mut Conn, db: &str, table: &str, qn: &str) -> Result<Vec<UniqueIndex>> {
    let stats: Vec<Row> = c
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (db, table),
        )
        .await
        .ctx(|| format!("reading the schema of {qn}"))?;
    let mut indexes: Vec<UniqueIndex> = Vec::new();
    for row in &stats {
        if n(row, 1) != Some(0) {
            continue;
        }
        let iname = s(row, 0).unwrap_or_default();
        let col = s(row, 2).unwrap_or_default();
        let full = row
            .as_ref(3)
            .is_none_or(|v| matches!(v, mysql_async::Value::NULL));
        match indexes.iter_mut().find(|ix| ix.name == iname) {
            Some(ix) => {
                ix.columns.push(col);
                ix.full &= full;
            }
            None => indexes.push(UniqueIndex {
                name: iname,
                columns: vec![col],
                full,
            }),
        }
    }
    Ok(indexes)
}

/// Declares the primary and unique keys of `schema` whose columns are all read, and picks
/// the table's key: the primary key, else the first whole NOT NULL unique key, else none.
fn choose_key(
    mut schema: Schema,
    indexes: &[UniqueIndex],
) -> Result<(Schema, KeySource, Vec<usize>)> {
    let mut key_source = KeySource::None;
    let mut key_cols: Option<Vec<String>> = None;
    let present = |cols: &[String], s: &Schema| cols.iter().all(|c| s.index_of(c).is_some());
    if let Some(ix) = indexes.iter().find(|ix| ix.name == "PRIMARY") {
        if present(&ix.columns, &schema) {
            schema = schema
                .with_primary_key(&ix.columns)
                .map_err(|e| MySqlError::Config(e.to_string()))?;
            key_source = KeySource::Primary;
        }
    }
    for ix in indexes {
        let (iname, cols, full) = (&ix.name, &ix.columns, ix.full);
        if iname == "PRIMARY" || !present(cols, &schema) {
            continue;
        }
        schema = schema
            .with_unique_key(cols)
            .map_err(|e| MySqlError::Config(e.to_string()))?;
        let not_null = cols
            .iter()
            .all(|c| schema.column(c).is_some_and(|col| !col.nullable));
        if key_source == KeySource::None && key_cols.is_none() && full && not_null {
            key_cols = Some(cols.clone());
            key_source = KeySource::Unique(iname.clone());
        }
    }
    let key: Vec<usize> = match (&key_source, &key_cols) {
        (KeySource::Primary, _) => schema.primary_key().to_vec(),
        (_, Some(cols)) => cols.iter().filter_map(|c| schema.index_of(c)).collect(),
        _ => Vec::new(),
    };
    Ok((schema, key_source, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("order_*", "order_items"));
        assert!(!glob("order_*", "orders"));
        assert!(glob("t?", "t1"));
        assert!(!glob("t?", "t12"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("users", "users"));
        assert!(!glob("users", "users2"));
    }

    #[test]
    fn patterns_need_a_database() {
        assert_eq!(split_pattern("d.t", None).unwrap(), ("d", "t"));
        assert_eq!(split_pattern("t", Some("d")).unwrap(), ("d", "t"));
        assert!(split_pattern("t", None).is_err());
    }
}

//! [`Schema`] and [`Column`]: the shape of a table or an index, shared by all its rows.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The store-neutral type of a column: which [`crate::Value`] variant its cells hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum DataType {
    /// [`crate::Value::Bool`].
    Bool,
    /// [`crate::Value::Int`].
    Int,
    /// [`crate::Value::UInt`].
    #[serde(rename = "uint")]
    UInt,
    /// [`crate::Value::Float`].
    Float,
    /// [`crate::Value::Decimal`] with its declared precision and scale (0 when unknown).
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// [`crate::Value::String`].
    String,
    /// [`crate::Value::Bytes`].
    Bytes,
    /// [`crate::Value::Date`].
    Date,
    /// [`crate::Value::Time`].
    Time,
    /// [`crate::Value::DateTime`].
    #[serde(rename = "datetime")]
    DateTime,
    /// [`crate::Value::Timestamp`].
    Timestamp,
    /// [`crate::Value::Json`].
    Json,
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            other => {
                let s = match other {
                    DataType::Bool => "bool",
                    DataType::Int => "int",
                    DataType::UInt => "uint",
                    DataType::Float => "float",
                    DataType::String => "string",
                    DataType::Bytes => "bytes",
                    DataType::Date => "date",
                    DataType::Time => "time",
                    DataType::DateTime => "datetime",
                    DataType::Timestamp => "timestamp",
                    DataType::Json => "json",
                    DataType::Decimal { .. } => unreachable!(),
                };
                f.write_str(s)
            }
        }
    }
}

/// One column of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The column or field name.
    pub name: String,
    /// The neutral type of its values.
    pub data_type: DataType,
    /// Whether it may hold nulls.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// The type as the source store spells it (`bigint(20) unsigned`, `varchar(64) CHARACTER
    /// SET latin1`, `keyword`), when known; a sink of the same kind recreates it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_type: Option<String>,
}

fn yes() -> bool {
    true
}

impl Column {
    /// A nullable column without a native type.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Column {
            name: name.into(),
            data_type,
            nullable: true,
            native_type: None,
        }
    }
    /// The same column, not nullable.
    pub fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }
    /// The same column with a native type.
    pub fn native(mut self, native_type: impl Into<String>) -> Self {
        self.native_type = Some(native_type.into());
        self
    }
}

/// The shape of a table or index: its name, ordered columns and keys.
///
/// A schema is built once per table and shared as `Arc<Schema>` by every [`crate::Record`]
/// of that table, which holds only its values in column order. Transforms that change the
/// shape derive a new schema once, not once per row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "SchemaRepr", into = "SchemaRepr")]
pub struct Schema {
    namespace: Option<String>,
    name: String,
    columns: Vec<Column>,
    primary_key: Vec<usize>,
    unique_keys: Vec<Vec<usize>>,
    by_name: HashMap<String, usize>,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
            && self.name == other.name
            && self.columns == other.columns
            && self.primary_key == other.primary_key
            && self.unique_keys == other.unique_keys
    }
}

#[derive(Serialize, Deserialize)]
struct SchemaRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
    columns: Vec<Column>,
    #[serde(default)]
    primary_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unique_keys: Vec<Vec<String>>,
}

impl From<SchemaRepr> for Schema {
    fn from(r: SchemaRepr) -> Self {
        let mut s = Schema::new(r.name, r.columns);
        s.namespace = r.namespace;
        // Unknown key names are dropped rather than failing a whole dead-letter file.
        let idx = |names: &[String], s: &Schema| -> Vec<usize> {
            names.iter().filter_map(|n| s.index_of(n)).collect()
        };
        s.primary_key = idx(&r.primary_key, &s);
        s.unique_keys = r.unique_keys.iter().map(|k| idx(k, &s)).collect();
        s
    }
}

impl From<Schema> for SchemaRepr {
    fn from(s: Schema) -> Self {
        let names = |k: &[usize]| k.iter().map(|&i| s.columns[i].name.clone()).collect();
        SchemaRepr {
            primary_key: names(&s.primary_key),
            unique_keys: s.unique_keys.iter().map(|k| names(k)).collect(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            columns: s.columns.clone(),
        }
    }
}

/// A schema definition that names something that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}: unknown column {column:?}")]
pub struct UnknownColumn {
    /// The table or index.
    pub table: String,
    /// The missing column.
    pub column: String,
}

impl Schema {
    /// A schema without keys. Column names should be unique; a duplicate name resolves to
    /// its first column.
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Self {
        let mut by_name = HashMap::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            by_name.entry(c.name.clone()).or_insert(i);
        }
        Schema {
            namespace: None,
            name: name.into(),
            columns,
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
            by_name,
        }
    }

    /// The same schema with a namespace (the MySQL database).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The same schema with a primary key made of the named columns, in key order.
    pub fn with_primary_key<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, UnknownColumn> {
        self.primary_key = self.indices(names)?;
        Ok(self)
    }

    /// The same schema with one more unique key.
    pub fn with_unique_key<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, UnknownColumn> {
        let k = self.indices(names)?;
        self.unique_keys.push(k);
        Ok(self)
    }

    fn indices<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<usize>, UnknownColumn> {
        names
            .iter()
            .map(|n| {
                self.index_of(n.as_ref()).ok_or_else(|| UnknownColumn {
                    table: self.qualified_name(),
                    column: n.as_ref().to_string(),
                })
            })
            .collect()
    }

    /// The table or index name, without namespace.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The namespace (database), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// `namespace.name`, or just `name`.
    pub fn qualified_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
    /// The same schema with nullability changed: `nullable(i, column)` says whether column
    /// `i` may hold NULLs (names, types and keys stay as they are).
    pub fn with_nullability(&self, mut nullable: impl FnMut(usize, &Column) -> bool) -> Schema {
        let mut s = self.clone();
        for (i, c) in s.columns.iter_mut().enumerate() {
            c.nullable = nullable(i, &self.columns[i]);
        }
        s
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }
    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
    /// The position of a column by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index_of(name).map(|i| &self.columns[i])
    }
    /// Positions of the primary key columns, in key order (empty when there is none).
    pub fn primary_key(&self) -> &[usize] {
        &self.primary_key
    }
    /// Names of the primary key columns.
    pub fn primary_key_names(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .map(|&i| self.columns[i].name.as_str())
            .collect()
    }
    /// Positions of the columns of each unique key.
    pub fn unique_keys(&self) -> &[Vec<usize>] {
        &self.unique_keys
    }

    /// A new schema with the same name, namespace and keys (where their columns survive)
    /// and other columns; used by transforms that change the shape.
    pub fn derive(&self, columns: Vec<Column>) -> Schema {
        let mut s = Schema::new(self.name.clone(), columns);
        s.namespace = self.namespace.clone();
        let remap = |k: &[usize]| -> Option<Vec<usize>> {
            k.iter()
                .map(|&i| s.index_of(&self.columns[i].name))
                .collect()
        };
        let primary_key = remap(&self.primary_key).unwrap_or_default();
        let unique_keys = self.unique_keys.iter().filter_map(|k| remap(k)).collect();
        s.primary_key = primary_key;
        s.unique_keys = unique_keys;
        s
    }

    /// The same schema under another name (and namespace).
    pub fn renamed(&self, namespace: Option<String>, name: impl Into<String>) -> Schema {
        let mut s = self.clone();
        s.namespace = namespace;
        s.name = name.into();
        s
    }
}

/// `Arc<Schema>`, the way schemas travel.
pub type SchemaRef = Arc<Schema>;

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Schema {
        Schema::new(
            "users",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("email", DataType::String),
                Column::new(
                    "score",
                    DataType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id"])
        .unwrap()
        .with_unique_key(&["email"])
        .unwrap()
    }

    #[test]
    fn serde_round_trip_keeps_keys() {
        let s = users();
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""primary_key":["id"]"#), "{text}");
        let back: Schema = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.index_of("score"), Some(2));
    }

    #[test]
    fn unknown_key_column_is_named() {
        let e = Schema::new("t", vec![Column::new("a", DataType::Int)])
            .with_primary_key(&["b"])
            .unwrap_err();
        assert_eq!(e.to_string(), "table t: unknown column \"b\"");
    }

    #[test]
    fn derive_remaps_keys() {
        let s = users();
        let d = s.derive(vec![s.columns()[1].clone(), s.columns()[0].clone()]);
        assert_eq!(d.primary_key(), &[1]);
        assert_eq!(d.unique_keys(), &[vec![0]]);
        let d = s.derive(vec![s.columns()[1].clone()]);
        assert!(d.primary_key().is_empty());
    }
}

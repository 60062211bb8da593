//! [`Rename`]: give fields new names.

use std::collections::HashSet;
use std::sync::Arc;

use crate::record::Record;
use crate::schema::Schema;
use crate::transform::{Transform, TransformError};

use super::plan::{unknown_field, Plans};

/// Renames fields. Values do not move: a record only gets the derived schema (one `Arc`
/// swap per record; the schema is derived once per input schema).
///
/// All renames apply at once, so `a -> b, b -> a` swaps two names. Keys follow their
/// columns: a primary or unique key on a renamed column stays on it under its new name.
/// Renaming a field that does not exist is an error (a config error, reported for every
/// record of that table and by [`Rename::check`]) unless [`Rename::ignore_missing`] is set;
/// renaming onto the name of another field that stays is an error too.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::Rename;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(
///     Schema::new("users", vec![
///         Column::new("id", DataType::Int),
///         Column::new("mail", DataType::String),
///     ])
///     .with_primary_key(&["id"]).unwrap(),
/// );
/// let rename = Rename::new([("id", "user_id"), ("mail", "email")]);
/// let out = rename
///     .apply(Record::read(schema, vec![Value::Int(7), Value::from("a@example.com")]))
///     .unwrap()
///     .unwrap();
/// assert_eq!(out.get("email"), Some(&Value::from("a@example.com")));
/// assert_eq!(out.schema.primary_key_names(), ["user_id"]);
/// ```
#[derive(Debug)]
pub struct Rename {
    pairs: Vec<(String, String)>,
    ignore_missing: bool,
    plans: Plans<Arc<Schema>>,
}

impl Rename {
    /// Renames each `(old, new)` pair.
    pub fn new<I, A, B>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (A, B)>,
        A: Into<String>,
        B: Into<String>,
    {
        Rename {
            pairs: pairs
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
            ignore_missing: false,
            plans: Plans::new(),
        }
    }

    /// Skips renames of fields a schema does not have instead of rejecting its records.
    pub fn ignore_missing(mut self, yes: bool) -> Self {
        self.ignore_missing = yes;
        self
    }

    /// The schema records of `input` get, or the config error (unknown field, name clash).
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.plans
            .get(input, |s| self.derive(s))
            .map(|p| (*p).clone())
            .map_err(|e| e.to_string())
    }

    /// Checks that this rename fits `schema`, naming the unknown field or the clash.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }

    fn derive(&self, schema: &Schema) -> Result<Arc<Schema>, String> {
        let mut columns = schema.columns().to_vec();
        let mut renamed = HashSet::new();
        let mut targets = HashSet::new();
        for (old, new) in &self.pairs {
            let Some(i) = schema.index_of(old) else {
                if self.ignore_missing {
                    continue;
                }
                return Err(unknown_field("rename", old, schema));
            };
            if !targets.insert(new.as_str()) {
                return Err(format!(
                    "rename: two fields of {} renamed to {new:?}",
                    schema.qualified_name()
                ));
            }
            renamed.insert(old.as_str());
            columns[i].name = new.clone();
        }
        for c in schema.columns() {
            if targets.contains(c.name.as_str()) && !renamed.contains(c.name.as_str()) {
                return Err(format!(
                    "rename: {} already has a field {:?}",
                    schema.qualified_name(),
                    c.name
                ));
            }
        }
        let key_names =
            |k: &[usize]| -> Vec<String> { k.iter().map(|&i| columns[i].name.clone()).collect() };
        let primary = key_names(schema.primary_key());
        let uniques: Vec<Vec<String>> = schema.unique_keys().iter().map(|k| key_names(k)).collect();
        let mut out = Schema::new(schema.name(), columns.clone());
        if let Some(ns) = schema.namespace() {
            out = out.with_namespace(ns);
        }
        let keys_error = |e: crate::schema::UnknownColumn| format!("rename: {e}");
        out = out.with_primary_key(&primary).map_err(keys_error)?;
        for k in &uniques {
            out = out.with_unique_key(k).map_err(keys_error)?;
        }
        Ok(Arc::new(out))
    }
}

impl Transform for Rename {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        Rename::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, schema) = self.plans.for_record(record, |s| self.derive(s))?;
        record.schema = (*schema).clone();
        Ok(Some(record))
    }
}

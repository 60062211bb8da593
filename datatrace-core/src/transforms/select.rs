//! [`KeepFields`] and [`DropFields`]: choose which fields go on.

use std::sync::Arc;

use crate::record::Record;
use crate::schema::Schema;
use crate::transform::{Transform, TransformError};
use crate::value::Value;

use super::plan::{unknown_field, Plans};

/// What survives for one input schema.
struct Selection {
    /// `keep[i]`: whether column `i` of the input survives.
    keep: Vec<bool>,
    schema: Arc<Schema>,
}

/// The shared machinery of keep and drop.
#[derive(Debug)]
struct Select {
    fields: Vec<String>,
    keep_listed: bool,
    ignore_missing: bool,
    plans: Plans<Selection>,
}

impl Select {
    fn new<I: IntoIterator<Item = S>, S: Into<String>>(fields: I, keep_listed: bool) -> Self {
        Select {
            fields: fields.into_iter().map(Into::into).collect(),
            keep_listed,
            ignore_missing: false,
            plans: Plans::new(),
        }
    }

    fn name(&self) -> &'static str {
        if self.keep_listed {
            "keep"
        } else {
            "drop"
        }
    }

    fn derive(&self, schema: &Schema) -> Result<Selection, String> {
        let mut listed = vec![false; schema.len()];
        for f in &self.fields {
            match schema.index_of(f) {
                Some(i) => listed[i] = true,
                None if self.ignore_missing => {}
                None => return Err(unknown_field(self.name(), f, schema)),
            }
        }
        let keep: Vec<bool> = listed.iter().map(|&l| l == self.keep_listed).collect();
        let columns = schema
            .columns()
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(c, _)| c.clone())
            .collect();
        Ok(Selection {
            keep,
            schema: Arc::new(schema.derive(columns)),
        })
    }

    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.plans
            .get(input, |s| self.derive(s))
            .map(|p| p.schema.clone())
            .map_err(|e| e.to_string())
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, plan) = self.plans.for_record(record, |s| self.derive(s))?;
        let project = |values: &mut Vec<Value>| {
            let mut i = 0;
            values.retain(|_| {
                let k = plan.keep.get(i).copied().unwrap_or(false);
                i += 1;
                k
            });
        };
        project(&mut record.values);
        if let Some(before) = record.before.as_mut() {
            project(before);
        }
        record.schema = plan.schema.clone();
        Ok(Some(record))
    }
}

/// Keeps only the listed fields (in their original order) and drops the others.
///
/// Values move in place: no allocation per record. Listing a field the schema does not have
/// is an error unless [`KeepFields::ignore_missing`] is set. Keys whose columns all survive
/// stay; a primary key loses all its meaning without one of its columns, so dropping any key
/// column removes the primary key (and such unique keys) from the output schema.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::KeepFields;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("users", vec![
///     Column::new("id", DataType::Int),
///     Column::new("password", DataType::String),
///     Column::new("name", DataType::String),
/// ]));
/// let keep = KeepFields::new(["name", "id"]);
/// let row = Record::read(schema, vec![Value::Int(1), Value::from("secret"), Value::from("Ann")]);
/// let out = keep.apply(row).unwrap().unwrap();
/// assert_eq!(out.values, [Value::Int(1), Value::from("Ann")]);
/// assert_eq!(out.schema.columns()[1].name, "name");
/// ```
#[derive(Debug)]
pub struct KeepFields(Select);

impl KeepFields {
    /// Keeps these fields.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(fields: I) -> Self {
        KeepFields(Select::new(fields, true))
    }
    /// Ignores listed fields a schema does not have instead of rejecting its records.
    pub fn ignore_missing(mut self, yes: bool) -> Self {
        self.0.ignore_missing = yes;
        self
    }
    /// The schema records of `input` get, or the config error naming the unknown field.
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.0.output_schema(input)
    }
    /// Checks that every listed field exists in `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }
}

impl Transform for KeepFields {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        KeepFields::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        self.0.apply(record)
    }
}

/// Drops the listed fields and keeps the others.
///
/// Values move in place: no allocation per record. Listing a field the schema does not have
/// is an error unless [`DropFields::ignore_missing`] is set. Dropping a column of the primary
/// key removes the primary key from the output schema (sinks then see a keyless table), and
/// likewise for unique keys.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::DropFields;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("users", vec![
///     Column::new("id", DataType::Int),
///     Column::new("password", DataType::String),
/// ]));
/// let out = DropFields::new(["password"])
///     .apply(Record::read(schema, vec![Value::Int(1), Value::from("secret")]))
///     .unwrap()
///     .unwrap();
/// assert_eq!(out.values, [Value::Int(1)]);
/// assert!(out.get("password").is_none());
/// ```
#[derive(Debug)]
pub struct DropFields(Select);

impl DropFields {
    /// Drops these fields.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(fields: I) -> Self {
        DropFields(Select::new(fields, false))
    }
    /// Ignores listed fields a schema does not have instead of rejecting its records.
    pub fn ignore_missing(mut self, yes: bool) -> Self {
        self.0.ignore_missing = yes;
        self
    }
    /// The schema records of `input` get, or the config error naming the unknown field.
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.0.output_schema(input)
    }
    /// Checks that every listed field exists in `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }
}

impl Transform for DropFields {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        DropFields::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        self.0.apply(record)
    }
}

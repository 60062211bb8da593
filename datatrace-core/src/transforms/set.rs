//! [`SetField`]: set a field to a constant, a template, or a computed value.

use std::fmt;
use std::sync::Arc;

use crate::record::Record;
use crate::schema::{Column, DataType, Schema};
use crate::transform::{Transform, TransformError};
use crate::value::Value;

use super::convert::{cast_value, json_to_value, literal_as, matches_type, natural_type};
use super::plan::{unknown_field, with_before, Plans};
use crate::template::{Compiled, Piece, Template, TemplateError};

/// A user function computing a field from the whole record.
type ComputeFn = dyn Fn(&Record) -> Value + Send + Sync;

enum Source {
    Value(Value),
    Literal(serde_json::Value),
    Template(Template),
    Computed(Arc<ComputeFn>, DataType),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Source::Literal(j) => f.debug_tuple("Literal").field(j).finish(),
            Source::Template(t) => f.debug_tuple("Template").field(&t.source()).finish(),
            Source::Computed(_, dt) => f.debug_tuple("Computed").field(dt).finish(),
        }
    }
}

enum Fill {
    Constant(Value),
    Template(Compiled, DataType),
    Computed(Arc<ComputeFn>),
}

struct SetPlan {
    index: usize,
    fill: Fill,
    schema: Arc<Schema>,
}

/// Sets one field on every record: to a constant, to a template of other fields
/// (`"{first} {last}"`), or to the result of a function of the record.
///
/// Setting an existing field overwrites it in its column position (the column's type changes
/// when the new value has another type, and it then loses its native type); a new field is
/// appended as the last column. Before-images of updates get the field too, computed from the
/// before-image.
///
/// - [`SetField::constant`]: the value as given; its kind becomes the column's type.
/// - [`SetField::literal`] (the config form): a JSON literal read as the existing column's
///   type (`"2024-01-01"` into a date column) or, for a new field, as its natural kind; a
///   literal that does not fit the column is a config error naming it; set
///   [`SetField::as_type`] to choose the type.
/// - [`SetField::template`]: text; `{name}` placeholders take the field's text, a `NULL`
///   field renders as nothing, `{{`/`}}` are literal braces. With [`SetField::as_type`] the
///   text is then cast (a failure rejects the record, naming field and value).
/// - [`SetField::computed`]: any `Fn(&Record) -> Value` with the type it produces.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::SetField;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("people", vec![
///     Column::new("first", DataType::String),
///     Column::new("last", DataType::String),
/// ]));
/// let full = SetField::template("full_name", "{first} {last}").unwrap();
/// let origin = SetField::constant("origin", "crm");
/// let row = Record::read(schema, vec![Value::from("Ada"), Value::from("Lovelace")]);
/// let out = origin.apply(full.apply(row).unwrap().unwrap()).unwrap().unwrap();
/// assert_eq!(out.get("full_name"), Some(&Value::from("Ada Lovelace")));
/// assert_eq!(out.get("origin"), Some(&Value::from("crm")));
/// assert_eq!(out.schema.len(), 4);
/// ```
#[derive(Debug)]
pub struct SetField {
    field: String,
    source: Source,
    as_type: Option<DataType>,
    plans: Plans<SetPlan>,
}

impl SetField {
    fn with_source(field: impl Into<String>, source: Source) -> Self {
        SetField {
            field: field.into(),
            source,
            as_type: None,
            plans: Plans::new(),
        }
    }

    /// Sets `field` to `value` on every record.
    pub fn constant(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::with_source(field, Source::Value(value.into()))
    }

    /// Sets `field` to a config literal, read as the column's type (see the type docs).
    pub fn literal(field: impl Into<String>, value: serde_json::Value) -> Self {
        Self::with_source(field, Source::Literal(value))
    }

    /// Sets `field` to `pattern` with `{field}` placeholders filled in.
    pub fn template(field: impl Into<String>, pattern: &str) -> Result<Self, TemplateError> {
        Ok(Self::with_source(
            field,
            Source::Template(Template::parse(pattern)?),
        ))
    }

    /// Sets `field` to `f(&record)`, a value of type `data_type`.
    pub fn computed<F>(field: impl Into<String>, data_type: DataType, f: F) -> Self
    where
        F: Fn(&Record) -> Value + Send + Sync + 'static,
    {
        Self::with_source(field, Source::Computed(Arc::new(f), data_type))
    }

    /// The type of the field (constants and literals are cast to it once, template text per
    /// record); computed fields keep the type given to [`SetField::computed`].
    pub fn as_type(mut self, data_type: DataType) -> Self {
        self.as_type = Some(data_type);
        self
    }

    /// The schema records of `input` get, or the config error (unknown placeholder field,
    /// a literal that does not fit the column).
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.plans
            .get(input, |s| self.derive(s))
            .map(|p| p.schema.clone())
            .map_err(|e| e.to_string())
    }

    /// Checks that this transform fits `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }

    fn derive(&self, schema: &Schema) -> Result<SetPlan, String> {
        let existing = schema.column(&self.field);
        let context = || {
            format!(
                "set of field {:?} in {}",
                self.field,
                schema.qualified_name()
            )
        };
        let (fill, data_type) = match &self.source {
            Source::Value(v) => {
                let dt = match (self.as_type, existing) {
                    (Some(dt), _) => dt,
                    (None, Some(c)) if matches_type(v, c.data_type) => c.data_type,
                    (None, Some(c)) if matches!(v, Value::Decimal(_)) => match c.data_type {
                        dt @ DataType::Decimal { .. } => dt,
                        _ => natural_type(v).unwrap_or(c.data_type),
                    },
                    (None, _) => natural_type(v).unwrap_or(DataType::String),
                };
                let v = cast_value(v, dt).map_err(|e| format!("{}: {e}", context()))?;
                (Fill::Constant(v), dt)
            }
            Source::Literal(j) => {
                let dt = self
                    .as_type
                    .or(existing.map(|c| c.data_type))
                    .or_else(|| natural_type(&json_to_value(j)))
                    .unwrap_or(DataType::String);
                let v = literal_as(j, dt).map_err(|e| format!("{}: {e}", context()))?;
                (Fill::Constant(v), dt)
            }
            Source::Template(t) => {
                let compiled = t.compile(|name| match schema.index_of(name) {
                    Some(i) => Ok(Piece::Field(i)),
                    None => Err(unknown_field("set", name, schema)),
                })?;
                let dt = self.as_type.unwrap_or(DataType::String);
                (Fill::Template(compiled, dt), dt)
            }
            Source::Computed(f, dt) => (Fill::Computed(f.clone()), *dt),
        };
        let mut columns = schema.columns().to_vec();
        let index = match schema.index_of(&self.field) {
            Some(i) => {
                if columns[i].data_type != data_type {
                    columns[i].data_type = data_type;
                    columns[i].native_type = None;
                    columns[i].nullable = true;
                }
                i
            }
            None => {
                columns.push(Column::new(self.field.clone(), data_type));
                columns.len() - 1
            }
        };
        Ok(SetPlan {
            index,
            fill,
            schema: Arc::new(schema.derive(columns)),
        })
    }
}

/// The new value for the record's current `values`.
fn compute(plan: &SetPlan, record: &Record) -> Result<Value, String> {
    match &plan.fill {
        Fill::Constant(v) => Ok(v.clone()),
        Fill::Computed(f) => Ok(f(record)),
        Fill::Template(t, dt) => {
            // With nulls rendered as nothing, rendering cannot fail.
            let v = Value::String(t.render(&record.values, true).unwrap_or_default());
            if *dt == DataType::String {
                return Ok(v);
            }
            cast_value(&v, *dt).map_err(|e| {
                let field = plan
                    .schema
                    .columns()
                    .get(plan.index)
                    .map_or("?", |c| c.name.as_str());
                format!(
                    "set of field {field:?} in {}: {e}",
                    record.schema.qualified_name()
                )
            })
        }
    }
}

fn store(values: &mut Vec<Value>, index: usize, v: Value) {
    if index >= values.len() {
        values.resize(index, Value::Null);
        values.push(v);
    } else {
        values[index] = v;
    }
}

impl Transform for SetField {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        SetField::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, plan) = self.plans.for_record(record, |s| self.derive(s))?;
        let after = match compute(&plan, &record) {
            Ok(v) => v,
            Err(message) => return Err(TransformError::new(record, message)),
        };
        let before = with_before(&mut record, |r| compute(&plan, r));
        let before = match before.transpose() {
            Ok(v) => v,
            Err(message) => return Err(TransformError::new(record, message)),
        };
        store(&mut record.values, plan.index, after);
        if let (Some(values), Some(v)) = (record.before.as_mut(), before) {
            store(values, plan.index, v);
        }
        record.schema = plan.schema.clone();
        Ok(Some(record))
    }
}

//! [`Cast`]: convert fields to another type.

use std::sync::Arc;

use crate::record::Record;
use crate::schema::{DataType, Schema};
use crate::transform::{Transform, TransformError};
use crate::value::Value;

use super::convert::{cast_value, matches_type, parse_data_type};
use super::plan::{position, Plans};

struct CastPlan {
    targets: Vec<(usize, DataType)>,
    schema: Arc<Schema>,
}

/// Converts fields to other types, exactly or not at all (see the [cast matrix](super::convert)).
///
/// The output schema gets the new column types once per input schema (a changed column loses
/// its native type); values are converted in place, and a value already of the target kind
/// is not touched. `NULL` stays `NULL`. A value that cannot be converted rejects the record
/// with a message naming the field, the table, the value and the type:
/// `cast of field "price" in shop.products: "abc" is not a decimal`. Before-images of updates
/// are converted too.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::Cast;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("products", vec![
///     Column::new("price", DataType::String),
/// ]).with_namespace("shop"));
/// let cast = Cast::new([("price", DataType::Decimal { precision: 10, scale: 2 })]);
///
/// let out = cast.apply(Record::read(schema.clone(), vec![Value::from("9.5")])).unwrap().unwrap();
/// assert_eq!(out.values[0].to_string(), "9.50");
///
/// let err = cast.apply(Record::read(schema, vec![Value::from("abc")])).unwrap_err();
/// assert_eq!(err.message, r#"cast of field "price" in shop.products: "abc" is not a decimal"#);
/// ```
#[derive(Debug)]
pub struct Cast {
    fields: Vec<(String, DataType)>,
    ignore_missing: bool,
    plans: Plans<CastPlan>,
}

impl Cast {
    /// Casts each `(field, type)` pair.
    pub fn new<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = (S, DataType)>,
        S: Into<String>,
    {
        Cast {
            fields: fields.into_iter().map(|(f, t)| (f.into(), t)).collect(),
            ignore_missing: false,
            plans: Plans::new(),
        }
    }

    /// Casts with type names as configs write them (`"int"`, `"decimal(10,2)"`, see
    /// [`parse_data_type`]); the error names the unknown type.
    pub fn parse<I, S, T>(fields: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: AsRef<str>,
    {
        let mut out = Vec::new();
        for (f, t) in fields {
            let f = f.into();
            let dt = parse_data_type(t.as_ref()).map_err(|e| format!("cast of {f:?}: {e}"))?;
            out.push((f, dt));
        }
        Ok(Cast::new(out))
    }

    /// Skips fields a schema does not have instead of rejecting its records.
    pub fn ignore_missing(mut self, yes: bool) -> Self {
        self.ignore_missing = yes;
        self
    }

    /// The schema records of `input` get, or the config error naming the unknown field.
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.plans
            .get(input, |s| self.derive(s))
            .map(|p| p.schema.clone())
            .map_err(|e| e.to_string())
    }

    /// Checks that every field exists in `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }

    fn derive(&self, schema: &Schema) -> Result<CastPlan, String> {
        let mut columns = schema.columns().to_vec();
        let mut targets = Vec::with_capacity(self.fields.len());
        for (field, dt) in &self.fields {
            let i = match position("cast", field, schema) {
                Ok(i) => i,
                Err(_) if self.ignore_missing => continue,
                Err(e) => return Err(e),
            };
            if columns[i].data_type != *dt {
                columns[i].data_type = *dt;
                columns[i].native_type = None;
            }
            targets.push((i, *dt));
        }
        Ok(CastPlan {
            targets,
            schema: Arc::new(schema.derive(columns)),
        })
    }
}

/// Casts the plan's fields of `values` in place. Originals of changed values go to `undo`
/// (when given) so that a later failure can restore the record; the error names the field.
fn cast_values(
    values: &mut [Value],
    schema: &Schema,
    plan: &CastPlan,
    image: &str,
    mut undo: Option<&mut Vec<(usize, Value)>>,
) -> Result<(), String> {
    for &(i, dt) in &plan.targets {
        let Some(v) = values.get_mut(i) else {
            continue;
        };
        if matches_type(v, dt) && !matches!(dt, DataType::Decimal { .. }) {
            continue;
        }
        match cast_value(v, dt) {
            Ok(new) => {
                let old = std::mem::replace(v, new);
                if let Some(undo) = undo.as_deref_mut() {
                    undo.push((i, old));
                }
            }
            Err(e) => {
                let name = schema.columns().get(i).map_or("?", |c| c.name.as_str());
                return Err(format!(
                    "cast of field {name:?}{image} in {}: {e}",
                    schema.qualified_name()
                ));
            }
        }
    }
    Ok(())
}

fn restore(values: &mut [Value], undo: Vec<(usize, Value)>) {
    for (i, old) in undo {
        if let Some(v) = values.get_mut(i) {
            *v = old;
        }
    }
}

impl Transform for Cast {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        Cast::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, plan) = self.plans.for_record(record, |s| self.derive(s))?;
        // A failure must reject the record as it came in; keeping originals costs an
        // allocation, needed only when a conversion can be followed by a failing one.
        let images = 1 + usize::from(record.before.is_some());
        let need_undo = plan.targets.len() * images > 1;
        let mut undo_after = Vec::new();
        let after = cast_values(
            &mut record.values,
            &record.schema,
            &plan,
            "",
            need_undo.then_some(&mut undo_after),
        );
        if let Err(message) = after {
            restore(&mut record.values, undo_after);
            return Err(TransformError::new(record, message));
        }
        if let Some(before) = record.before.as_mut() {
            let mut undo_before = Vec::new();
            let r = cast_values(
                before,
                &record.schema,
                &plan,
                " (before-image)",
                Some(&mut undo_before),
            );
            if let Err(message) = r {
                restore(before, undo_before);
                restore(&mut record.values, undo_after);
                return Err(TransformError::new(record, message));
            }
        }
        record.schema = plan.schema.clone();
        Ok(Some(record))
    }
}

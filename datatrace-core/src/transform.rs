//! The [`Transform`] trait: per-record changes between source and sink.

use std::sync::Arc;

use crate::record::Record;
use crate::schema::Schema;
use crate::table_change::TableChange;

/// A record that a transform could not handle, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TransformError {
    /// The record as it was when the transform gave up (for the dead-letter queue).
    pub record: Box<Record>,
    /// What went wrong, naming the field and the value.
    pub message: String,
}

impl TransformError {
    /// An error for `record`.
    pub fn new(record: Record, message: impl Into<String>) -> Self {
        TransformError {
            record: Box::new(record),
            message: message.into(),
        }
    }
}

/// Changes, drops or routes records, one at a time, synchronously and cheaply.
///
/// `Ok(Some(r))` passes `r` on, `Ok(None)` drops the record (it counts as handled),
/// `Err` rejects it under the pipeline's error policy. Any
/// `Fn(Record) -> Option<Record>` is a transform:
///
/// ```
/// use datatrace_core::{Record, Transform, Value};
/// let drop_odd = |r: Record| match r.values[0] {
///     Value::Int(i) if i % 2 == 1 => None,
///     _ => Some(r),
/// };
/// # fn is_transform<T: Transform>(_: &T) {}
/// is_transform(&drop_odd);
/// ```
///
/// Transforms that change the shape of records should derive their output schema once per
/// input schema (see [`crate::transforms::SchemaCache`]), not once per record.
pub trait Transform: Send + Sync {
    /// Transforms one record.
    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError>;

    /// The schema of the records this transform makes out of records of `input`, or why it
    /// cannot handle them (an unknown field). Sinks create their targets from it before the
    /// first record arrives. The default (also for closures) says the shape does not change.
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        Ok(input.clone())
    }

    /// What this transform makes of a change to a whole table ([`TableChange`]): `Ok(Some)`
    /// passes it on (routing transforms set its targets), `Ok(None)` drops it, `Err` fails
    /// the unit with the message (a change that cannot be mapped to a target). The default
    /// passes it on unchanged: per-record transforms (filters, field changes) do not apply.
    fn table_change(&self, change: TableChange) -> Result<Option<TableChange>, String> {
        Ok(Some(change))
    }
}

impl<F> Transform for F
where
    F: Fn(Record) -> Option<Record> + Send + Sync,
{
    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        Ok(self(record))
    }
}

/// Transforms applied in order; a record dropped or rejected by one skips the rest.
pub struct Chain(pub Vec<Box<dyn Transform>>);

impl Transform for Chain {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, TransformError> {
        for t in &self.0 {
            match t.apply(record)? {
                Some(r) => record = r,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }

    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        let mut schema = input.clone();
        for t in &self.0 {
            schema = t.output_schema(&schema)?;
        }
        Ok(schema)
    }

    fn table_change(&self, mut change: TableChange) -> Result<Option<TableChange>, String> {
        for t in &self.0 {
            match t.table_change(change)? {
                Some(c) => change = c,
                None => return Ok(None),
            }
        }
        Ok(Some(change))
    }
}

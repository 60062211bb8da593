//! Per-schema plans shared by the built-in transforms: a cache of what a transform worked out
//! for one input schema (column positions, output schema), including config errors.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use crate::record::Record;
use crate::schema::Schema;
use crate::transform::TransformError;

use super::SchemaCache;

/// What a transform derived for one input schema, or why it cannot handle that schema.
pub(crate) type PlanResult<P> = Result<Arc<P>, Arc<str>>;

/// A [`SchemaCache`] of plans; errors are cached too, so a misconfigured transform costs one
/// message clone per record, not a new derivation.
pub(crate) struct Plans<P> {
    cache: SchemaCache<PlanResult<P>>,
}

impl<P> Plans<P> {
    pub(crate) fn new() -> Self {
        Plans {
            cache: SchemaCache::new(),
        }
    }

    /// The plan for `schema`, building it with `build` the first time.
    pub(crate) fn get(
        &self,
        schema: &Arc<Schema>,
        build: impl FnOnce(&Schema) -> Result<P, String>,
    ) -> PlanResult<P> {
        let r: Result<_, Infallible> = self.cache.get_or_try(schema, |s| {
            Ok(build(s).map(Arc::new).map_err(Arc::<str>::from))
        });
        match r {
            Ok(plan) => plan,
            Err(never) => match never {},
        }
    }

    /// The plan for the record's schema, or the record rejected with the plan's error.
    pub(crate) fn for_record(
        &self,
        record: Record,
        build: impl FnOnce(&Schema) -> Result<P, String>,
    ) -> Result<(Record, Arc<P>), TransformError> {
        match self.get(&record.schema, build) {
            Ok(plan) => Ok((record, plan)),
            Err(message) => Err(TransformError::new(record, message.to_string())),
        }
    }
}

impl<P> fmt::Debug for Plans<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plans")
    }
}

/// `"{transform}: unknown field "x" in db.table (fields: a, b, c)"`.
pub(crate) fn unknown_field(transform: &str, field: &str, schema: &Schema) -> String {
    const SHOWN: usize = 24;
    let mut names: Vec<&str> = schema
        .columns()
        .iter()
        .take(SHOWN)
        .map(|c| c.name.as_str())
        .collect();
    if schema.len() > SHOWN {
        names.push("...");
    }
    format!(
        "{transform}: unknown field {field:?} in {} (fields: {})",
        schema.qualified_name(),
        names.join(", ")
    )
}

/// The position of `field`, or the unknown-field message.
pub(crate) fn position(transform: &str, field: &str, schema: &Schema) -> Result<usize, String> {
    schema
        .index_of(field)
        .ok_or_else(|| unknown_field(transform, field, schema))
}

/// Applies `f` to the before-image as if it were the record's values (the record's schema
/// stays): swaps the vectors, so nothing is copied.
pub(crate) fn with_before<T>(record: &mut Record, f: impl FnOnce(&mut Record) -> T) -> Option<T> {
    let mut before = record.before.take()?;
    std::mem::swap(&mut record.values, &mut before);
    let out = f(record);
    std::mem::swap(&mut record.values, &mut before);
    record.before = Some(before);
    Some(out)
}

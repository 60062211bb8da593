//! [`PlannedUnit`]: one unit of a planned job.

use std::sync::Arc;

use datatrace_core::{SchemaRef, Sink, Source, Transform};

/// One unit of a planned job.
pub struct PlannedUnit {
    /// The unit's name (checkpoints are keyed by it): the table or index.
    pub name: String,
    /// What it is written to (table or index name), for people.
    pub target: String,
    /// Its reader.
    pub source: Arc<dyn Source>,
    /// Its writer.
    pub sink: Arc<dyn Sink>,
    /// The source's schema, when known before reading.
    pub schema: Option<SchemaRef>,
    /// Transforms of this unit only, run before the job's (the generator's naming).
    pub own_transforms: Vec<Arc<dyn Transform>>,
    /// How many records the source expects, when it can tell.
    pub estimated_rows: Option<u64>,
}

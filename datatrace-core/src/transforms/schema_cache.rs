//! [`SchemaCache`]: derive an output schema once per input schema.

use std::sync::{Arc, Mutex};

use crate::schema::Schema;

/// Remembers the output schema derived for the most recent few input schemas, so that a
/// shape-changing transform derives a new `Arc<Schema>` once per input schema, not per record.
/// Input schemas are matched by pointer first, then by value.
#[derive(Debug, Default)]
pub struct SchemaCache<T: Clone = Arc<Schema>> {
    entries: Mutex<Vec<(Arc<Schema>, T)>>,
}

const CAPACITY: usize = 16;

impl<T: Clone> SchemaCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        SchemaCache {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value derived for `input`, computing it with `derive` the first time.
    pub fn get_or_try<E>(
        &self,
        input: &Arc<Schema>,
        derive: impl FnOnce(&Schema) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = entries.iter().find(|(k, _)| Arc::ptr_eq(k, input)) {
            return Ok(v.clone());
        }
        if let Some((_, v)) = entries.iter().find(|(k, _)| **k == **input) {
            return Ok(v.clone());
        }
        let v = derive(input)?;
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push((input.clone(), v.clone()));
        Ok(v)
    }
}

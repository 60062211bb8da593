//! Sources and sinks for tests, examples and benchmarks: [`MemorySource`] and
//! [`CollectingSink`] (with the built-in [`GeneratorSource`] and [`DiscardSink`] re-exported).
//! Compiled for this crate's tests and with the `testing` feature (which dev-dependencies
//! turn on); production code has no use for them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::builtin::{part_range, range_parts, resume_at, Next};
use crate::error::Result;
use crate::record::{Batch, Position, Record};
use crate::schema::Schema;
use crate::sink::{Outcome, Sink, SinkError};
use crate::source::{Emitter, Part, Source};

pub use crate::builtin::{DiscardSink, GeneratorSource};

/// Records held in memory, split into index ranges; checkpoints every `checkpoint_every`
/// records as `{"next": index}`.
#[derive(Debug, Clone)]
pub struct MemorySource {
    records: Arc<Vec<Record>>,
    checkpoint_every: u64,
}

impl MemorySource {
    /// A source of these records, checkpointing every 100.
    pub fn new(records: Vec<Record>) -> Self {
        MemorySource {
            records: Arc::new(records),
            checkpoint_every: 100,
        }
    }
    /// Checkpoints every `n` records.
    pub fn checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n.max(1);
        self
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn schema(&self) -> Result<Option<Arc<Schema>>> {
        Ok(self.records.first().map(|r| r.schema.clone()))
    }
    async fn split(&self, max_parts: usize) -> Result<Vec<Part>> {
        Ok(range_parts(self.records.len() as u64, max_parts))
    }
    async fn estimate_rows(&self) -> Option<u64> {
        Some(self.records.len() as u64)
    }
    async fn read(&self, part: &Part, from: Option<Position>, out: &mut Emitter) -> Result<()> {
        let (start, end) = part_range(part, self.records.len() as u64)?;
        let mut i = resume_at(part, from, start)?;
        while i < end {
            out.emit(self.records[i as usize].clone()).await?;
            i += 1;
            if (i - start) % self.checkpoint_every == 0 {
                out.checkpoint(Position::of(&Next { next: i })).await?;
            }
        }
        Ok(())
    }
}

/// Keeps every written record in memory, and the table changes it was given (a
/// `TRUNCATE` or `DROP TABLE` removes the records kept for that target).
#[derive(Debug, Default)]
pub struct CollectingSink {
    records: Mutex<Vec<Record>>,
    changes: Mutex<Vec<crate::TableChange>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }
    /// The records written so far, in write order.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// How many records were written.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The table changes applied so far, in order.
    pub fn table_changes(&self) -> Vec<crate::TableChange> {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Sink for CollectingSink {
    async fn write(&self, batch: &Batch) -> std::result::Result<Vec<Outcome>, SinkError> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(batch.records.iter().cloned());
        Ok(vec![Outcome::Written; batch.len()])
    }

    async fn table_change(
        &self,
        change: &crate::TableChange,
    ) -> std::result::Result<(), SinkError> {
        if !matches!(change.kind, crate::TableChangeKind::Rename { .. }) {
            let target = change.target_name();
            self.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|r| r.target_name() != target);
        }
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(change.clone());
        Ok(())
    }
}

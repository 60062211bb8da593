//! Sources and sinks for tests, examples and benchmarks: [`MemorySource`],
//! [`GeneratorSource`], [`CollectingSink`] and [`DiscardSink`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use crate::decimal::Decimal;
use crate::error::Result;
use crate::record::{Batch, Position, Record};
use crate::schema::{Column, DataType, Schema};
use crate::sink::{Outcome, Sink, SinkError};
use crate::source::{Emitter, Part, Source};
use crate::value::Value;

/// Splits `0..n` into at most `parts` contiguous ranges as parts with specs `{"from", "to"}`.
fn range_parts(n: u64, parts: usize) -> Vec<Part> {
    let parts = (parts.max(1) as u64).min(n.max(1));
    let step = n.div_ceil(parts).max(1);
    (0..parts)
        .map(|i| (i * step, ((i + 1) * step).min(n)))
        .filter(|(a, b)| a < b || n == 0)
        .enumerate()
        .map(|(i, (from, to))| Part {
            id: format!("range-{i}"),
            spec: json!({"from": from, "to": to}),
        })
        .collect()
}

fn part_range(part: &Part, n: u64) -> (u64, u64) {
    let from = part.spec.get("from").and_then(|v| v.as_u64()).unwrap_or(0);
    let to = part.spec.get("to").and_then(|v| v.as_u64()).unwrap_or(n);
    (from, to.min(n))
}

/// Resumes after the index stored as `{"next": i}`.
fn resume_at(from: Option<Position>, start: u64) -> u64 {
    from.and_then(|p| p.state.get("next").and_then(|v| v.as_u64()))
        .unwrap_or(start)
}

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
        let (start, end) = part_range(part, self.records.len() as u64);
        let mut i = resume_at(from, start);
        while i < end {
            out.emit(self.records[i as usize].clone()).await?;
            i += 1;
            if (i - start) % self.checkpoint_every == 0 {
                out.checkpoint(Position::new(json!({ "next": i }))).await?;
            }
        }
        Ok(())
    }
}

/// Synthetic rows for benchmarks and tests: an `id` key (0, 1, 2, ...) and `columns - 1`
/// more columns cycling through int, string of `width` characters, float and decimal; the
/// same index always gives the same row. Split into index ranges, checkpointed every 1,000
/// rows.
#[derive(Debug, Clone)]
pub struct GeneratorSource {
    rows: u64,
    width: usize,
    schema: Arc<Schema>,
    /// `abc...xyzabc...`, long enough to cut any string of `width` from.
    pattern: String,
}

impl GeneratorSource {
    /// `rows` rows of `columns` columns (at least 1) with strings `width` characters wide.
    pub fn new(rows: u64, columns: usize, width: usize) -> Self {
        let mut cols = vec![Column::new("id", DataType::Int).not_null()];
        for c in 1..columns.max(1) {
            let t = match c % 4 {
                1 => DataType::Int,
                2 => DataType::String,
                3 => DataType::Float,
                _ => DataType::Decimal {
                    precision: 12,
                    scale: 2,
                },
            };
            cols.push(Column::new(format!("c{c}"), t));
        }
        let schema = Schema::new("generated", cols)
            .with_primary_key(&["id"])
            .expect("id exists");
        let pattern = "abcdefghijklmnopqrstuvwxyz".repeat(width / 26 + 2);
        GeneratorSource {
            rows,
            width,
            schema: Arc::new(schema),
            pattern,
        }
    }

    /// The row with index `i`.
    pub fn row(&self, i: u64) -> Record {
        let mut values = Vec::with_capacity(self.schema.len());
        values.push(Value::Int(i as i64));
        for c in 1..self.schema.len() {
            values.push(match c % 4 {
                1 => Value::Int((i as i64).wrapping_mul(31).wrapping_add(c as i64)),
                2 => {
                    let start = (i as usize).wrapping_add(c) % 26;
                    Value::String(self.pattern[start..start + self.width].to_owned())
                }
                3 => Value::Float(i as f64 * 0.5),
                _ => Value::Decimal(Decimal::from_scaled(i as i128 * 100 + (c % 100) as i128, 2)),
            });
        }
        Record::read(self.schema.clone(), values)
    }
}

#[async_trait]
impl Source for GeneratorSource {
    async fn schema(&self) -> Result<Option<Arc<Schema>>> {
        Ok(Some(self.schema.clone()))
    }
    async fn split(&self, max_parts: usize) -> Result<Vec<Part>> {
        Ok(range_parts(self.rows, max_parts))
    }
    async fn estimate_rows(&self) -> Option<u64> {
        Some(self.rows)
    }
    async fn read(&self, part: &Part, from: Option<Position>, out: &mut Emitter) -> Result<()> {
        let (start, end) = part_range(part, self.rows);
        let mut i = resume_at(from, start);
        while i < end {
            out.emit(self.row(i)).await?;
            i += 1;
            if i % 1000 == 0 {
                out.checkpoint(Position::new(json!({ "next": i }))).await?;
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

/// Counts records and drops them: measures everything but the store.
#[derive(Debug, Default)]
pub struct DiscardSink {
    count: AtomicU64,
}

impl DiscardSink {
    /// A new sink.
    pub fn new() -> Self {
        Self::default()
    }
    /// Records received.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Sink for DiscardSink {
    async fn write(&self, batch: &Batch) -> std::result::Result<Vec<Outcome>, SinkError> {
        self.count.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(vec![Outcome::Written; batch.len()])
    }

    async fn table_change(
        &self,
        _change: &crate::TableChange,
    ) -> std::result::Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        for n in [0u64, 1, 7, 1000, 1001] {
            for p in [1usize, 2, 3, 64] {
                let parts = range_parts(n, p);
                let mut covered = 0;
                let mut next = 0;
                for part in &parts {
                    let (a, b) = part_range(part, n);
                    assert_eq!(a, next);
                    covered += b - a;
                    next = b;
                }
                assert_eq!(covered, n, "n={n} p={p}");
                assert!(!parts.is_empty());
            }
        }
    }
}

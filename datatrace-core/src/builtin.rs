//! The built-in endpoints: [`GeneratorSource`] (synthetic rows, for benchmarks and smoke
//! tests of a deployment: the job files' `generator` source) and [`DiscardSink`] (counts and
//! drops records: the `discard` target, measuring everything but the store).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::decimal::Decimal;
use crate::error::Result;
use crate::record::{Batch, Position, Record};
use crate::schema::{Column, DataType, Schema};
use crate::sink::{Outcome, Sink, SinkError};
use crate::source::{Emitter, Part, Source};
use crate::value::Value;

/// The spec of a part of an index range: records `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RangeSpec {
    from: u64,
    to: u64,
}

/// Where the read of a range resumes: at index `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Next {
    pub(crate) next: u64,
}

/// Splits `0..n` into at most `parts` contiguous ranges as parts with specs `{"from", "to"}`.
pub(crate) fn range_parts(n: u64, parts: usize) -> Vec<Part> {
    let parts = (parts.max(1) as u64).min(n.max(1));
    let step = n.div_ceil(parts).max(1);
    (0..parts)
        .map(|i| (i * step, ((i + 1) * step).min(n)))
        .filter(|(a, b)| a < b || n == 0)
        .enumerate()
        .map(|(i, (from, to))| Part::with_spec(format!("range-{i}"), &RangeSpec { from, to }))
        .collect()
}

/// The range of a part (the whole `0..n` for [`Part::whole`]); a damaged spec is an error.
pub(crate) fn part_range(part: &Part, n: u64) -> Result<(u64, u64)> {
    if part.spec.is_null() {
        return Ok((0, n));
    }
    let r: RangeSpec =
        part.spec_as("an index range")
            .map_err(|e| crate::Error::DamagedCheckpoint {
                unit: part.id.clone(),
                source: Box::new(e),
            })?;
    Ok((r.from, r.to.min(n)))
}

/// Where a range resumes: after the index stored as `{"next": i}`, else at `start`.
pub(crate) fn resume_at(part: &Part, from: Option<Position>, start: u64) -> Result<u64> {
    match from {
        Some(p) => p
            .state_as::<Next>(&part.id, "an index position")
            .map(|n| n.next)
            .map_err(|e| crate::Error::DamagedCheckpoint {
                unit: part.id.clone(),
                source: Box::new(e),
            }),
        None => Ok(start),
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
        let (start, end) = part_range(part, self.rows)?;
        let mut i = resume_at(part, from, start)?;
        while i < end {
            out.emit(self.row(i)).await?;
            i += 1;
            if i % 1000 == 0 {
                out.checkpoint(Position::of(&Next { next: i })).await?;
            }
        }
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
                    let (a, b) = part_range(part, n).unwrap();
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

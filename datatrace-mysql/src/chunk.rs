//! Chunk planning: how a table is cut into parts by key ranges.
//!
//! A part covers keys in `(lo, hi]` (`None` = unbounded), the parts of a table tile the key
//! space without gaps or overlaps, the first starts at `-inf` and the last ends at `+inf`, so
//! every row is read exactly once whatever its key, including rows inserted beyond the old
//! maximum. Boundaries come from one of two planners:
//!
//! - dense integer keys (`max - min + 1 <= 2 x rows`): arithmetic ranges, no extra query;
//! - anything else (sparse integers with big gaps, negative keys, strings, composite keys):
//!   boundary sampling by walking the key index with
//!   `SELECT key FROM t WHERE key > last ORDER BY key LIMIT 1 OFFSET step-1`: one index-only
//!   range scan over the table in total, and chunks of exactly `step` rows whatever the gaps.

use datatrace_core::{DamagedCheckpoint, Part, Value};
use serde::{Deserialize, Serialize};

use crate::snapshot::BinlogPosition;

/// What a part of a table covers (the `spec` of its [`Part`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkSpec {
    /// Exclusive lower bound of the key (`None`: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo: Option<Vec<Value>>,
    /// Inclusive upper bound of the key (`None`: to the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi: Option<Vec<Value>>,
    /// A sequential scan of a table without key (no resume inside).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scan: bool,
    /// The binlog position of the consistent snapshot this plan belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<BinlogPosition>,
}

impl ChunkSpec {
    /// As a [`Part`] named `chunk-NNNN`.
    pub fn into_part(self, index: usize) -> Part {
        Part {
            id: if self.scan {
                "scan".into()
            } else {
                format!("chunk-{index:04}")
            },
            spec: serde_json::to_value(&self).unwrap_or(serde_json::Value::Null),
        }
    }
    /// Reads the spec of a part (the whole table for [`Part::whole`]); a spec that is not a
    /// chunk's (a damaged or foreign checkpoint) is an error naming the part.
    pub fn from_part(part: &Part) -> Result<ChunkSpec, DamagedCheckpoint> {
        if part.spec.is_null() {
            return Ok(ChunkSpec::default());
        }
        part.spec_as("a MySQL chunk")
    }
}

/// Where the read of a chunk resumes: after the row with key `last` (`None`: from the
/// chunk's start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkPosition {
    /// The key of the last row acknowledged (required in checkpoints, `null` allowed).
    #[serde(deserialize_with = "Option::deserialize")]
    pub last: Option<Vec<Value>>,
    /// Where a scan of a table without key ended: the binlog position of the consistent
    /// snapshot it read, from which a `snapshot+cdc` stream skips the table's changes that
    /// the copy holds (`binlog::handoff::Handoff::floors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::snapshot::BinlogPosition>,
}

/// How many chunks for `rows` rows of `chunk_rows` each, at most `max_parts`.
pub fn chunk_count(rows: u64, chunk_rows: u64, max_parts: usize) -> usize {
    let n = rows.div_ceil(chunk_rows.max(1)).max(1);
    n.min(max_parts.max(1) as u64) as usize
}

/// Whether an integer key spread over `min..=max` with `rows` rows is dense enough for
/// arithmetic ranges.
pub fn is_dense(min: i128, max: i128, rows: u64) -> bool {
    max >= min && (max - min + 1) <= 2 * (rows.max(1) as i128)
}

/// Boundaries splitting `min..=max` into `n` arithmetic ranges: `n - 1` values `b` such that
/// the parts are `(-inf, b1], (b1, b2], ..., (b_{n-1}, +inf)`.
pub fn int_boundaries(min: i128, max: i128, n: usize) -> Vec<i128> {
    if n <= 1 || max < min {
        return Vec::new();
    }
    let span = max - min + 1;
    let mut out: Vec<i128> = (1..n as i128)
        .map(|i| min - 1 + span * i / n as i128)
        .collect();
    out.dedup();
    out.retain(|&b| b >= min && b < max);
    out
}

/// An integer key value as i128 (for range arithmetic).
pub fn as_i128(v: &Value) -> Option<i128> {
    match *v {
        Value::Int(i) => Some(i as i128),
        Value::UInt(u) => Some(u as i128),
        _ => None,
    }
}

/// `b` as the same integer variant as `like`.
pub fn int_value(b: i128, like: &Value) -> Value {
    match like {
        Value::UInt(_) => Value::UInt(b as u64),
        _ => Value::Int(b as i64),
    }
}

/// Turns boundaries (each a key) into contiguous specs covering the whole key space.
pub fn specs_from_boundaries(boundaries: Vec<Vec<Value>>) -> Vec<ChunkSpec> {
    let mut specs = Vec::with_capacity(boundaries.len() + 1);
    let mut lo: Option<Vec<Value>> = None;
    for b in boundaries {
        specs.push(ChunkSpec {
            lo: lo.take(),
            hi: Some(b.clone()),
            ..Default::default()
        });
        lo = Some(b);
    }
    specs.push(ChunkSpec {
        lo,
        hi: None,
        ..Default::default()
    });
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(chunk_count(0, 100, 8), 1);
        assert_eq!(chunk_count(100, 100, 8), 1);
        assert_eq!(chunk_count(101, 100, 8), 2);
        assert_eq!(chunk_count(1_000_000, 100, 8), 8);
    }

    #[test]
    fn arithmetic_boundaries_tile_the_range() {
        let b = int_boundaries(1, 100, 4);
        assert_eq!(b, vec![25, 50, 75]);
        let b = int_boundaries(-10, 9, 2);
        assert_eq!(b, vec![-1]);
        assert!(int_boundaries(5, 5, 4).is_empty());
        let b = int_boundaries(i64::MIN as i128, i64::MAX as i128, 3);
        assert_eq!(b.len(), 2);
        assert!(is_dense(1, 100, 60));
        assert!(!is_dense(1, 1_000_000, 10));
    }

    #[test]
    fn specs_are_contiguous() {
        let specs = specs_from_boundaries(vec![vec![Value::Int(10)], vec![Value::Int(20)]]);
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].lo, None);
        assert_eq!(specs[0].hi, Some(vec![Value::Int(10)]));
        assert_eq!(specs[1].lo, Some(vec![Value::Int(10)]));
        assert_eq!(specs[2].hi, None);
        let part = specs[1].clone().into_part(1);
        assert_eq!(part.id, "chunk-0001");
        assert_eq!(ChunkSpec::from_part(&part).unwrap(), specs[1]);
        let big = ChunkSpec {
            lo: Some(vec![Value::UInt(u64::MAX)]),
            ..Default::default()
        };
        assert_eq!(
            ChunkSpec::from_part(&big.clone().into_part(0)).unwrap(),
            big
        );
    }
}

//! One side of a unit as `check` sees it, provided by its connector
//! ([`crate::connectors::SourceEndpoint::check_source`],
//! [`crate::connectors::TargetEndpoint::check_target`]): scans in parts, lookups by key,
//! and the identity and form of target rows. The generic comparison in [`super::unit`],
//! [`super::pass`] and [`super::confirm`] works on these alone.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{DataType, Emitted, Emitter, Part, Record, Schema, Source, Value};

use super::normalize::{key_display, value_to_json, Doc, Rules};

/// Results of the check's own reads; the message names what was read.
pub type R<T> = Result<T, String>;

/// Records a chunk of a scan holds at most, and channel depth (memory bound).
const CHANNEL_CHUNKS: usize = 2;

/// Reads `part` of `source` in chunks of at most `chunk` records and hands each to `f`.
/// Memory: a few chunks, whatever the part's size.
pub async fn read_chunks<F, Fut>(
    source: Arc<dyn Source>,
    part: Part,
    chunk: usize,
    mut f: F,
) -> R<()>
where
    F: FnMut(Vec<Record>) -> Fut,
    Fut: Future<Output = R<()>>,
{
    let (mut em, mut rx) = Emitter::for_test(chunk.max(1), CHANNEL_CHUNKS);
    let reader = tokio::spawn(async move {
        let r = source.read(&part, None, &mut em).await;
        if r.is_ok() {
            let _ = em.flush().await;
        }
        r.map_err(|e| e.to_string())
    });
    let mut failed = None;
    while let Some(item) = rx.recv().await {
        if let Emitted::Records(records) = item {
            if let Err(e) = f(records).await {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        reader.abort();
        return Err(e);
    }
    match reader.await {
        Ok(r) => r,
        Err(e) => Err(format!("reader task failed: {e}")),
    }
}

/// Every record of every part (for lookups, whose size is bounded by the batch).
pub async fn read_all(source: Arc<dyn Source>, parts: Vec<Part>) -> R<Vec<Record>> {
    let mut out = Vec::new();
    for part in parts {
        read_chunks(source.clone(), part, 1000, |mut records| {
            out.append(&mut records);
            async { Ok(()) }
        })
        .await?;
    }
    Ok(out)
}

/// A target row's identity: the document id, or the key values of a table row (`id` is
/// then their normalized JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetKey {
    /// The identity compared.
    pub id: String,
    /// The key values (`[id]` for documents).
    pub key: Vec<Value>,
}

impl TargetKey {
    /// For people: the id, or the key values joined by commas.
    pub fn display(&self) -> String {
        key_display(&self.key)
    }
}

/// The identity of a table row from its key values.
pub fn table_key(key: Vec<Value>) -> TargetKey {
    TargetKey {
        id: key_id(&key),
        key,
    }
}

/// Key values as one comparable text: their normalized JSON (`[1,"x"]`), so `Int(5)` and
/// `UInt(5)` are one key.
pub fn key_id(key: &[Value]) -> String {
    let norm: Vec<serde_json::Value> = key.iter().map(value_to_json).collect();
    serde_json::Value::Array(norm).to_string()
}

/// The source of a unit, for `check`.
#[async_trait]
pub trait CheckSource: Send + Sync {
    /// The key of a record it reads.
    fn key_of(&self, r: &Record) -> Vec<Value>;

    /// The source key of a target row, given how `target` identifies its rows. `None` when
    /// the identity is not one of the source's keys (another encoding or key shape): such a
    /// row never matches a source row, and is never deleted.
    fn key_for(&self, tk: &TargetKey, target: &dyn CheckTarget) -> Option<Vec<Value>>;

    /// A reader of the whole source and its parts (about `chunk_rows` rows each, or
    /// `parallelism` slices).
    async fn parts(&self, chunk_rows: u64, parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)>;

    /// The rows with these keys (those the source's own filter keeps).
    async fn lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>>;

    /// A checksum of key ranges on both sides, when the connector can compare `target`
    /// that way (same server kind, same table shape, rows copied as they are).
    fn checksum(
        &self,
        target: &dyn CheckTarget,
        copied_as_is: bool,
    ) -> Option<Arc<dyn RangeChecksum>> {
        let _ = (target, copied_as_is);
        None
    }

    /// The side as its own type (for a target that reads with the source's settings).
    fn as_any(&self) -> &dyn Any;
}

/// The target of a unit, for `check`.
#[async_trait]
pub trait CheckTarget: Send + Sync {
    /// Where a source record, after the job's transforms, lands (`unit` and `target` name
    /// them in errors).
    fn key_of(&self, tr: &Record, unit: &str, target: &str) -> R<TargetKey>;

    /// A transformed source record as the target should hold it.
    fn doc_of(&self, tr: &Record, unit: &str) -> R<Doc>;

    /// A record read from the target: its identity and content.
    fn row(&self, r: &Record) -> (TargetKey, Doc);

    /// The target records with these identities.
    async fn lookup(&self, keys: &[TargetKey]) -> R<Vec<Record>>;

    /// A reader of the whole target and its parts.
    async fn parts(&self, chunk_rows: u64, parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)>;

    /// The source key values a target row's identity holds, given the source key's column
    /// types (a document id decoded with [`datatrace_core::doc_id`]; a table row's key as it
    /// is). `None` when the identity is not a key of that shape.
    fn key_parts(&self, tk: &TargetKey, types: &[DataType]) -> Option<Vec<Value>>;

    /// How the target's columns compare beyond equal values (a MySQL `FLOAT` column at
    /// float precision, MariaDB JSON text byte for byte).
    fn rules(&self) -> Rules {
        Rules::new()
    }

    /// The identity as one text (a document id; a table row's key values joined).
    fn id_text(&self, tk: &TargetKey) -> String;

    /// The values of a delete of the target row `t`, in `schema` (the unit's output
    /// schema), so that the unit's sink deletes it.
    fn delete_values(
        &self,
        t: &TargetKey,
        schema: &Schema,
        unit: &str,
        target: &str,
    ) -> R<Vec<Value>>;

    /// Makes what was just written visible to reads (search engines refresh).
    async fn refresh(&self) -> R<()> {
        Ok(())
    }

    /// The side as its own type.
    fn as_any(&self) -> &dyn Any;
}

/// Checksums of key ranges on both sides (the `checksum` method).
#[async_trait]
pub trait RangeChecksum: Send + Sync {
    /// The ranges, with readers of the source and the target for ranges that differ.
    async fn ranges(&self, chunk_rows: u64) -> R<(Arc<dyn Source>, Arc<dyn Source>, Vec<Part>)>;

    /// The rows of a range on each side and whether their checksums are equal.
    async fn compare(&self, range: &Part) -> R<(u64, u64, bool)>;

    /// The parts of a range whose checksums differ (`rows`: its rows on each side) that
    /// still differ, found by checksumming ever smaller sub-ranges down to about
    /// `leaf_rows` rows; together they hold every row that differs. The default: the range
    /// itself.
    async fn narrow(&self, range: &Part, rows: (u64, u64), leaf_rows: u64) -> R<Vec<Part>> {
        let _ = (rows, leaf_rows);
        Ok(vec![range.clone()])
    }
}

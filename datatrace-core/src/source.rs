//! The [`Source`] trait, its [`Part`]s, and the [`Emitter`] it writes records into.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::damaged::DamagedCheckpoint;
use crate::error::{BoxError, Result};
use crate::record::{Position, Record};
use crate::schema::Schema;
use crate::table_change::TableChange;

/// An independently readable piece of a unit: a primary-key range, an Elasticsearch slice, a
/// binlog stream. Parts are created once by [`Source::split`] and stored in the unit's
/// checkpoint, so a resumed unit reads the very same parts even if the table has changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// A name unique within the unit, for logs and checkpoints (`chunk-0007`, `slice-2`).
    pub id: String,
    /// What the source needs to read this part (bounds, slice number); opaque to the runner.
    pub spec: serde_json::Value,
}

impl Part {
    /// The single part that is the whole unit.
    pub fn whole() -> Self {
        Part {
            id: "all".into(),
            spec: serde_json::Value::Null,
        }
    }

    /// A part whose spec is `spec` (a source's own type, stored as JSON in checkpoints).
    pub fn with_spec(id: impl Into<String>, spec: &impl Serialize) -> Self {
        Part {
            id: id.into(),
            spec: serde_json::to_value(spec).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The spec read back as the source's type; a [`DamagedCheckpoint`] naming the part and
    /// `expected` (what the source reads, for the message) when it is not one.
    ///
    /// ```
    /// use datatrace_core::Part;
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Slice { slice: u64, max: u64 }
    /// let part = Part::with_spec("slice-1", &Slice { slice: 1, max: 4 });
    /// assert_eq!(part.spec_as::<Slice>("a slice").unwrap(), Slice { slice: 1, max: 4 });
    /// let damaged = Part { id: "slice-1".into(), spec: serde_json::json!({"slise": 1}) };
    /// let e = damaged.spec_as::<Slice>("a slice").unwrap_err();
    /// assert!(e.to_string().contains("part slice-1"));
    /// ```
    pub fn spec_as<T: DeserializeOwned>(&self, expected: &str) -> Result<T, DamagedCheckpoint> {
        T::deserialize(&self.spec).map_err(|e| {
            DamagedCheckpoint::new(
                format!("the spec of part {}", self.id),
                &self.spec,
                expected,
                e,
            )
        })
    }
}

/// Reads one unit (a table, an index, a binlog stream) into an [`Emitter`].
///
/// A source is shared by the parallel readers of its parts (`&self`), so per-read state lives
/// in [`Source::read`]. Reads must stream: memory use may depend on the page size, never on
/// the size of the unit; the emitter applies backpressure by waiting when the pipeline is
/// full.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use datatrace_core::{Column, DataType, Emitter, Part, Position, Record, Schema, Source, Value};
///
/// /// Counts from 0 to `n - 1`, resuming after the last acknowledged number.
/// struct Counter { n: i64, schema: Arc<Schema> }
///
/// #[async_trait]
/// impl Source for Counter {
///     async fn read(&self, _part: &Part, from: Option<Position>, out: &mut Emitter) -> datatrace_core::Result<()> {
///         let start = from.and_then(|p| p.state.as_i64()).map_or(0, |last| last + 1);
///         for i in start..self.n {
///             out.emit(Record::read(self.schema.clone(), vec![Value::Int(i)])).await?;
///             if i % 100 == 99 {
///                 out.checkpoint(Position::new(i.into())).await?;
///             }
///         }
///         Ok(())
///     }
/// }
/// # let _ = Counter { n: 1, schema: Arc::new(Schema::new("c", vec![Column::new("i", DataType::Int)])) };
/// ```
#[async_trait]
pub trait Source: Send + Sync {
    /// The schema of the unit, when it has a single one known before reading (tables and
    /// indices do, a binlog stream of many tables does not). Sinks use it to create targets.
    async fn schema(&self) -> Result<Option<Arc<Schema>>> {
        Ok(None)
    }

    /// Splits the unit into at most `max_parts` parts that can be read in parallel. The
    /// default is one part, the whole unit.
    async fn split(&self, max_parts: usize) -> Result<Vec<Part>> {
        let _ = max_parts;
        Ok(vec![Part::whole()])
    }

    /// How many records the unit holds, if the source can estimate it cheaply (for progress
    /// and ETA).
    async fn estimate_rows(&self) -> Option<u64> {
        None
    }

    /// Seconds until the source may discard data this unit still has to read, at least: a
    /// MySQL change stream's time until the binlog at its position may be purged (a Kafka
    /// topic's retention would be another). `None` (the default) when nothing is at risk or
    /// the source cannot tell. Sampled with every progress event (it must be cheap: sources
    /// compute it in the background).
    fn retention_secs(&self) -> Option<i64> {
        None
    }

    /// Whether reading from a checkpoint continues exactly after it (the default). A source
    /// that reads its unit again from the start whatever the checkpoint (a table without a
    /// key, read in one scan) says `false`: the runner then prepares the sink as for a
    /// fresh copy (`PrepareContext::resumed` is false), so a sink that cannot overwrite
    /// rows by key empties its target first instead of duplicating them.
    fn resumes_exactly(&self) -> bool {
        true
    }

    /// Whether its records must be written in the order they were read: a change stream's
    /// must (the default), a snapshot's rows of distinct keys need not. With
    /// `read_parallelism = 0` and `sink_concurrency = 0` (auto, the defaults) an ordered unit
    /// gets one reader and one writer (several writers with `partition_by_key`, which keeps
    /// each key's order), an unordered one several of each.
    fn ordered(&self) -> bool {
        true
    }

    /// How far behind each partition this unit reads is, for partitioned sources (a Kafka
    /// consumer: each assigned partition's end, the offset committed behind written records,
    /// and the difference). Empty (the default) for other sources. Sampled with every
    /// progress event: it must be cheap (no broker round trip).
    fn partition_lag(&self) -> Vec<crate::lag::PartitionLag> {
        Vec::new()
    }

    /// Reads `part` from just after `from` (from its start when `None`) into `out`, until the
    /// part is done or [`Emitter::emit`] reports that the pipeline stopped.
    ///
    /// Call [`Emitter::checkpoint`] at points where reading may resume (after a page, after a
    /// transaction); the runner commits such a position once every record emitted before it
    /// has been written.
    async fn read(&self, part: &Part, from: Option<Position>, out: &mut Emitter) -> Result<()>;

    /// Told, in order, each position of `part` (declared with [`Emitter::checkpoint`]) once
    /// every record emitted before it has been written, as soon as that is so (before the
    /// checkpoint store saves it, which happens at most every `checkpoint_interval`).
    ///
    /// Sources whose positions live in the system they read from, rather than in the
    /// pipeline's checkpoint store, record them here: a Kafka consumer commits its offsets
    /// only behind acknowledged writes this way. The default does nothing.
    async fn acknowledged(&self, part: &Part, position: &Position) {
        let _ = (part, position);
    }
}

/// The emitter's answer when the pipeline no longer takes records: it was cancelled or a
/// later stage failed. Sources return it (with `?`) and stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pipeline stopped")]
pub struct Stopped;

impl From<Stopped> for crate::Error {
    fn from(_: Stopped) -> Self {
        crate::Error::Cancelled
    }
}

/// Records a chunk or batch makes room for up front, at most.
pub(crate) const PREALLOCATE: usize = 4096;

/// What a source part sends down the pipeline.
#[derive(Debug)]
pub(crate) enum SourceMsg {
    /// Records of a part, in order.
    Records(Vec<Record>),
    /// Everything of the part sent before this point is covered by the position.
    Checkpoint(usize, Position),
    /// A change to a whole table, applied after the records before it.
    TableChange(TableChange),
    /// The part is finished.
    Done(usize),
}

/// Where a [`Source`] puts its records: it gathers them into chunks, sends them down a
/// bounded channel (waiting when the pipeline is full), and passes on checkpoints.
pub struct Emitter {
    part: usize,
    chunk: usize,
    /// A chunk is also sent once its records' estimated memory ([`Record::footprint`])
    /// reaches this.
    max_bytes: usize,
    bytes: usize,
    buf: Vec<Record>,
    tx: mpsc::Sender<SourceMsg>,
    cancel: CancellationToken,
}

impl Emitter {
    pub(crate) fn new(
        part: usize,
        chunk: usize,
        tx: mpsc::Sender<SourceMsg>,
        cancel: CancellationToken,
    ) -> Self {
        Emitter {
            part,
            chunk: chunk.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
            // Never preallocated from the configured size: chunks grow as records come.
            buf: Vec::with_capacity(chunk.clamp(1, PREALLOCATE)),
            tx,
            cancel,
        }
    }

    /// The same, also sending a chunk once its records' estimated memory
    /// ([`Record::footprint`]) reaches `max_bytes` (wide rows make chunks of fewer records).
    pub(crate) fn with_max_bytes(mut self, max_bytes: Option<usize>) -> Self {
        self.max_bytes = max_bytes.unwrap_or(usize::MAX).max(1);
        self
    }

    /// A stand-alone emitter and the receiving end of its channel, for testing a source
    /// outside a pipeline. `capacity` counts chunks of `chunk` records.
    pub fn for_test(chunk: usize, capacity: usize) -> (Emitter, EmitterReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Emitter::new(0, chunk, tx, CancellationToken::new()),
            EmitterReceiver { rx },
        )
    }

    /// Adds a record; sends a chunk when it is full. Returns [`Stopped`] once the pipeline is
    /// cancelled or failed: the source should then return.
    pub async fn emit(&mut self, record: Record) -> Result<(), Stopped> {
        if self.max_bytes != usize::MAX {
            self.bytes = self.bytes.saturating_add(record.footprint());
        }
        self.buf.push(record);
        if self.buf.len() >= self.chunk || self.bytes >= self.max_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the records gathered so far. Sources that produce slowly (change streams) call
    /// it when they are about to wait, so that records do not sit in the buffer.
    pub async fn flush(&mut self) -> Result<(), Stopped> {
        if self.cancel.is_cancelled() {
            return Err(Stopped);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let chunk = std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk.min(PREALLOCATE)),
        );
        self.send(SourceMsg::Records(chunk)).await
    }

    /// Declares that reading may resume after `position`: it covers every record emitted
    /// before this call.
    pub async fn checkpoint(&mut self, position: Position) -> Result<(), Stopped> {
        self.flush().await?;
        self.send(SourceMsg::Checkpoint(self.part, position)).await
    }

    /// Passes on a change to a whole table (`TRUNCATE`, `DROP TABLE`, `RENAME TABLE`) of a
    /// change stream. The runner writes every record emitted before it, then has the sink
    /// apply it, then goes on with the records after it (see [`crate::table_change`]).
    /// Declare a checkpoint after it as after any transaction.
    pub async fn table_change(&mut self, change: TableChange) -> Result<(), Stopped> {
        self.flush().await?;
        self.send(SourceMsg::TableChange(change)).await
    }

    /// The pipeline's cancellation token, for sources that wait on something else (a socket,
    /// a timer) and should stop waiting when the pipeline stops.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the pipeline has been stopped.
    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.tx.is_closed()
    }

    pub(crate) async fn finish(&mut self) -> Result<(), Stopped> {
        self.flush().await?;
        self.send(SourceMsg::Done(self.part)).await
    }

    async fn send(&self, msg: SourceMsg) -> Result<(), Stopped> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Stopped),
            r = self.tx.send(msg) => r.map_err(|_| Stopped),
        }
    }
}

/// The receiving end of [`Emitter::for_test`].
pub struct EmitterReceiver {
    rx: mpsc::Receiver<SourceMsg>,
}

/// One item received by an [`EmitterReceiver`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Emitted {
    /// A chunk of records.
    Records(Vec<Record>),
    /// A checkpoint.
    Checkpoint(Position),
    /// A change to a whole table.
    TableChange(TableChange),
}

impl EmitterReceiver {
    /// The next chunk or checkpoint, or `None` once the emitter is dropped.
    pub async fn recv(&mut self) -> Option<Emitted> {
        loop {
            match self.rx.recv().await? {
                SourceMsg::Records(r) => return Some(Emitted::Records(r)),
                SourceMsg::Checkpoint(_, p) => return Some(Emitted::Checkpoint(p)),
                SourceMsg::TableChange(c) => return Some(Emitted::TableChange(c)),
                SourceMsg::Done(_) => continue,
            }
        }
    }
}

/// Turns any error into the boxed form that [`crate::Error::source`] takes.
pub fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> BoxError {
    Box::new(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, DataType, Op, Value};

    #[tokio::test]
    async fn chunks_close_on_bytes_too() {
        let schema = Arc::new(Schema::new("t", vec![Column::new("s", DataType::String)]));
        let (tx, rx) = mpsc::channel(100);
        let mut e =
            Emitter::new(0, 1000, tx, CancellationToken::new()).with_max_bytes(Some(50_000));
        let wide = Record::new(
            Op::Read,
            schema.clone(),
            vec![Value::String("x".repeat(10_000))],
        );
        let size = wide.approx_size();
        for _ in 0..30 {
            e.emit(wide.clone()).await.unwrap();
        }
        e.flush().await.unwrap();
        drop(e);
        let mut r = EmitterReceiver { rx };
        let mut chunks = Vec::new();
        while let Some(Emitted::Records(c)) = r.recv().await {
            chunks.push(c.len());
        }
        assert_eq!(chunks.iter().sum::<usize>(), 30);
        // 1,000 records by count; by bytes, a chunk closes at the record reaching 50,000.
        let most = 50_000usize.div_ceil(size);
        assert!(
            chunks.iter().all(|&n| n <= most),
            "{chunks:?} (at most {most})"
        );
        assert!(chunks.len() >= 30 / most, "{chunks:?}");
    }
}

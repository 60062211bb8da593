//! # datatrace-core
//!
//! The model and the machinery of DataTrace, independent of any store.
//!
//! ## The model
//!
//! - [`Value`] is one cell in a store-neutral form (exact decimals, unsigned 64-bit integers,
//!   microsecond dates and times, JSON). [`Schema`] is the shape of a table or index, shared as
//!   `Arc<Schema>`; a [`Record`] holds its values in schema order, an [`Op`] (snapshot read,
//!   insert, update with optional before-image, delete) and, for change streams, the source
//!   [`Position`] it came from.
//! - A [`Source`] reads a unit (a table, an index, a binlog stream), optionally [split](Source::split)
//!   into [`Part`]s read in parallel, into an [`Emitter`]; it declares resumable positions with
//!   [`Emitter::checkpoint`]. A [`Transform`] changes, drops or routes records (any
//!   `Fn(Record) -> Option<Record>` is one; built-ins are in [`transforms`]). A [`Sink`] writes
//!   [`Batch`]es and reports an [`Outcome`] per record.
//!
//! ## The runner
//!
//! A [`Pipeline`] runs one unit: readers -> bounded channel -> dispatcher (transforms,
//! batching by size and linger, rate limits, routing to workers, by primary key when order per
//! key matters) -> bounded channel -> sink workers (retries with backoff and jitter, the error
//! policy, the dead-letter queue) -> committer. See [`runner`] for how checkpoints follow the
//! acknowledgements: a position is committed only when every record before it has been
//! written, so a crash at any moment loses nothing, and the sinks' idempotent writes make the
//! replay after the checkpoint harmless.
//!
//! A [`Job`] runs many units under a concurrency limit; each unit has a [`UnitState`] and a
//! [`UnitCheckpoint`] in a [`CheckpointStore`] ([`FileCheckpointStore`] by default in the
//! CLI), so a resumed job skips finished units and continues the others where they stopped.
//! Progress goes out as [`ProgressEvent`]s on a broadcast channel.
//!
//! ## Where this differs from the house plan
//!
//! Checkpoints do not travel inside [`Batch`]es: with parallel parts and several workers,
//! batches finish out of order, so the runner numbers records and commits a source position
//! once the contiguous acknowledged watermark passes it. Transforms work per record rather
//! than per batch, which is what every built-in needs and lets a rejected record carry its
//! own error to the dead-letter queue.
//!
//! ## A first pipeline
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> datatrace_core::Result<()> {
//! use std::sync::Arc;
//! use datatrace_core::testing::{CollectingSink, GeneratorSource};
//! use datatrace_core::{Pipeline, PipelineConfig, Record, Value};
//!
//! // 10,000 synthetic rows of 4 columns; keep the rows with an even id.
//! let source = Arc::new(GeneratorSource::new(10_000, 4, 12));
//! let sink = Arc::new(CollectingSink::new());
//! let keep_even = |r: Record| match r.values[0] {
//!     Value::Int(id) if id % 2 == 0 => Some(r),
//!     _ => None,
//! };
//! let report = Pipeline::new("generated", source, sink.clone())
//!     .transform(keep_even)
//!     .config(PipelineConfig { batch_size: 500, sink_concurrency: 2, ..Default::default() })
//!     .run()
//!     .await?;
//! assert_eq!(report.written, 5_000);
//! assert_eq!(report.filtered, 5_000);
//! assert_eq!(sink.len(), 5_000);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod builtin;
pub mod cause;
pub mod checkpoint;
mod damaged;
pub mod decimal;
pub mod dlq;
pub mod doc_id;
pub mod error;
pub mod job;
pub mod lag;
pub mod limits;
pub mod pattern;
pub mod progress;
pub mod record;
pub mod retry;
pub mod runner;
pub mod schema;
pub mod sink;
pub mod source;
pub mod table_change;
pub mod template;
pub mod temporal;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transform;
pub mod transforms;
pub mod value;

/// The attribute macro for implementing [`Source`], [`Sink`], [`CheckpointStore`] and the
/// other async traits (re-exported so connector authors need no dependency of their own).
pub use async_trait::async_trait;
pub use builtin::{DiscardSink, GeneratorSource};
pub use cause::Cause;
pub use checkpoint::{
    CheckpointStore, DamagedCheckpoint, FileCheckpointStore, MemoryCheckpointStore, PartState,
    UnitCheckpoint, UnitState,
};
pub use decimal::Decimal;
pub use dlq::{DeadLetter, DeadLetterQueue, FileDeadLetterQueue, MemoryDeadLetterQueue};
pub use error::{BoxError, Error, Result};
pub use job::{Job, JobReport, UnitResult, UnitSpec};
pub use progress::{
    progress_channel, PartitionLag, ProgressEvent, ProgressKind, ProgressSender, UnitProgress,
};
pub use record::{Batch, Op, Position, Record};
pub use retry::{Retry, RetryEnd, RetryPolicy};
pub use runner::{
    auto_parallelism, ErrorPolicy, Pipeline, PipelineConfig, RateLimit, RunReport, RunStatus,
    DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH_BYTES,
};
pub use schema::{Column, DataType, Schema, SchemaRef};
pub use sink::{Outcome, PrepareContext, Sink, SinkError};
pub use source::{Emitted, Emitter, EmitterReceiver, Part, Source, Stopped};
pub use table_change::{TableChange, TableChangeKind, TableChanges};
pub use temporal::{Date, DateTime, Time, Timestamp};
pub use tokio_util::sync::CancellationToken;
pub use transform::{Chain, Transform, TransformError};
pub use value::Value;

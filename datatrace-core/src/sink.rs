//! The [`Sink`] trait and what it reports per record.

use std::sync::Arc;

use async_trait::async_trait;

use crate::record::Batch;
use crate::schema::Schema;
use crate::table_change::TableChange;

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or already there: sinks are idempotent).
    Written,
    /// Refused for good (bad data, mapping conflict); the error policy decides what happens.
    Rejected(String),
    /// Not written this time (overload, a lock); the runner retries it with backoff.
    Retryable(String),
}

/// A failure of a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying the whole batch: connection lost, 429/503, deadlock, lock wait timeout.
    #[error("transient: {0}")]
    Transient(String),
    /// Not worth retrying: wrong credentials, missing table, a bug. The unit fails.
    #[error("{0}")]
    Fatal(String),
}

/// What a sink learns before the first write of a unit.
#[derive(Debug, Clone)]
pub struct PrepareContext {
    /// The unit (table or index) about to be written.
    pub unit: String,
    /// The source's schema, when it has a single one.
    pub schema: Option<Arc<Schema>>,
    /// Whether the unit resumes from a checkpoint: then nothing that would lose the data
    /// already written (truncate, drop-and-create) may happen.
    pub resumed: bool,
}

/// Writes batches to a store and reports per-record outcomes.
///
/// Sinks are shared by the pipeline's writer workers and called concurrently; they must be
/// idempotent (upserts by primary key / document id), because after a crash the records
/// after the last checkpoint are written again.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Called once per unit before the first write: create the target, truncate, run
    /// pre-statements. The default does nothing.
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let _ = ctx;
        Ok(())
    }

    /// Writes a batch. On `Ok`, returns exactly one [`Outcome`] per record, in order.
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError>;

    /// Applies a change to a whole table of a change stream (`TRUNCATE`, `DROP TABLE`,
    /// `RENAME TABLE`), after every record before it has been written and before any record
    /// after it is. Must be idempotent: after a crash the change may be applied again.
    /// `Transient` errors are retried under the pipeline's retry policy; `Fatal` ones fail the
    /// unit without committing the change's position.
    ///
    /// The default refuses, naming the change: a sink that does not know what a truncate
    /// means for its store must not silently keep rows the source no longer has. Sinks that
    /// support table changes usually take a [`crate::TableChanges`] setting.
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        Err(SinkError::Fatal(format!(
            "{change}: this sink does not apply table changes (implement Sink::table_change, or leave the table out of the stream)"
        )))
    }

    /// Called once after the unit's last write succeeded: post-statements, restoring index
    /// settings, a final flush. The default does nothing.
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[async_trait]
impl<S: Sink + ?Sized> Sink for Arc<S> {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        (**self).prepare(ctx).await
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        (**self).write(batch).await
    }
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        (**self).table_change(change).await
    }
    async fn finish(&self) -> Result<(), SinkError> {
        (**self).finish().await
    }
}

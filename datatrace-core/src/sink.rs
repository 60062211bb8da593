//! The [`Sink`] trait and what it reports per record.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cause::Cause;
use crate::error::BoxError;
use crate::record::Batch;
use crate::schema::Schema;
use crate::table_change::TableChange;

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or already there: sinks are idempotent).
    Written,
    /// Refused for good (bad data, mapping conflict); the error policy decides what happens.
    Rejected(Cause),
    /// Not written this time (overload, a lock); the runner retries it with backoff (after
    /// the cause's [suggested delay](Cause::suggested_delay), if longer).
    Retryable(Cause),
}

/// A failure of a whole batch (or of a table change). Its [`Cause`] keeps the connector's
/// typed error: the run's [`Error::Sink`](crate::Error::Sink) carries it on, so a caller
/// can find a `MySqlError` or an `EsError` in the error's source chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying the whole batch: connection lost, 429/503, deadlock, lock wait timeout.
    #[error("transient: {0}")]
    Transient(#[source] Cause),
    /// Not worth retrying: wrong credentials, missing table, a bug. The unit fails.
    #[error("{0}")]
    Fatal(#[source] Cause),
}

impl SinkError {
    /// A transient failure caused by `error`.
    pub fn transient(error: impl Into<BoxError>) -> SinkError {
        SinkError::Transient(Cause::new(error))
    }

    /// A fatal failure caused by `error`.
    pub fn fatal(error: impl Into<BoxError>) -> SinkError {
        SinkError::Fatal(Cause::new(error))
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient(_))
    }

    /// Why.
    pub fn cause(&self) -> &Cause {
        match self {
            SinkError::Transient(c) | SinkError::Fatal(c) => c,
        }
    }

    /// Why, by value.
    pub fn into_cause(self) -> Cause {
        match self {
            SinkError::Transient(c) | SinkError::Fatal(c) => c,
        }
    }

    /// The same error with `context` before its message (the typed error is kept).
    pub fn context(self, context: impl std::fmt::Display) -> SinkError {
        match self {
            SinkError::Transient(c) => SinkError::Transient(c.context(context)),
            SinkError::Fatal(c) => SinkError::Fatal(c.context(context)),
        }
    }
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
        ).into()))
    }

    /// Called once after the unit's last write succeeded: post-statements, restoring index
    /// settings, a final flush. The default does nothing.
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Called once after the unit's last write succeeded, with the context its
    /// [`Sink::prepare`] got, before the unit is recorded as done: work that belongs to this
    /// unit's target alone (a sink shared by several units builds the indexes it deferred on
    /// this unit's table, not on tables other units are still loading). It may run again
    /// after a crash before the unit was recorded as done, so it must be idempotent. The
    /// default calls [`Sink::finish`]; sinks that wrap another forward it.
    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let _ = ctx;
        self.finish().await
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
    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        (**self).finish_unit(ctx).await
    }
}

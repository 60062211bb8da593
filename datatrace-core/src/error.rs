//! [`Error`]: what can go wrong in a pipeline, with the context to act on it.

pub use crate::cause::BoxError;
use crate::cause::Cause;

/// Errors of pipelines, jobs, checkpoints and dead-letter queues.
///
/// Each variant names the unit (table or index) it happened in, and for data errors the
/// record's primary key, so that a message in a log is enough to find the row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source failed.
    #[error("unit {unit}: source failed: {source}")]
    Source {
        /// The unit being read.
        unit: String,
        /// What the source said.
        #[source]
        source: BoxError,
    },
    /// The sink failed for a whole batch and could not be retried (or retries ran out).
    #[error("unit {unit}: sink failed: {message}")]
    Sink {
        /// The unit being written.
        unit: String,
        /// What the sink said, with what the runner was doing.
        message: String,
        /// The sink's error (the connector's typed error inside), when it came from one.
        #[source]
        cause: Option<Cause>,
    },
    /// A record was rejected under the `fail` policy.
    #[error("unit {unit}: record with key {key} rejected ({stage}): {reason}")]
    Rejected {
        /// The unit.
        unit: String,
        /// The record's primary key as text.
        key: String,
        /// `sink` or `transform`.
        stage: &'static str,
        /// Why (the connector's typed error inside, when it gave one).
        #[source]
        reason: Cause,
    },
    /// Invalid configuration; the message names the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A checkpoint could not be loaded or saved.
    #[error("checkpoint store: {0}")]
    Checkpoint(String),
    /// The dead-letter queue could not be written or read.
    #[error("dead-letter queue: {0}")]
    DeadLetter(String),
    /// A task of the run panicked (a bug in a source, sink or transform): the unit fails.
    #[error("unit {unit}: the {task} panicked: {message}")]
    Panicked {
        /// The unit.
        unit: String,
        /// What panicked: `source`, `sink`, `transform`, ...
        task: &'static str,
        /// The panic's message.
        message: String,
    },
    /// A checkpoint its source cannot read (see [`crate::DamagedCheckpoint`]).
    #[error("unit {unit}: {source}")]
    DamagedCheckpoint {
        /// The unit.
        unit: String,
        /// What is wrong.
        source: Box<crate::DamagedCheckpoint>,
    },
    /// The run was cancelled before it could finish.
    #[error("cancelled")]
    Cancelled,
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A source error for `unit`.
    pub fn source(unit: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Source {
            unit: unit.into(),
            source: source.into(),
        }
    }
    /// A sink error of `unit`, with what the runner was doing (`""` for nothing).
    pub fn sink(unit: impl Into<String>, doing: &str, e: crate::sink::SinkError) -> Self {
        let cause = e.into_cause();
        let message = if doing.is_empty() {
            cause.to_string()
        } else {
            format!("{doing}: {cause}")
        };
        Error::Sink {
            unit: unit.into(),
            message,
            cause: Some(cause),
        }
    }

    /// The first error of type `T` in the chain of sources (a connector's `MySqlError` or
    /// `EsError` behind a sink or source failure).
    pub fn find_source<T: std::error::Error + 'static>(&self) -> Option<&T> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if let Some(t) = e.downcast_ref::<T>() {
                return Some(t);
            }
            next = e.source();
        }
        None
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

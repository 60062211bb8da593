//! [`Error`]: what can go wrong in a pipeline, with the context to act on it.

/// A boxed error from a connector or a user's code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of pipelines, jobs, checkpoints and dead-letter queues.
///
/// Each variant names the unit (table or index) it happened in, and for data errors the
/// record's primary key, so that a message in a log is enough to find the row.
#[derive(Debug, thiserror::Error)]
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
        /// What the sink said.
        message: String,
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
        /// Why.
        reason: String,
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

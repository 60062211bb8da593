//! [`DenormalError`]: what can go wrong with a document definition, its reads and its writes.

use datatrace_es::EsError;
use datatrace_mysql::MySqlError;

/// An error of denormalized documents. Definition errors name the document and the
/// relation; read errors name what was being read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DenormalError {
    /// The definition is wrong (an unknown column, a cycle, a relation of the wrong kind):
    /// fix the job file or the spec.
    #[error("document {document}{}: {message}", relation.as_ref().map(|r| format!(", relation {r}")).unwrap_or_default())]
    Definition {
        /// The document.
        document: String,
        /// The relation at fault, when one is.
        relation: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Reading the source failed.
    #[error("document {document}: {source}")]
    MySql {
        /// The document.
        document: String,
        /// The connector's error (it names the query's purpose).
        source: MySqlError,
    },
    /// Talking to the search engine failed.
    #[error("document {document}: {source}")]
    Es {
        /// The document.
        document: String,
        /// The connector's error.
        source: EsError,
    },
    /// A row could not be turned into a document (a transform refused it, a value could not
    /// be decoded); names the root key, the relation and the field.
    #[error("document {document}, {context}: {message}")]
    Data {
        /// The document.
        document: String,
        /// The root key and relation concerned.
        context: String,
        /// What is wrong.
        message: String,
    },
}

impl DenormalError {
    /// A definition error of `document` (and `relation`).
    pub fn definition(
        document: &str,
        relation: Option<&str>,
        message: impl Into<String>,
    ) -> DenormalError {
        DenormalError::Definition {
            document: document.to_string(),
            relation: relation.map(str::to_string),
            message: message.into(),
        }
    }

    /// Whether a retry may succeed (a lost connection, a deadlock).
    pub fn is_transient(&self) -> bool {
        match self {
            DenormalError::MySql { source, .. } => source.is_transient(),
            DenormalError::Es { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

/// `Result` with [`DenormalError`].
pub type Result<T, E = DenormalError> = std::result::Result<T, E>;

/// Attaches the document name to connector errors.
pub(crate) trait InDocument<T> {
    /// The error, as an error of `document`.
    fn in_doc(self, document: &str) -> Result<T>;
}

impl<T> InDocument<T> for std::result::Result<T, MySqlError> {
    fn in_doc(self, document: &str) -> Result<T> {
        self.map_err(|source| DenormalError::MySql {
            document: document.to_string(),
            source,
        })
    }
}

impl<T> InDocument<T> for std::result::Result<T, EsError> {
    fn in_doc(self, document: &str) -> Result<T> {
        self.map_err(|source| DenormalError::Es {
            document: document.to_string(),
            source,
        })
    }
}

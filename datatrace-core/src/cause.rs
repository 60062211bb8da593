//! [`Cause`]: why a record or a batch could not be written, as the connector said it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from a connector or a user's code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a sink could not write a record or a batch: the connector's own error, kept whole (its
/// type and its source chain reach the run's error and the job's report, see
/// [`Cause::downcast_ref`]), its message, and a delay the server asked for (`Retry-After`),
/// which retries honour.
///
/// A `Cause` reads as its message (`Deref<Target = str>`), so `cause.contains("timeout")`
/// and `format!("{cause}")` work as on a `String`; build one from a connector error with
/// [`Cause::new`], or from text with `.into()`.
///
/// ```
/// use datatrace_core::Cause;
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
/// let cause = Cause::new(io).retry_after(std::time::Duration::from_secs(2));
/// assert!(cause.contains("reset"));
/// assert_eq!(cause.downcast_ref::<std::io::Error>().map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));
/// let text: Cause = "too large".into();
/// assert_eq!(&*text, "too large");
/// ```
#[derive(Clone)]
pub struct Cause {
    message: String,
    error: Arc<dyn std::error::Error + Send + Sync + 'static>,
    retry_after: Option<Duration>,
}

/// A message without a typed error behind it.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Cause {
    /// The cause `error` (a connector's typed error, or anything that converts into a boxed
    /// error, text included).
    pub fn new(error: impl Into<BoxError>) -> Cause {
        let error: BoxError = error.into();
        Cause {
            message: error.to_string(),
            error: Arc::from(error),
            retry_after: None,
        }
    }

    /// `error`, with `context` before its message (`"index a: " + message`); the typed error
    /// is kept.
    pub fn context(mut self, context: impl fmt::Display) -> Cause {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The same cause (and typed error) described by `message` instead of the error's own.
    pub fn with_message(mut self, message: impl Into<String>) -> Cause {
        self.message = message.into();
        self
    }

    /// The same cause with a delay the server asked for before the next attempt.
    pub fn retry_after(mut self, delay: Duration) -> Cause {
        self.retry_after = Some(delay);
        self
    }

    /// The delay the server asked for, if it did.
    pub fn suggested_delay(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The connector's error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The connector's error as `T`, if it is one (or, for text causes, never).
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.error.downcast_ref::<T>()
    }
}

impl Deref for Cause {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cause");
        d.field("message", &self.message);
        if self.error.downcast_ref::<Message>().is_none() {
            d.field("error", &self.error);
        }
        if let Some(r) = self.retry_after {
            d.field("retry_after", &r);
        }
        d.finish()
    }
}

/// The connector's error is the next link of the chain (text causes have none).
impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.error.downcast_ref::<Message>().is_some() {
            None
        } else {
            Some(&*self.error)
        }
    }
}

/// Causes compare by message.
impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.message == other.message
    }
}

impl Eq for Cause {}

impl PartialEq<str> for Cause {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Cause {
        Cause {
            error: Arc::new(Message(message.clone())),
            message,
            retry_after: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Cause {
        Cause::from(message.to_string())
    }
}

impl From<Cause> for String {
    fn from(c: Cause) -> String {
        c.message
    }
}

//! [`EsError`]: what can go wrong talking to Elasticsearch or OpenSearch.
//!
//! Every variant names what it is about (the node URL, the index, the document id) and never
//! contains a password or an API key: URLs with credentials in them are refused by the
//! configuration, and request headers are never part of a message.

use datatrace_core::SinkError;

/// Errors of the Elasticsearch connector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EsError {
    /// The configuration is invalid; the message names the setting.
    #[error("invalid Elasticsearch configuration: {0}")]
    Config(String),
    /// No node answered: connection refused, DNS failure, TLS failure or timeout.
    #[error("cannot reach the cluster at {url}: {reason}")]
    Unreachable {
        /// The node URL (never with credentials).
        url: String,
        /// The transport's reason, with its causes.
        reason: String,
    },
    /// The cluster refused the credentials (HTTP 401) or the permissions (HTTP 403).
    #[error("{context}: authentication failed at {url} (HTTP {status}): check the username and password or the API key")]
    Auth {
        /// What was being done.
        context: String,
        /// The node URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// The index does not exist.
    #[error("index {index} does not exist")]
    IndexNotFound {
        /// The missing index.
        index: String,
    },
    /// The cluster answered with an error status.
    #[error("{context}: HTTP {status}: {reason}")]
    Http {
        /// What was being done, naming the index.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The cluster's error type and reason.
        reason: String,
    },
    /// The cluster answered something this connector does not understand.
    #[error("{context}: unexpected response: {reason}")]
    Protocol {
        /// What was being done.
        context: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A column has no mapping on this cluster as configured (a 64-bit unsigned column where
    /// `unsigned_long` is missing); found before anything is written.
    #[error("{table}: column {column}: {reason}")]
    Unmappable {
        /// The table (or source index) the column belongs to.
        table: String,
        /// The column.
        column: String,
        /// Why, and the settings that help.
        reason: String,
    },
    /// A mapping could not be used (unknown field type, conflicting definitions).
    #[error("index {index}: mapping: {reason}")]
    Mapping {
        /// The index.
        index: String,
        /// What is wrong.
        reason: String,
    },
}

impl EsError {
    /// Whether retrying the same request later may succeed: connection failures, timeouts,
    /// HTTP 429 and 502/503/504.
    pub fn is_transient(&self) -> bool {
        match self {
            EsError::Unreachable { .. } => true,
            EsError::Http { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

/// HTTP statuses worth retrying: 429 (too many requests) and 502/503/504.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl From<EsError> for SinkError {
    fn from(e: EsError) -> Self {
        if e.is_transient() {
            SinkError::transient(e)
        } else {
            SinkError::fatal(e)
        }
    }
}

impl From<EsError> for datatrace_core::Error {
    fn from(e: EsError) -> Self {
        match e {
            EsError::Config(m) => datatrace_core::Error::Config(m),
            e @ EsError::Unmappable { .. } => datatrace_core::Error::Config(e.to_string()),
            other => {
                let unit = match &other {
                    EsError::IndexNotFound { index } | EsError::Mapping { index, .. } => {
                        index.clone()
                    }
                    _ => "elasticsearch".to_string(),
                };
                datatrace_core::Error::source(unit, other)
            }
        }
    }
}

/// The `type: reason` of an Elasticsearch error body (`{"error": {...}, "status": N}`), with
/// the first `caused_by`, or the raw text (shortened) when it is not JSON.
pub fn error_reason(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => match v.get("error") {
            Some(e) => describe_error(e),
            None => shorten(&String::from_utf8_lossy(body)),
        },
        Err(_) => shorten(&String::from_utf8_lossy(body)),
    }
}

/// `type: reason (caused by: type: reason)` of an error object, or its text.
pub fn describe_error(e: &serde_json::Value) -> String {
    let Some(obj) = e.as_object() else {
        return match e.as_str() {
            Some(s) => s.to_string(),
            None => e.to_string(),
        };
    };
    let ty = obj.get("type").and_then(|t| t.as_str()).unwrap_or("error");
    let reason = obj.get("reason").and_then(|t| t.as_str()).unwrap_or("");
    let mut out = format!("{ty}: {reason}");
    if let Some(c) = obj.get("caused_by") {
        let ct = c.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let cr = c.get("reason").and_then(|t| t.as_str()).unwrap_or("");
        if !cr.is_empty() && cr != reason {
            out.push_str(&format!(" (caused by {ct}: {cr})"));
        }
    }
    out
}

fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 300 {
        return s.to_string();
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_readable() {
        let body = br#"{"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [a]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}},"status":400}"#;
        assert_eq!(
            error_reason(body),
            "mapper_parsing_exception: failed to parse field [a] (caused by illegal_argument_exception: For input string: \"x\")"
        );
        assert_eq!(error_reason(b"plain text"), "plain text");
        assert!(EsError::Http {
            context: "x".into(),
            status: 429,
            reason: String::new()
        }
        .is_transient());
        assert!(!EsError::IndexNotFound { index: "i".into() }.is_transient());
    }
}

//! [`JobFileError`]: what is wrong in a job file, naming the file, the key path and what is
//! expected; and the turning of serde's messages into that form.

use std::fmt;

use serde::de::DeserializeOwned;

/// An error in a job file: `job.toml: settings.batch_size: expected a non-negative integer,
/// found string "x"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFileError {
    /// The file as given on the command line.
    pub file: String,
    /// The key path (`source.tables[1]`); empty when the error is about the whole file.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl JobFileError {
    /// An error at `key` of `file`.
    pub fn new(file: &str, key: &str, message: impl Into<String>) -> Self {
        JobFileError {
            file: file.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JobFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for JobFileError {}

/// `parent` + `child` as a key path: `source` + `tables` = `source.tables`, `source` + `[1]`
/// = `source[1]`.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else if child.is_empty() {
        parent.to_owned()
    } else if child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

/// Deserializes `value` (found at key path `at` of `file`) into `T`, turning serde's error
/// into a [`JobFileError`] with the full key path.
pub fn from_value<T: DeserializeOwned>(
    file: &str,
    at: &str,
    value: serde_json::Value,
) -> Result<T, JobFileError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut key = at.to_owned();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    key = join(&key, &format!("[{index}]"))
                }
                serde_path_to_error::Segment::Map { key: k } => key = join(&key, k),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let (extra, message) = humanize(&e.into_inner().to_string());
        if let Some(k) = extra {
            // The path usually ends with the unknown key already.
            let last = e_path_last(&key);
            if last != k {
                key = join(&key, &k);
            }
        }
        JobFileError::new(file, &key, message)
    })
}

/// The last key of a key path: `a.b[2].c` -> `c`.
fn e_path_last(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Rewrites serde's messages for people writing job files. Returns the unknown key to append
/// to the path for unknown-field errors.
pub fn humanize(msg: &str) -> (Option<String>, String) {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((field, allowed)) = rest.split_once('`') {
            let allowed = allowed_list(allowed);
            return (Some(field.to_owned()), unknown_key_message(&allowed));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        if let Some((value, allowed)) = rest.split_once('`') {
            let allowed = allowed_list(allowed);
            return (
                None,
                format!(
                    "unknown value {value:?}, expected one of: {}",
                    allowed.join(", ")
                ),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            return (None, format!("missing key {field:?}"));
        }
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                return (
                    None,
                    format!("expected {}, found {found}", friendly_type(expected)),
                );
            }
        }
    }
    (None, msg.to_owned())
}

/// The message for an unknown key, listing the allowed ones.
pub fn unknown_key_message(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "unknown key, this section takes no keys".to_owned()
    } else {
        format!("unknown key, expected one of: {}", allowed.join(", "))
    }
}

/// `, expected one of `a`, `b`` -> `[a, b]`.
fn allowed_list(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

fn friendly_type(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer".into(),
        "i64" | "i32" | "isize" => "an integer".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" | "a string" => expected.into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        other if other.starts_with("struct ") => "a table".into(),
        other if other.starts_with("a map") => "a table".into(),
        other if other.starts_with("a sequence") => "an array".into(),
        other => other.into(),
    }
}

/// `string "x"`, `integer 5`, `a table`: what a value is, for messages.
pub fn kind_of(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

/// Adds `type` to an unknown-key message's list of allowed keys (for sections whose `type`
/// was split off before their keys were read).
pub fn with_type_key(mut e: JobFileError) -> JobFileError {
    if let Some(list) = e.message.strip_prefix("unknown key, expected one of: ") {
        e.message = format!("unknown key, expected one of: type, {list}");
    } else if e.message == "unknown key, this section takes no keys" {
        e.message = "unknown key, expected one of: type".into();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_rewritten() {
        assert_eq!(
            humanize("unknown field `x`, expected one of `a`, `b`"),
            (
                Some("x".into()),
                "unknown key, expected one of: a, b".into()
            )
        );
        assert_eq!(
            humanize("invalid type: string \"q\", expected usize").1,
            "expected a non-negative integer, found string \"q\""
        );
        assert_eq!(humanize("missing field `url`").1, "missing key \"url\"");
        assert_eq!(
            humanize("unknown variant `drop`, expected one of `fail`, `skip`").1,
            "unknown value \"drop\", expected one of: fail, skip"
        );
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", "[2]"), "a[2]");
        assert_eq!(join("a", "b"), "a.b");
    }
}

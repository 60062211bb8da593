//! `[source]` and `[target]`: the `type` key picks the connector, the other keys are that
//! connector's settings.

use serde_json::{Map, Value};

use super::builtin::{DiscardSpec, GeneratorSpec};
use super::error::{from_value, join, JobFileError};
use super::es::{EsSourceSpec, EsTargetSpec};
use super::mysql::{MySqlSourceSpec, MySqlTargetSpec};

/// Where a job reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// Tables of a MySQL / MariaDB server (`type = "mysql"`).
    MySql(MySqlSourceSpec),
    /// Indices of an Elasticsearch / OpenSearch cluster (`type = "elasticsearch"`).
    Elasticsearch(Box<EsSourceSpec>),
    /// Synthetic rows (`type = "generator"`).
    Generator(GeneratorSpec),
}

/// Where a job writes.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// Tables of a MySQL / MariaDB server (`type = "mysql"`).
    MySql(MySqlTargetSpec),
    /// Indices of an Elasticsearch / OpenSearch cluster (`type = "elasticsearch"`).
    Elasticsearch(Box<EsTargetSpec>),
    /// Drops everything (`type = "discard"`).
    Discard(DiscardSpec),
}

/// Source types this build knows.
pub const SOURCE_TYPES: &[&str] = &["mysql", "elasticsearch", "opensearch", "generator"];
/// Target types this build knows.
pub const TARGET_TYPES: &[&str] = &["mysql", "elasticsearch", "opensearch", "discard"];

impl SourceSpec {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::MySql(_) => "mysql",
            SourceSpec::Elasticsearch(_) => "elasticsearch",
            SourceSpec::Generator(_) => "generator",
        }
    }

    /// One line for people, without secrets.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::MySql(m) => {
                let mut s = format!(
                    "mysql {}, tables {}",
                    m.connection.redacted_url(),
                    m.tables.join(", ")
                );
                if !m.exclude.is_empty() {
                    s.push_str(&format!(" (exclude {})", m.exclude.join(", ")));
                }
                s
            }
            SourceSpec::Elasticsearch(e) => {
                let mut s = format!(
                    "elasticsearch {}, indices {}",
                    e.connection.urls.join(", "),
                    e.indices.join(", ")
                );
                if !e.exclude.is_empty() {
                    s.push_str(&format!(" (exclude {})", e.exclude.join(", ")));
                }
                s
            }
            SourceSpec::Generator(g) => format!(
                "generator: {} unit(s) of {} rows, {} columns",
                g.units.len(),
                g.rows,
                g.columns
            ),
        }
    }
}

impl TargetSpec {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetSpec::MySql(_) => "mysql",
            TargetSpec::Elasticsearch(_) => "elasticsearch",
            TargetSpec::Discard(_) => "discard",
        }
    }

    /// One line for people, without secrets.
    pub fn describe(&self) -> String {
        match self {
            TargetSpec::MySql(m) => format!(
                "mysql {}, table {}, mode {}, create_table {}",
                m.connection.redacted_url(),
                m.table.as_str(),
                serde_json::to_value(m.options.mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                m.options.create_table
            ),
            TargetSpec::Elasticsearch(e) => format!(
                "elasticsearch {}, index {}, create_index {}",
                e.connection.urls.join(", "),
                e.options.index,
                e.options.create_index
            ),
            TargetSpec::Discard(_) => "discard (records are counted and dropped)".into(),
        }
    }
}

/// The error for a `type` this build does not know.
fn unknown_type(file: &str, at: &str, kind: &str, types: &[&str]) -> JobFileError {
    JobFileError::new(
        file,
        &join(at, "type"),
        format!(
            "unknown type {kind:?}, expected one of: {}",
            types.join(", ")
        ),
    )
}

/// Splits off the `type` key of the table at `at` (`types` are named when it is missing).
fn take_type(
    file: &str,
    at: &str,
    value: Value,
    types: &[&str],
) -> Result<(String, Map<String, Value>), JobFileError> {
    let mut map = match value {
        Value::Object(m) => m,
        other => {
            return Err(JobFileError::new(
                file,
                at,
                format!("expected a table, found {}", kind_of(&other)),
            ))
        }
    };
    let expected = types.join(", ");
    match map.remove("type") {
        None => Err(JobFileError::new(
            file,
            at,
            format!("missing key \"type\" (one of: {expected})"),
        )),
        Some(Value::String(t)) => Ok((t, map)),
        Some(other) => Err(JobFileError::new(
            file,
            &join(at, "type"),
            format!("expected a string, found {}", kind_of(&other)),
        )),
    }
}

/// Adds `type` to an unknown-key message's list of allowed keys.
fn with_type_key(mut e: JobFileError) -> JobFileError {
    if let Some(list) = e.message.strip_prefix("unknown key, expected one of: ") {
        e.message = format!("unknown key, expected one of: type, {list}");
    } else if e.message == "unknown key, this section takes no keys" {
        e.message = "unknown key, expected one of: type".into();
    }
    e
}

/// Parses `[source]`.
pub fn parse_source(file: &str, value: Value) -> Result<SourceSpec, JobFileError> {
    let at = "source";
    let (kind, rest) = take_type(file, at, value, SOURCE_TYPES)?;
    match kind.as_str() {
        "mysql" => Ok(SourceSpec::MySql(super::mysql::parse_source(
            file, at, rest,
        )?)),
        "elasticsearch" | "opensearch" => Ok(SourceSpec::Elasticsearch(Box::new(
            super::es::parse_source(file, at, rest)?,
        ))),
        "generator" => {
            let g: GeneratorSpec =
                from_value(file, at, Value::Object(rest)).map_err(with_type_key)?;
            g.check()
                .map_err(|(k, m)| JobFileError::new(file, &join(at, &k), m))?;
            Ok(SourceSpec::Generator(g))
        }
        other => Err(unknown_type(file, at, other, SOURCE_TYPES)),
    }
}

/// Parses `[target]`.
pub fn parse_target(file: &str, value: Value) -> Result<TargetSpec, JobFileError> {
    let at = "target";
    let (kind, rest) = take_type(file, at, value, TARGET_TYPES)?;
    match kind.as_str() {
        "mysql" => Ok(TargetSpec::MySql(super::mysql::parse_target(
            file, at, rest,
        )?)),
        "elasticsearch" | "opensearch" => Ok(TargetSpec::Elasticsearch(Box::new(
            super::es::parse_target(file, at, rest)?,
        ))),
        "discard" => Ok(TargetSpec::Discard(
            from_value(file, at, Value::Object(rest)).map_err(with_type_key)?,
        )),
        other => Err(unknown_type(file, at, other, TARGET_TYPES)),
    }
}

/// `string "x"`, `integer 5`, `a table`: what a value is, for messages.
pub fn kind_of(v: &Value) -> String {
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

//! `type = "elasticsearch"` (or `"opensearch"`) sources and targets.
//!
//! ```toml
//! [source]
//! type = "elasticsearch"
//! url = "http://es1:9200"                 # or urls = [...]; the connection
//! username = "reader"                     # (datatrace_es::ConnectionConfig)
//! password = "${ES_PASSWORD}"
//! indices = ["logs-*", "products"]        # patterns: one unit per index
//! exclude = ["logs-debug-*"]
//! page_size = 1000                        # read settings (datatrace_es::SourceConfig)
//!
//! [target]
//! type = "elasticsearch"
//! url = "http://es2:9200"
//! index = "{prefix}-{table}"              # write settings (datatrace_es::SinkConfig)
//! table_changes = "apply"                 # change streams, TRUNCATE/DROP/RENAME TABLE: apply | fail | ignore
//! prefix = "shop"
//! ```

use datatrace_es::{ConnectionConfig, SinkConfig, SourceConfig};
use serde_json::{Map, Value};

use crate::job_file::error::{join, kind_of, JobFileError};
use crate::job_file::fields::struct_fields;
use crate::job_file::sections::{split, string_list, Group};

/// An Elasticsearch source: the connection, the indices, the read settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EsSourceSpec {
    /// How to connect.
    pub connection: ConnectionConfig,
    /// Index patterns to copy (one unit per index).
    pub indices: Vec<String>,
    /// Index patterns to leave out.
    pub exclude: Vec<String>,
    /// Read settings (`index` is set per unit).
    pub options: SourceConfig,
}

/// An Elasticsearch target: the connection and the write settings (index naming included).
#[derive(Debug, Clone, PartialEq)]
pub struct EsTargetSpec {
    /// How to connect.
    pub connection: ConnectionConfig,
    /// Write settings.
    pub options: SinkConfig,
}

/// `url = "..."` as a shorthand of `urls = ["..."]`; one of them is required.
fn connection(file: &str, at: &str, mut conn: Group) -> Result<ConnectionConfig, JobFileError> {
    match (conn.take("url"), conn.take("urls")) {
        (Some(_), Some(_)) => {
            return Err(JobFileError::new(
                file,
                &join(at, "url"),
                "give either url or urls, not both",
            ))
        }
        (Some(Value::String(u)), None) => conn.insert("urls", Value::Array(vec![Value::String(u)])),
        (Some(other), None) => {
            return Err(JobFileError::new(
                file,
                &join(at, "url"),
                format!("expected a string, found {}", kind_of(&other)),
            ))
        }
        (None, Some(urls)) => conn.insert("urls", urls),
        // Elastic Cloud: the Cloud ID names the endpoint.
        (None, None) if conn.has("cloud_id") => conn.insert("urls", Value::Array(Vec::new())),
        (None, None) => {
            return Err(JobFileError::new(
                file,
                at,
                "missing key \"url\" (or \"urls\", or \"cloud_id\"): the cluster's node URL(s)",
            ))
        }
    }
    let c: ConnectionConfig = conn.parse(file, at)?;
    c.validate().map_err(|e| config_error(file, at, e))?;
    Ok(c)
}

fn connection_group() -> Group {
    let mut keys: Vec<&'static str> = vec!["url"];
    keys.extend(struct_fields::<ConnectionConfig>());
    Group::keys(&keys)
}

/// The connector's own check, its message turned into a key path when it names one
/// (`urls: "x" is not a URL` -> `source.urls: "x" is not a URL`).
fn config_error(file: &str, at: &str, e: datatrace_es::EsError) -> JobFileError {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("invalid Elasticsearch configuration: ")
        .unwrap_or(&msg)
        .to_owned();
    match msg.split_once(": ") {
        Some((key, rest)) if !key.contains(' ') => JobFileError::new(file, &join(at, key), rest),
        // `max_docs = 0 is out of range: ...`: the key, the whole message.
        _ => match msg.split_once(" = ") {
            Some((key, _)) if !key.contains(' ') => JobFileError::new(file, &join(at, key), msg),
            _ => JobFileError::new(file, at, msg),
        },
    }
}

/// Parses `[source]` with `type = "elasticsearch"`.
pub fn parse_source(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<EsSourceSpec, JobFileError> {
    let [conn, mut sel, opts] = split(
        file,
        at,
        map,
        [
            connection_group(),
            Group::keys(&["indices", "exclude"]),
            Group::of::<SourceConfig>().without("index"),
        ],
    )?;
    let connection = connection(file, at, conn)?;
    let indices = string_list(
        file,
        &join(at, "indices"),
        sel.take("indices"),
        "index patterns such as \"logs-*\"",
        true,
    )?;
    let exclude = string_list(
        file,
        &join(at, "exclude"),
        sel.take("exclude"),
        "index patterns",
        false,
    )?;
    let mut opts = opts;
    opts.insert("index", Value::String(indices[0].clone()));
    let options: SourceConfig = opts.parse(file, at)?;
    options.validate().map_err(|e| config_error(file, at, e))?;
    Ok(EsSourceSpec {
        connection,
        indices,
        exclude,
        options,
    })
}

/// Parses `[target]` with `type = "elasticsearch"`.
pub fn parse_target(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<EsTargetSpec, JobFileError> {
    let [conn, opts] = split(
        file,
        at,
        map,
        [connection_group(), Group::of::<SinkConfig>()],
    )?;
    let connection = connection(file, at, conn)?;
    let options: SinkConfig = opts.parse(file, at)?;
    options.validate().map_err(|e| config_error(file, at, e))?;
    Ok(EsTargetSpec {
        connection,
        options,
    })
}

//! Data sources: MySQL servers, Elasticsearch / OpenSearch clusters and Kafka clusters that
//! tasks read from and write to. Passwords and API keys are stored encrypted and never returned.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::crypto::MasterKey;
use super::http::ApiError;
use super::store::DataSourceRow;
use crate::connectors::{registry, ConnectorUi, SourceSpec};
use crate::job_file::JobFile;

pub use crate::connectors::TestResult;

/// What a client sends to create or change a data source.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceInput {
    /// A unique name.
    pub name: String,
    /// The connector's `type` (`mysql`, `elasticsearch`; see `GET /api/connectors`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `mysql://user@host:3306/db`, `http://host:9200`, ...
    pub url: String,
    /// User name, for connectors with a user name field (MySQL: the user is in the URL).
    #[serde(default)]
    pub username: Option<String>,
    /// The password; on update, absent keeps the stored one and `""` removes it.
    #[serde(default)]
    pub password: Option<String>,
    /// API key, for connectors that take one; on update, absent keeps the stored one and
    /// `""` removes it.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Further connection keys of the connector (`max_connections`, `tls`, `timeout_ms`, ...).
    #[serde(default)]
    pub options: Map<String, Value>,
}

impl std::fmt::Debug for DataSourceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("DataSourceInput")
            .field("name", &self.name)
            .field("type", &self.kind)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A data source as the API shows it: never with its secrets.
#[derive(Debug, Serialize)]
pub struct DataSourceView {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The connector's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its URL.
    pub url: String,
    /// User name.
    pub username: Option<String>,
    /// Whether a password is stored.
    pub has_password: bool,
    /// Whether an API key is stored.
    pub has_api_key: bool,
    /// Further connection keys.
    pub options: Value,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Changed (RFC 3339).
    pub updated_at: String,
}

impl From<&DataSourceRow> for DataSourceView {
    fn from(r: &DataSourceRow) -> Self {
        DataSourceView {
            id: r.id,
            name: r.name.clone(),
            kind: r.kind.clone(),
            // Rows stored before secrets in URLs were refused may still hold one.
            url: crate::secrets::scrub_shapes(&r.url),
            username: r.username.clone(),
            has_password: r.password_enc.is_some(),
            has_api_key: r.api_key_enc.is_some(),
            options: r.options.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// Keys the connection options may not hold (they have their own fields, or belong to tasks).
const RESERVED: &[&str] = &[
    "type", "url", "urls", "username", "password", "api_key", "tables", "indices", "exclude",
    "table", "index",
];

/// Checks an input and turns it into a row (encrypting the secrets); `old` is the stored row
/// on update.
pub fn to_row(
    input: DataSourceInput,
    old: Option<&DataSourceRow>,
    key: &MasterKey,
) -> Result<DataSourceRow, ApiError> {
    if input.name.trim().is_empty() {
        return Err(ApiError::bad("name", "the name must not be empty"));
    }
    let ui = data_source_ui(&input.kind)?;
    let kind = ui.kind;
    let url = input.url.trim().to_owned();
    if !ui.url_schemes.iter().any(|s| url.starts_with(s)) {
        return Err(ApiError::bad(
            "url",
            format!("expected a URL like {}", ui.url_example),
        ));
    }
    if let Some(rest) = url.split_once("://").map(|x| x.1) {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') && authority.split('@').next().is_some_and(|u| u.contains(':')) {
            return Err(ApiError::bad(
                "url",
                "the URL must not hold a password: put it in the password field, where it is \
                 stored encrypted",
            ));
        }
    }
    if let Some(param) = secret_query_param(&url) {
        return Err(ApiError::bad(
            "url",
            format!(
                "the URL must not hold a secret (its {param:?} parameter): put it in the \
                 password or api_key field, where it is stored encrypted"
            ),
        ));
    }
    if input.username.is_some() && !ui.username {
        return Err(ApiError::bad(
            "username",
            format!("{} takes the user in the URL", ui.label),
        ));
    }
    if input.api_key.as_deref().is_some_and(|k| !k.is_empty()) && !ui.api_key {
        return Err(ApiError::bad(
            "api_key",
            format!("{} takes no API key", ui.label),
        ));
    }
    for k in input.options.keys() {
        if RESERVED.contains(&k.as_str()) {
            return Err(ApiError::bad(
                format!("options.{k}"),
                "this key has its own field (or belongs to a task)",
            ));
        }
    }
    if let Some(at) = secret_option(&input.options, "options") {
        return Err(ApiError::bad(
            at,
            "options are stored as they are: put the secret in the password or api_key field, \
             where it is stored encrypted",
        ));
    }
    let seal = |new: Option<String>, old: Option<&String>| -> Result<Option<String>, ApiError> {
        match new {
            None => Ok(old.cloned()),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => key
                .encrypt(&s)
                .map(Some)
                .map_err(|e| ApiError::internal(e.to_string())),
        }
    };
    if let Some(old) = old {
        let (before, after) = (endpoints(&old.url), endpoints(&url));
        if before != after {
            // A stored secret is never sent to another server than the one it was given for.
            for (given, stored, field) in [
                (&input.password, &old.password_enc, "password"),
                (&input.api_key, &old.api_key_enc, "api_key"),
            ] {
                if given.is_none() && stored.is_some() {
                    return Err(ApiError::bad(
                        field,
                        format!(
                            "the URL now points to another server ({} instead of {}): give \
                             the {field} again (or \"\" for none); a stored secret is never \
                             sent to a new address",
                            after.join(", "),
                            before.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let row = DataSourceRow {
        id: old.map_or(0, |o| o.id),
        name: input.name.trim().to_owned(),
        kind: kind.to_owned(),
        url,
        username: input.username.filter(|u| !u.is_empty()),
        options: Value::Object(input.options),
        password_enc: seal(input.password, old.and_then(|o| o.password_enc.as_ref()))?,
        api_key_enc: seal(input.api_key, old.and_then(|o| o.api_key_enc.as_ref()))?,
        created_at: old.map(|o| o.created_at.clone()).unwrap_or_default(),
        updated_at: String::new(),
    };
    // The connector's own checks of the connection keys, offline.
    let probe = probe_job(&row, key)?;
    JobFile::parse("data source", &probe.to_string(), Path::new(""), &|_| None).map_err(|e| {
        let field = e
            .key
            .strip_prefix("source.")
            .map(|k| {
                if RESERVED.contains(&k) || k.starts_with("password") || k.starts_with("url") {
                    k.to_owned()
                } else {
                    format!("options.{k}")
                }
            })
            .unwrap_or_default();
        ApiError::bad(field, e.message)
    })?;
    Ok(row)
}

/// The scheme, host and port of each of a data source's URLs (comma-separated), in order,
/// with default ports filled in (`mysql` 3306, `http` 80, `https` 443).
pub fn endpoints(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match url::Url::parse(u) {
            Ok(p) => {
                let port = p.port_or_known_default().or(match p.scheme() {
                    "mysql" => Some(3306),
                    _ => None,
                });
                format!(
                    "{}://{}:{}",
                    p.scheme().to_ascii_lowercase(),
                    p.host_str().unwrap_or_default().to_ascii_lowercase(),
                    port.map(|n| n.to_string()).unwrap_or_default()
                )
            }
            Err(_) => u.to_owned(),
        })
        .collect()
}

/// The name of a query parameter of `url` that holds a secret (`?password=...`).
fn secret_query_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .find(|k| crate::secrets::is_secret_param(k))
        .map(str::to_owned)
}

/// The key path of a secret among the options (`options.properties.sasl.password`), at any
/// depth: options are stored in clear.
fn secret_option(options: &Map<String, Value>, at: &str) -> Option<String> {
    options.iter().find_map(|(k, v)| {
        let path = format!("{at}.{k}");
        if crate::secrets::is_secret_param(k) {
            return Some(path);
        }
        match v {
            Value::Object(m) => secret_option(m, &path),
            _ => None,
        }
    })
}

/// `${` in stored values is literal: job files would read it as a variable.
fn literal(s: &str) -> String {
    s.replace("${", "$${")
}

fn literal_tree(v: &mut Value) {
    match v {
        Value::String(s) => *s = literal(s),
        Value::Array(a) => a.iter_mut().for_each(literal_tree),
        Value::Object(m) => m.values_mut().for_each(literal_tree),
        _ => {}
    }
}

/// The connection keys of a data source as a job file's `[source]` / `[target]` table, with
/// its secrets decrypted (in memory only).
pub fn connection(row: &DataSourceRow, key: &MasterKey) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    m.insert("type".into(), json!(row.kind));
    m.insert("url".into(), json!(literal(&row.url)));
    if let Some(u) = &row.username {
        m.insert("username".into(), json!(literal(u)));
    }
    let open = |enc: &String| {
        key.decrypt(enc)
            .map(|s| json!(literal(&s)))
            .map_err(|e| ApiError::internal(format!("data source {:?}: {e}", row.name)))
    };
    if let Some(p) = &row.password_enc {
        m.insert("password".into(), open(p)?);
    }
    if let Some(k) = &row.api_key_enc {
        m.insert("api_key".into(), open(k)?);
    }
    if let Value::Object(o) = &row.options {
        for (k, v) in o {
            let mut v = v.clone();
            literal_tree(&mut v);
            m.insert(k.clone(), v);
        }
    }
    Ok(m)
}

/// A job reading everything of the data source into nothing: parsed to check the keys and
/// to get the connector's connection settings.
fn probe_job(row: &DataSourceRow, key: &MasterKey) -> Result<Value, ApiError> {
    let mut source = connection(row, key)?;
    let ui = data_source_ui(&row.kind)?;
    source.insert(ui.units_key.into(), json!([ui.all_units]));
    // what every task gives (a Kafka source's group), as a task named "probe" would
    for f in ui.task_fields.iter().filter(|f| f.side == "source") {
        source
            .entry(f.key)
            .or_insert_with(|| json!(f.default.replace("{task}", "probe")));
    }
    Ok(json!({ "name": "probe", "source": source, "target": { "type": "discard" } }))
}

/// The descriptor of a connector that is a data source.
fn data_source_ui(kind: &str) -> Result<ConnectorUi, ApiError> {
    let reg = registry();
    match reg.ui(kind).filter(|u| u.data_source) {
        Some(ui) => Ok(ui),
        None => {
            let known: Vec<String> = reg
                .uis()
                .into_iter()
                .filter(|u| u.data_source)
                .map(|u| u.kind.to_owned())
                .collect();
            Err(ApiError::bad(
                "type",
                format!("unknown type {kind:?}, expected {}", known.join(" or ")),
            ))
        }
    }
}

fn parsed_source(row: &DataSourceRow, key: &MasterKey) -> Result<SourceSpec, ApiError> {
    let probe = probe_job(row, key)?;
    JobFile::parse("data source", &probe.to_string(), Path::new(""), &|_| None)
        .map(|j| j.source)
        .map_err(|e| ApiError::bad("", e.message))
}

/// Connects to the data source and reports what it is; `scrub` removes secrets from errors.
pub async fn test(
    row: &DataSourceRow,
    key: &MasterKey,
    scrub: &(dyn Fn(&str) -> String + Sync),
) -> Result<TestResult, ApiError> {
    let mut r = parsed_source(row, key)?.test_connection().await;
    r.error = r.error.map(|e| scrub(&e));
    // Grants may quote password hashes (IDENTIFIED BY PASSWORD '*...').
    r.details = r
        .details
        .iter()
        .map(|d| scrub(&crate::secrets::scrub_shapes(d)))
        .collect();
    Ok(r)
}

/// The units (`db.table`, index names) the data source holds, for the task wizard.
pub async fn list_units(
    row: &DataSourceRow,
    key: &MasterKey,
    scrub: &(dyn Fn(&str) -> String + Sync),
) -> Result<Vec<String>, ApiError> {
    parsed_source(row, key)?
        .list_units()
        .await
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::BAD_GATEWAY,
            message: scrub(&e),
            field: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_scheme_host_and_port() {
        assert_eq!(
            endpoints("mysql://u@db.example/x"),
            ["mysql://db.example:3306"]
        );
        assert_eq!(
            endpoints("mysql://u@DB.example:3306/y?ssl-mode=REQUIRED"),
            ["mysql://db.example:3306"]
        );
        assert_ne!(
            endpoints("mysql://u@db.example/x"),
            endpoints("mysql://u@evil.example/x")
        );
        assert_ne!(endpoints("http://h:9200"), endpoints("https://h:9200"));
        assert_eq!(endpoints("https://h"), ["https://h:443"]);
        assert_eq!(
            secret_query_param("mysql://u@h/d?password=x").as_deref(),
            Some("password")
        );
        assert_eq!(
            secret_query_param("http://h:9200/?API_KEY=x").as_deref(),
            Some("API_KEY")
        );
        assert_eq!(
            secret_query_param("mysql://u@h/d?ssl-mode=REQUIRED&ssl-key=/k.pem"),
            None
        );
        let options =
            json!({"properties": {"security.protocol": "SASL_SSL", "sasl.password": "x"}});
        assert_eq!(
            secret_option(options.as_object().unwrap(), "options").as_deref(),
            Some("options.properties.sasl.password")
        );
        let options = json!({"max_connections": 4, "properties": {"sasl.mechanisms": "PLAIN"}});
        assert_eq!(secret_option(options.as_object().unwrap(), "options"), None);
    }
}

//! Data sources: MySQL servers and Elasticsearch / OpenSearch clusters that tasks read from
//! and write to. Passwords and API keys are stored encrypted and never returned.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::crypto::MasterKey;
use super::http::ApiError;
use super::store::DataSourceRow;
use crate::job_file::{JobFile, SourceSpec};

/// What a client sends to create or change a data source.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceInput {
    /// A unique name.
    pub name: String,
    /// `mysql` or `elasticsearch` (`opensearch` is the same).
    #[serde(rename = "type")]
    pub kind: String,
    /// `mysql://user@host:3306/db` or `http://host:9200`.
    pub url: String,
    /// Elasticsearch user name (MySQL: the user is in the URL).
    #[serde(default)]
    pub username: Option<String>,
    /// The password; on update, absent keeps the stored one and `""` removes it.
    #[serde(default)]
    pub password: Option<String>,
    /// Elasticsearch API key; on update, absent keeps the stored one and `""` removes it.
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
    /// `mysql` or `elasticsearch`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its URL.
    pub url: String,
    /// Elasticsearch user name.
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
            url: r.url.clone(),
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
    let kind = match input.kind.as_str() {
        "mysql" => "mysql",
        "elasticsearch" | "opensearch" => "elasticsearch",
        other => {
            return Err(ApiError::bad(
                "type",
                format!("unknown type {other:?}, expected mysql or elasticsearch"),
            ))
        }
    };
    let url = input.url.trim().to_owned();
    let scheme_ok = match kind {
        "mysql" => url.starts_with("mysql://"),
        _ => url.starts_with("http://") || url.starts_with("https://"),
    };
    if !scheme_ok {
        let want = if kind == "mysql" {
            "mysql://user@host:3306/db"
        } else {
            "http(s)://host:9200"
        };
        return Err(ApiError::bad("url", format!("expected a URL like {want}")));
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
    if kind == "mysql"
        && (input.username.is_some() || input.api_key.as_deref().is_some_and(|k| !k.is_empty()))
    {
        let field = if input.username.is_some() {
            "username"
        } else {
            "api_key"
        };
        return Err(ApiError::bad(
            field,
            "MySQL takes the user in the URL and no API key",
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
    if row.kind == "mysql" {
        source.insert("tables".into(), json!(["*.*"]));
    } else {
        source.insert("indices".into(), json!(["*"]));
    }
    Ok(json!({ "name": "probe", "source": source, "target": { "type": "discard" } }))
}

fn parsed_source(row: &DataSourceRow, key: &MasterKey) -> Result<SourceSpec, ApiError> {
    let probe = probe_job(row, key)?;
    JobFile::parse("data source", &probe.to_string(), Path::new(""), &|_| None)
        .map(|j| j.source)
        .map_err(|e| ApiError::bad("", e.message))
}

/// What "test connection" found.
#[derive(Debug, Serialize)]
pub struct TestResult {
    /// Whether the server answered.
    pub ok: bool,
    /// Its version.
    pub version: Option<String>,
    /// `mariadb`, `mysql`, `elasticsearch` or `opensearch`.
    pub flavor: Option<String>,
    /// MySQL: the grants of the user; Elasticsearch: the cluster name.
    pub details: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Connects to the data source and reports what it is; `scrub` removes secrets from errors.
pub async fn test(
    row: &DataSourceRow,
    key: &MasterKey,
    scrub: &(dyn Fn(&str) -> String + Sync),
) -> Result<TestResult, ApiError> {
    let failed = |e: String| TestResult {
        ok: false,
        version: None,
        flavor: None,
        details: Vec::new(),
        error: Some(scrub(&e)),
    };
    Ok(match parsed_source(row, key)? {
        SourceSpec::MySql(spec) => {
            match datatrace_mysql::MySqlConnection::connect(&spec.connection).await {
                Ok(conn) => {
                    use mysql_async::prelude::Queryable;
                    let info = conn.info().clone();
                    let mut details = Vec::new();
                    if let Ok(mut c) = conn.get().await {
                        if let Ok(rows) = c.query::<String, _>("SHOW GRANTS").await {
                            details = rows;
                        }
                    }
                    let _ = conn.close().await;
                    TestResult {
                        ok: true,
                        version: Some(info.version),
                        flavor: Some(if info.is_mariadb { "mariadb" } else { "mysql" }.into()),
                        details: details.iter().map(|d| scrub(d)).collect(),
                        error: None,
                    }
                }
                Err(e) => failed(format!(
                    "cannot connect to {}: {e}",
                    spec.connection.redacted_url()
                )),
            }
        }
        SourceSpec::Elasticsearch(spec) => {
            match datatrace_es::EsClient::connect(&spec.connection).await {
                Ok(client) => {
                    let info = client.info().clone();
                    TestResult {
                        ok: true,
                        version: Some(info.version.clone()),
                        flavor: Some(
                            match info.flavor {
                                datatrace_es::Flavor::Elasticsearch => "elasticsearch",
                                datatrace_es::Flavor::OpenSearch => "opensearch",
                            }
                            .into(),
                        ),
                        details: vec![format!("cluster {}", info.cluster_name)],
                        error: None,
                    }
                }
                Err(e) => failed(format!(
                    "cannot connect to {}: {e}",
                    spec.connection.urls.join(", ")
                )),
            }
        }
        SourceSpec::Generator(_) => failed("not a data source".into()),
    })
}

/// The tables (`db.table`) or indices the data source holds, for the task wizard.
pub async fn list_units(
    row: &DataSourceRow,
    key: &MasterKey,
    scrub: &(dyn Fn(&str) -> String + Sync),
) -> Result<Vec<String>, ApiError> {
    let unreachable = |e: String| ApiError {
        status: axum::http::StatusCode::BAD_GATEWAY,
        message: scrub(&e),
        field: None,
    };
    match parsed_source(row, key)? {
        SourceSpec::MySql(spec) => {
            let conn = datatrace_mysql::MySqlConnection::connect(&spec.connection)
                .await
                .map_err(|e| {
                    unreachable(format!(
                        "cannot connect to {}: {e}",
                        spec.connection.redacted_url()
                    ))
                })?;
            let selector = datatrace_mysql::TableSelector::include(["*.*"]);
            let tables = datatrace_mysql::discover_tables(&conn, &selector)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let _ = conn.close().await;
            Ok(tables.iter().map(|t| t.qualified_name()).collect())
        }
        SourceSpec::Elasticsearch(spec) => {
            let client = datatrace_es::EsClient::connect(&spec.connection)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let answer = client
                .get_mapping("*")
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut names: Vec<String> = answer
                .as_object()
                .map(|m| m.keys().filter(|k| !k.starts_with('.')).cloned().collect())
                .unwrap_or_default();
            names.sort();
            Ok(names)
        }
        SourceSpec::Generator(_) => Ok(Vec::new()),
    }
}

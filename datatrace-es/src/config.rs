//! Configuration of connections, sinks and sources, as they appear in job files.
//!
//! Every struct has defaults for every field (`#[serde(default)]`) and refuses unknown fields
//! (`deny_unknown_fields`), so a typo in a job file is an error naming the field.
//!
//! ```
//! use datatrace_es::{ConnectionConfig, SinkConfig};
//!
//! let conn: ConnectionConfig = serde_json::from_str(r#"{
//!     "urls": ["https://es1:9200", "https://es2:9200"],
//!     "username": "elastic", "password": "secret",
//!     "tls": {"ca_cert": "/etc/es/ca.pem"}
//! }"#).unwrap();
//! assert!(!format!("{conn:?}").contains("secret"));
//! let sink: SinkConfig = serde_json::from_str(r#"{"index": "{prefix}-{table}", "prefix": "shop"}"#).unwrap();
//! assert_eq!(sink.max_docs, 1000);
//! assert!(serde_json::from_str::<SinkConfig>(r#"{"indx": "x"}"#).is_err());
//! ```

use std::fmt;
use std::path::PathBuf;

use datatrace_core::{RetryPolicy, TableChanges};
use serde::{Deserialize, Serialize};

use crate::errors::EsError;

/// A password or API key: serialized as given (job files need it), never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret text (for building credentials only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TLS settings for `https://` URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file with the CA certificate(s) that signed the cluster's certificate, trusted in
    /// addition to the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Verify the server certificate (default `true`). `false` accepts any certificate: only
    /// for test clusters, and it must be set explicitly.
    pub verify: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_cert: None,
            verify: true,
        }
    }
}

/// How to reach a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Node URLs (`http://host:9200`); requests go round-robin over them. Credentials do not
    /// belong in URLs (they would end up in messages): use `username`/`password` or `api_key`.
    pub urls: Vec<String>,
    /// User for basic authentication.
    pub username: Option<String>,
    /// Password for basic authentication.
    pub password: Option<Secret>,
    /// API key: either the base64 `id:key` form Elasticsearch returns as `encoded`, or
    /// `id:key` in clear (it is encoded then).
    pub api_key: Option<Secret>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Timeout of one request, in milliseconds (bulk requests and search pages included).
    pub timeout_ms: u64,
    /// Compress request bodies with gzip (saves network at some CPU cost on both sides).
    pub gzip: bool,
    /// Retries of transient failures (connection errors, 429, 502/503/504) for searches and
    /// administrative requests; the bulk sink leaves retries to the pipeline's policy.
    pub retry: RetryPolicy,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            urls: vec!["http://127.0.0.1:9200".into()],
            username: None,
            password: None,
            api_key: None,
            tls: TlsConfig::default(),
            timeout_ms: 60_000,
            gzip: false,
            retry: RetryPolicy {
                max_attempts: 6,
                initial_backoff: std::time::Duration::from_millis(200),
                max_backoff: std::time::Duration::from_secs(10),
            },
        }
    }
}

impl ConnectionConfig {
    /// A configuration for these node URLs with defaults otherwise.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        ConnectionConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Checks the settings; the error names the wrong one.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.urls.is_empty() {
            return Err(EsError::Config(
                "urls: at least one node URL is needed".into(),
            ));
        }
        for u in &self.urls {
            let url = elasticsearch::http::Url::parse(u)
                .map_err(|e| EsError::Config(format!("urls: {u:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(EsError::Config(format!(
                    "urls: {u:?} must start with http:// or https://"
                )));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(EsError::Config(format!(
                    "urls: {} carries credentials; put them in username/password or api_key",
                    url.host_str().unwrap_or("?")
                )));
            }
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(EsError::Config(
                "password is set but username is not".into(),
            ));
        }
        if self.username.is_some() && self.api_key.is_some() {
            return Err(EsError::Config(
                "username and api_key are both set: choose one authentication".into(),
            ));
        }
        if let Some(k) = &self.api_key {
            let k = k.expose();
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(EsError::Config(
                    "api_key must be printable ASCII without spaces".into(),
                ));
            }
        }
        if self.timeout_ms == 0 {
            return Err(EsError::Config("timeout_ms must be above 0".into()));
        }
        if self.retry.max_attempts == 0 {
            return Err(EsError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The bulk action used for inserts, snapshot rows and updates. Deletes are always `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteAction {
    /// `index`: create or replace the whole document (idempotent by id).
    #[default]
    Index,
    /// `create`: only if absent; an existing document (409) counts as written.
    Create,
    /// `update` with `{"doc": ...}`: change the given fields of an existing document; a
    /// missing document is rejected.
    Update,
    /// `update` with `doc_as_upsert`: change the given fields, or create the document.
    Upsert,
}

/// The `refresh` parameter of bulk requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// Do not refresh (the index's `refresh_interval` decides); fastest.
    #[default]
    False,
    /// Refresh the affected shards right after each request (costly).
    True,
    /// Answer once a refresh made the writes visible.
    WaitFor,
}

impl RefreshPolicy {
    /// The query parameter value, or `None` for the default.
    pub fn as_param(&self) -> Option<&'static str> {
        match self {
            RefreshPolicy::False => None,
            RefreshPolicy::True => Some("true"),
            RefreshPolicy::WaitFor => Some("wait_for"),
        }
    }
}

/// Where the external version of a document comes from (`version_type=external`): a
/// document is only replaced by a change with a higher version, so an older change replayed
/// late can never overwrite a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VersionSource {
    /// The record's source position ordinal (binlog sources grow it with every change).
    Position,
    /// A column holding a non-negative integer (or a date/time, as microseconds).
    Field(String),
}

/// How a column type becomes an Elasticsearch mapping (see the README's type table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// `auto` (scaled_float up to 15 digits of precision, keyword above: exact both ways),
    /// `scaled_float`, `keyword` (exact text) or `double`.
    pub decimal: DecimalMapping,
    /// `text_keyword` (text with a `keyword` subfield), `keyword` or `text`.
    pub string: StringMapping,
    /// `object` or `flattened` (`flat_object` on OpenSearch).
    pub json: JsonMapping,
    /// The index's `dynamic` setting (`true`, `false`, `strict`, `runtime`), if set.
    pub dynamic: Option<String>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            decimal: DecimalMapping::Auto,
            string: StringMapping::TextKeyword,
            json: JsonMapping::Object,
            dynamic: None,
        }
    }
}

/// Mapping of DECIMAL columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMapping {
    /// `scaled_float` when the precision is 1..=15, else `keyword`.
    #[default]
    Auto,
    /// `scaled_float` with `scaling_factor` 10^scale, written as a JSON number with its exact
    /// digits.
    ScaledFloat,
    /// `keyword`, written as a string.
    Keyword,
    /// `double`, written as a JSON number with its exact digits.
    Double,
}

/// Mapping of string columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMapping {
    /// `text` with a `keyword` subfield (`ignore_above: 256`), like dynamic mapping.
    #[default]
    TextKeyword,
    /// `keyword`.
    Keyword,
    /// `text`.
    Text,
}

/// Mapping of JSON columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMapping {
    /// `object` (dynamic sub-fields); the value must be a JSON object.
    #[default]
    Object,
    /// `flattened` (Elasticsearch) / `flat_object` (OpenSearch): one field for all keys.
    Flattened,
}

/// Settings of indices the sink creates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexSettings {
    /// `number_of_shards`.
    pub shards: Option<u32>,
    /// `number_of_replicas`.
    pub replicas: Option<u32>,
    /// More index settings, merged in as given (`{"refresh_interval": "30s"}`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Settings of the bulk sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// The index name pattern: `{table}`, `{db}`, `{prefix}` and `{now:yyyy.MM.dd}` (UTC date;
    /// tokens `yyyy`, `MM`, `dd`, `HH`) are replaced; the result is lower-cased.
    pub index: String,
    /// The value of `{prefix}`.
    pub prefix: String,
    /// The bulk action for everything but deletes.
    pub action: WriteAction,
    /// Joins the values of a composite primary key into the document id.
    pub id_separator: String,
    /// Documents per bulk request, at most.
    pub max_docs: usize,
    /// Bytes per bulk request body, at most (a single larger document goes alone).
    pub max_bytes: usize,
    /// Bulk requests in flight at once, over all writers of this sink.
    pub max_in_flight: usize,
    /// A document whose JSON is larger than this is rejected before sending, naming its id.
    pub max_document_bytes: usize,
    /// The `refresh` parameter of bulk requests.
    pub refresh: RefreshPolicy,
    /// External versioning: where the version comes from (off when `None`).
    pub version: Option<VersionSource>,
    /// Write NULL columns as `null` (default) or leave the field out.
    pub write_nulls: bool,
    /// Create missing indices with mappings derived from the source schema.
    pub create_index: bool,
    /// How column types become mappings.
    pub mapping: MappingConfig,
    /// Settings of created indices.
    pub settings: IndexSettings,
    /// During the load set `refresh_interval: -1` and `number_of_replicas: 0` on the unit's
    /// index, and restore the previous values at the end.
    pub bulk_load: bool,
    /// What to do with the table changes of a change stream (`TRUNCATE`, `DROP TABLE`,
    /// `RENAME TABLE`): `apply` (default) deletes the index's documents, deletes the index,
    /// or moves the documents to the new name's index; `fail` stops the unit at the change;
    /// `ignore` leaves the index as it is (logged). See [`crate::EsSink`].
    pub table_changes: TableChanges,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            index: "{table}".into(),
            prefix: String::new(),
            action: WriteAction::Index,
            id_separator: "_".into(),
            max_docs: 1000,
            max_bytes: 5 * 1024 * 1024,
            max_in_flight: 2,
            max_document_bytes: 100 * 1024 * 1024,
            refresh: RefreshPolicy::False,
            version: None,
            write_nulls: true,
            create_index: true,
            mapping: MappingConfig::default(),
            settings: IndexSettings::default(),
            bulk_load: false,
            table_changes: TableChanges::Apply,
        }
    }
}

impl SinkConfig {
    /// Checks the settings; the error names the wrong one.
    pub fn validate(&self) -> Result<(), EsError> {
        for (name, v) in [
            ("max_docs", self.max_docs),
            ("max_bytes", self.max_bytes),
            ("max_in_flight", self.max_in_flight),
            ("max_document_bytes", self.max_document_bytes),
        ] {
            if v == 0 {
                return Err(EsError::Config(format!("{name} must be at least 1")));
            }
        }
        if self.index.trim().is_empty() {
            return Err(EsError::Config("index: the name pattern is empty".into()));
        }
        crate::naming::IndexPattern::parse(&self.index)?;
        if self.version.is_some()
            && matches!(self.action, WriteAction::Update | WriteAction::Upsert)
        {
            return Err(EsError::Config(
                "version: external versioning works with the index and create actions, not update"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// How the source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMethod {
    /// Point-in-time + `search_after` where the cluster has it (Elasticsearch 7.15+,
    /// OpenSearch 2.4+), scroll otherwise.
    #[default]
    Auto,
    /// Point-in-time + `search_after`; an error where the cluster lacks it.
    Pit,
    /// Scroll.
    Scroll,
}

/// Settings of the search source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// The index (or alias, or pattern) to read.
    pub index: String,
    /// A query in the Elasticsearch DSL (`{"range": {"ts": {"gte": "now-1d"}}}`); all
    /// documents when `None`.
    pub query: Option<serde_json::Value>,
    /// `_source` includes (all fields when empty).
    pub source_includes: Vec<String>,
    /// `_source` excludes.
    pub source_excludes: Vec<String>,
    /// Hits per page.
    pub page_size: usize,
    /// Slices read in parallel; `0` picks the number of primary shards (at most the
    /// pipeline's `max_parts`).
    pub slices: usize,
    /// Point-in-time or scroll.
    pub method: ReadMethod,
    /// How long a point-in-time or scroll context lives between two pages, e.g. `5m`.
    pub keep_alive: String,
    /// The field sorted on to make pages resumable; by default `_shard_doc` on Elasticsearch
    /// and `_id` on OpenSearch. A unique field of your own keeps resumes exact across
    /// point-in-time contexts on Elasticsearch (see the README).
    pub tiebreaker: Option<String>,
    /// A numeric field with doc values to cut slices by (`slice.field`); by default the
    /// cluster's own partitioning (Lucene ids under a point-in-time on Elasticsearch, which
    /// a new point-in-time may cut differently).
    pub slice_field: Option<String>,
    /// The name of the document id column (the primary key).
    pub id_column: String,
    /// The JSON column for top-level fields that are not in the mapping (`None` drops them).
    pub extra_column: Option<String>,
    /// Read each document as two columns, the id and `_source` (a JSON object): an exact
    /// copy for Elasticsearch -> Elasticsearch, with the index's mapping carried along.
    pub raw: bool,
    /// Flatten object fields into `a.b` columns instead of one JSON column per top-level
    /// object.
    pub flatten_objects: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            index: String::new(),
            query: None,
            source_includes: Vec::new(),
            source_excludes: Vec::new(),
            page_size: 1000,
            slices: 0,
            method: ReadMethod::Auto,
            keep_alive: "5m".into(),
            tiebreaker: None,
            slice_field: None,
            id_column: "_id".into(),
            extra_column: Some("_extra".into()),
            raw: false,
            flatten_objects: false,
        }
    }
}

impl SourceConfig {
    /// A configuration reading `index` with defaults otherwise.
    pub fn new(index: impl Into<String>) -> Self {
        SourceConfig {
            index: index.into(),
            ..Default::default()
        }
    }

    /// Checks the settings; the error names the wrong one.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.index.trim().is_empty() {
            return Err(EsError::Config("index: no index to read".into()));
        }
        if self.page_size == 0 || self.page_size > 10_000 {
            return Err(EsError::Config(
                "page_size must be between 1 and 10000".into(),
            ));
        }
        if self.keep_alive.is_empty()
            || !self
                .keep_alive
                .trim_end_matches(char::is_alphabetic)
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            return Err(EsError::Config(format!(
                "keep_alive {:?}: expected a duration like 5m or 30s",
                self.keep_alive
            )));
        }
        if let Some(q) = &self.query {
            if !q.is_object() {
                return Err(EsError::Config("query must be a JSON object".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_file_sections_parse_with_defaults_and_refuse_typos() {
        let sink: SinkConfig = serde_json::from_str(
            r#"{"index": "{prefix}-{table}-{now:yyyy.MM}", "prefix": "dt", "action": "upsert",
                "max_docs": 500, "refresh": "wait_for", "version": null,
                "mapping": {"decimal": "keyword", "json": "flattened", "dynamic": "strict"},
                "settings": {"shards": 3, "replicas": 0, "extra": {"refresh_interval": "30s"}},
                "bulk_load": true}"#,
        )
        .unwrap();
        assert_eq!(sink.action, WriteAction::Upsert);
        assert_eq!(sink.mapping.decimal, DecimalMapping::Keyword);
        assert_eq!(sink.max_bytes, 5 * 1024 * 1024);
        sink.validate().unwrap();
        let v: SinkConfig =
            serde_json::from_str(r#"{"version": {"field": "updated_at"}}"#).unwrap();
        assert_eq!(v.version, Some(VersionSource::Field("updated_at".into())));
        let v: SinkConfig = serde_json::from_str(r#"{"version": "position"}"#).unwrap();
        assert_eq!(v.version, Some(VersionSource::Position));
        let bad = SinkConfig {
            action: WriteAction::Update,
            ..v
        };
        assert!(bad.validate().unwrap_err().to_string().contains("version"));
        assert!(
            serde_json::from_str::<SinkConfig>(r#"{"mapping": {"decimals": "keyword"}}"#).is_err()
        );
        assert!(SinkConfig {
            index: "{tabel}".into(),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SinkConfig {
            max_docs: 0,
            ..Default::default()
        }
        .validate()
        .is_err());

        let src: SourceConfig = serde_json::from_str(
            r#"{"index": "logs-*", "query": {"term": {"level": "error"}}, "slices": 4,
                "method": "scroll", "keep_alive": "10m", "extra_column": null}"#,
        )
        .unwrap();
        src.validate().unwrap();
        assert_eq!(src.extra_column, None);
        assert_eq!(src.page_size, 1000);
        assert!(SourceConfig::new("x").validate().is_ok());
        assert!(SourceConfig {
            keep_alive: "5 minutes".into(),
            ..SourceConfig::new("x")
        }
        .validate()
        .is_err());
        assert!(SourceConfig {
            query: Some(serde_json::json!([1])),
            ..SourceConfig::new("x")
        }
        .validate()
        .is_err());
        assert!(SourceConfig::default().validate().is_err());
        assert!(serde_json::from_str::<SourceConfig>(r#"{"index": "x", "page": 5}"#).is_err());

        let conn: ConnectionConfig = serde_json::from_str(
            r#"{"urls": ["https://a:9200"], "api_key": "id:key", "tls": {"verify": false},
                "retry": {"max_attempts": 3, "initial_backoff": 100, "max_backoff": 1000}}"#,
        )
        .unwrap();
        conn.validate().unwrap();
        assert!(!conn.tls.verify);
        let text = serde_json::to_string(&conn).unwrap();
        let back: ConnectionConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, conn);
    }
}

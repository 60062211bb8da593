//! Settings of the search source: the index and query read, paging, slicing, the read
//! method and how documents become rows.

use datatrace_core::RetryPolicy;
use serde::{Deserialize, Serialize};

use crate::errors::EsError;

/// `id_column` / `extra_column`: a name, or `null` / `false` / `""` for none (TOML has no
/// null), `true` for the default name `default`.
fn column_or_switch<'de, D: serde::Deserializer<'de>>(
    d: D,
    default: &str,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrSwitch {
        On(bool),
        Name(String),
    }
    Ok(match Option::<NameOrSwitch>::deserialize(d)? {
        None | Some(NameOrSwitch::On(false)) => None,
        Some(NameOrSwitch::On(true)) => Some(default.into()),
        Some(NameOrSwitch::Name(n)) if n.trim().is_empty() => None,
        Some(NameOrSwitch::Name(n)) => Some(n),
    })
}

/// `id_column`: see [`column_or_switch`].
fn id_column<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    column_or_switch(d, "_id")
}

/// `extra_column`: see [`column_or_switch`].
fn extra_column<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    column_or_switch(d, "_extra")
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
    /// and `_seq_no` (one slice per shard) on OpenSearch, never `_id`. A unique field of your
    /// own with doc values keeps resumes exact across point-in-time contexts on Elasticsearch
    /// (see [`EsSource`](crate::EsSource)).
    pub tiebreaker: Option<String>,
    /// A numeric field with doc values to cut slices by (`slice.field`); by default the
    /// cluster's own partitioning (Lucene ids under a point-in-time on Elasticsearch, which
    /// a new point-in-time may cut differently).
    pub slice_field: Option<String>,
    /// The name of the document id column (the primary key), `_id` by default. `None`
    /// (`false` or `""` in a job file) reads no id column: the key is then the columns the
    /// sink that wrote the index named as the key (the mapping's `_meta.datatrace.key`),
    /// whose values come from `_source` or, when a document lacks them, from its id decoded
    /// ([`datatrace_core::doc_id`]), so an index written from a table reads back into the
    /// same table shape.
    #[serde(deserialize_with = "id_column")]
    pub id_column: Option<String>,
    /// The JSON column for top-level fields that are not in the mapping, `_extra` by
    /// default; `None` drops them. In a job file (TOML has no null): `extra_column = false`
    /// or `""` drops them, `true` keeps the default `_extra`.
    #[serde(deserialize_with = "extra_column")]
    pub extra_column: Option<String>,
    /// Read each document as two columns, the id and `_source` (a JSON object): an exact
    /// copy for Elasticsearch -> Elasticsearch, with the index's mapping carried along.
    pub raw: bool,
    /// Flatten object fields into `a.b` columns instead of one JSON column per top-level
    /// object.
    pub flatten_objects: bool,
    /// How a read survives lost connections, a restarting cluster and lost search contexts,
    /// beyond the connection's own `retry` of each request: the budget of one page, started
    /// again once a page arrives. Default: up to 10 minutes, 100 ms doubling to 30 s apart.
    pub reconnect: RetryPolicy,
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
            id_column: Some("_id".into()),
            extra_column: Some("_extra".into()),
            raw: false,
            flatten_objects: false,
            reconnect: RetryPolicy::default(),
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
        if self.reconnect.max_attempts == 0 {
            return Err(EsError::Config(
                "reconnect.max_attempts must be at least 1".into(),
            ));
        }
        if self.slices > MAX_SLICES {
            return Err(EsError::Config(format!(
                "slices = {}: at most {MAX_SLICES} (the engines' default \
                 index.max_slices_per_scroll); 0 reads one slice per primary shard",
                self.slices
            )));
        }
        Ok(())
    }
}

/// The most slices a source reads in parallel: Elasticsearch's and OpenSearch's default
/// `index.max_slices_per_scroll`.
pub const MAX_SLICES: usize = 1024;

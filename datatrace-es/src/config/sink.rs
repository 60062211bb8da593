//! Settings of the bulk sink: the index name pattern, the bulk action, batching, versioning
//! and created indices.

use datatrace_core::TableChanges;
use serde::{Deserialize, Serialize};

use super::MappingConfig;
use crate::errors::EsError;

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
    /// Joins the values of a composite primary key into the document id (the encoding of
    /// [`datatrace_core::doc_id`]: parts escaped, so ids are injective); any non-empty text
    /// without `\`.
    pub id_separator: String,
    /// Documents per bulk request, at most.
    pub max_docs: usize,
    /// Bytes per bulk request body, at most (a single larger document goes alone).
    pub max_bytes: usize,
    /// Bulk requests in flight at once, over all writers of this sink: the upper bound of
    /// the adaptive limit, or the fixed number when `adaptive_concurrency` is off.
    pub max_in_flight: usize,
    /// Adapt the requests in flight to the cluster (default): start at 2, one more per
    /// round of answers while their latency stays near its minimum, halved when the cluster
    /// pushes back (429, `es_rejected_execution_exception` items, 502/503/504, no answer)
    /// or latency rises to twice the minimum; never above `max_in_flight`. Off: always
    /// `max_in_flight`.
    pub adaptive_concurrency: bool,
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
            max_in_flight: 16,
            adaptive_concurrency: true,
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
        // Every number has an upper bound: bulk bodies are memory (the engines refuse bodies
        // above 2 GiB), requests in flight are tasks; an index has at most 1024 shards.
        const GIB: u64 = 1 << 30;
        datatrace_core::limits::check_ranges(&[
            ("max_docs", self.max_docs as u64, 1, 1_000_000),
            ("max_bytes", self.max_bytes as u64, 1, GIB),
            ("max_in_flight", self.max_in_flight as u64, 1, 1024),
            ("max_document_bytes", self.max_document_bytes as u64, 1, GIB),
            (
                "settings.shards",
                self.settings.shards.unwrap_or(1) as u64,
                1,
                1024,
            ),
            (
                "settings.replicas",
                self.settings.replicas.unwrap_or(0) as u64,
                0,
                1024,
            ),
        ])
        .map_err(EsError::Config)?;
        if self.index.trim().is_empty() {
            return Err(EsError::Config("index: the name pattern is empty".into()));
        }
        crate::naming::IndexPattern::parse(&self.index)?;
        datatrace_core::doc_id::check_separator(&self.id_separator)
            .map_err(|e| EsError::Config(format!("id_separator: {e}")))?;
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

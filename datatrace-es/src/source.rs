//! [`EsSource`]: reads an index with point-in-time + `search_after` (or scroll), in slices
//! read in parallel, resumable from the last page's sort values.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{DamagedCheckpoint, Emitter, Part, Position, Record, Schema, Source};
use elasticsearch::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};

use crate::client::{encode_path, EsClient, PitApi};
use crate::config::{ConnectionConfig, ReadMethod, SourceConfig};
use crate::contexts::SharedPit;
use crate::errors::EsError;
use crate::hits::{Decoder, Hit, SearchAnswer};
use crate::inferred::{mapping_to_schema, IdKey, InferredSchema};

/// An index's schema, its flattened object paths, and how ids decode into key columns.
type Inferred = (Arc<Schema>, HashSet<String>, Option<IdKey>);

mod pages;
mod pit;
mod scroll;

/// How this source reads, decided from the configuration and the cluster.
/// The spec of a part: one slice of a sliced read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SliceSpec {
    slice: u64,
    max: u64,
}

/// Where a point-in-time read of a slice resumes: after these sort values (of the context
/// `pit` when the order is relative to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PitPosition {
    slice: u64,
    after: Vec<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pit: Option<String>,
}

/// Where a scroll read of a slice resumes: after this many documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ScrollPosition {
    slice: u64,
    read: u64,
}

/// Resume positions name their slice.
trait HasSlice {
    fn slice(&self) -> u64;
}

impl HasSlice for PitPosition {
    fn slice(&self) -> u64 {
        self.slice
    }
}

impl HasSlice for ScrollPosition {
    fn slice(&self) -> u64 {
        self.slice
    }
}

#[derive(Debug)]
enum Reader {
    Pit(SharedPit),
    Scroll,
}

/// The Elasticsearch/OpenSearch source.
///
/// [`Source::split`] makes one part per slice (`{"slice": i, "max": n}`); each part pages
/// through its slice with `search_after` under a shared point-in-time, and checkpoints after
/// every page with the last hit's sort values. The order never involves `_id` (which has no
/// doc values, costs heap to sort by, and which Elasticsearch 8 refuses to sort on):
///
/// - OpenSearch: `_seq_no`, with exactly one slice per primary shard (slicing without a
///   slice field gives each slice whole shards). A live document's `_seq_no` is unique in its
///   shard, has doc values, and keeps its meaning in any point-in-time, so a resumed part
///   continues exactly after its last value even when its context has expired: nothing is
///   skipped, nothing read again (a document changed meanwhile has a new, higher `_seq_no`
///   and is read with its new values). OpenSearch before 3.x has no `_shard_doc`.
/// - Elasticsearch: `_shard_doc`, the point-in-time's own tiebreaker, with any number of
///   slices. Its values mean something only in their point-in-time, so checkpoints carry the
///   context's id, a cancelled read leaves the context open (it expires after `keep_alive`),
///   and a resumed part adopts it and continues exactly; if it has expired, the part is read
///   again from its start (nothing is skipped; rows read before are delivered again with the
///   same values to sinks that write by key).
/// - A configured `tiebreaker` field (unique, with doc values) on either: its values hold in
///   any point-in-time.
///
/// Where the cluster has no point-in-time (Elasticsearch before 7.15 or without x-pack,
/// OpenSearch before 2.4), or `method` is `scroll`, or on OpenSearch with a `slice_field` but
/// no `tiebreaker` (slices then cross shards), each slice is a sliced scroll in `_doc` order;
/// a resumed scroll restarts its slice and skips the hits already delivered (exact only if
/// the index did not change meanwhile).
///
/// Records: the schema comes from the index mapping (see [`crate::mapping`]): the id
/// column (`_id`, the primary key), one column per top-level field, and the extra column
/// (`_extra`, JSON) for fields outside the mapping. With `raw`, each record is the id and
/// the whole `_source`.
pub struct EsSource {
    client: EsClient,
    cfg: SourceConfig,
    reader: Reader,
    inferred: tokio::sync::OnceCell<Arc<Inferred>>,
}

impl std::fmt::Debug for EsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSource")
            .field("client", &self.client)
            .field("index", &self.cfg.index)
            .field("reader", &self.reader)
            .finish()
    }
}

impl EsSource {
    /// A source reading through `client`.
    pub fn new(client: EsClient, cfg: SourceConfig) -> Result<EsSource, EsError> {
        cfg.validate()?;
        let pit = client.info().pit_api();
        // OpenSearch's `_seq_no` order is unique only inside one shard, and a slice field cuts
        // slices across shards: such reads need a tiebreaker field, else a scroll.
        let crosses_shards = pit == Some(PitApi::OpenSearch)
            && cfg.slice_field.is_some()
            && cfg.tiebreaker.is_none();
        let reader = match (cfg.method, pit) {
            (ReadMethod::Scroll, _) | (ReadMethod::Auto, None) => Reader::Scroll,
            (ReadMethod::Auto, Some(_)) if crosses_shards => Reader::Scroll,
            (ReadMethod::Pit, Some(_)) if crosses_shards => {
                return Err(EsError::Config(format!(
                    "method pit with slice_field {:?} on {}: OpenSearch has no `_shard_doc` order, so slices cut by a field need a `tiebreaker` (a unique field with doc values); set one, or use method scroll",
                    cfg.slice_field.as_deref().unwrap_or_default(),
                    client.info()
                )))
            }
            (_, Some(api)) => Reader::Pit(SharedPit::new(api, &cfg.index, &cfg.keep_alive)),
            (ReadMethod::Pit, None) => {
                return Err(EsError::Config(format!(
                    "method pit: {} has no point-in-time API (Elasticsearch 7.15+ or OpenSearch 2.4+ needed); use scroll",
                    client.info()
                )))
            }
        };
        Ok(EsSource {
            client,
            cfg,
            reader,
            inferred: tokio::sync::OnceCell::new(),
        })
    }

    /// Connects and builds a source.
    pub async fn connect(conn: &ConnectionConfig, cfg: SourceConfig) -> Result<EsSource, EsError> {
        cfg.validate()?;
        let client = EsClient::connect(conn).await?;
        EsSource::new(client, cfg)
    }

    /// Whether this source reads with scroll (else point-in-time).
    pub fn uses_scroll(&self) -> bool {
        matches!(self.reader, Reader::Scroll)
    }

    /// Point-in-time ids this source opened, with whether each was closed.
    pub fn pit_history(&self) -> Vec<(String, bool)> {
        match &self.reader {
            Reader::Pit(p) => p.history(),
            Reader::Scroll => Vec::new(),
        }
    }

    /// The schema inferred from the mapping (fetched once).
    pub async fn inferred_schema(&self) -> Result<Arc<Schema>, EsError> {
        Ok(self.inferred().await?.0.clone())
    }

    async fn inferred(&self) -> Result<Arc<Inferred>, EsError> {
        self.inferred
            .get_or_try_init(|| async {
                let answer = self.client.get_mapping(&self.cfg.index).await?;
                let InferredSchema {
                    schema,
                    objects,
                    id_key,
                } = mapping_to_schema(&self.cfg.index, &answer, &self.cfg)?;
                Ok(Arc::new((Arc::new(schema), objects, id_key)))
            })
            .await
            .cloned()
    }

    fn sort(&self) -> Json {
        let field = match (&self.cfg.tiebreaker, &self.reader) {
            (Some(f), _) => f.as_str(),
            (None, Reader::Scroll) => "_doc",
            (None, Reader::Pit(p)) => default_tiebreaker(p.api()),
        };
        json!([{ field: "asc" }])
    }

    /// Whether sort values mean something only in the point-in-time they came from
    /// (`_shard_doc`), rather than in any (`_seq_no` in one shard, a configured field).
    fn order_is_pit_relative(&self) -> bool {
        self.cfg.tiebreaker.is_none()
            && matches!(&self.reader, Reader::Pit(p) if p.api() == PitApi::Elasticsearch)
    }

    fn base_body(&self, slice: (u64, u64)) -> Map<String, Json> {
        let mut b = Map::new();
        b.insert("size".into(), json!(self.cfg.page_size));
        b.insert(
            "query".into(),
            self.cfg
                .query
                .clone()
                .unwrap_or_else(|| json!({"match_all": {}})),
        );
        if !self.cfg.source_includes.is_empty() || !self.cfg.source_excludes.is_empty() {
            b.insert(
                "_source".into(),
                json!({"includes": self.cfg.source_includes, "excludes": self.cfg.source_excludes}),
            );
        }
        b.insert("sort".into(), self.sort());
        if slice.1 > 1 {
            let mut sl = json!({"id": slice.0, "max": slice.1});
            if let Some(f) = &self.cfg.slice_field {
                sl["field"] = json!(f);
            }
            b.insert("slice".into(), sl);
        }
        if !self.uses_scroll() {
            b.insert("track_total_hits".into(), json!(false));
        }
        b
    }

    /// Names the index as the unit of source errors.
    /// A checkpoint this source cannot read, naming the index.
    fn damaged(&self, e: DamagedCheckpoint) -> datatrace_core::Error {
        datatrace_core::Error::DamagedCheckpoint {
            unit: self.cfg.index.clone(),
            source: Box::new(e),
        }
    }

    /// The resume position of `slice`, as the reader's type `T`: a damaged or foreign
    /// checkpoint (another read method, another slice) is an error, never a fresh start.
    fn resume_from<T: serde::de::DeserializeOwned + HasSlice>(
        &self,
        p: &Position,
        slice: (u64, u64),
        expected: &str,
    ) -> datatrace_core::Result<T> {
        let part = format!("slice-{}", slice.0);
        let t: T = p.state_as(&part, expected).map_err(|e| self.damaged(e))?;
        if t.slice() != slice.0 {
            return Err(self.damaged(DamagedCheckpoint::new(
                format!("the resume position of part {part}"),
                &p.state,
                expected,
                format!("it belongs to slice {}", t.slice()),
            )));
        }
        Ok(t)
    }

    fn named(&self, e: datatrace_core::Error) -> datatrace_core::Error {
        match e {
            datatrace_core::Error::Source { unit, source } if unit == "elasticsearch" => {
                datatrace_core::Error::Source {
                    unit: self.cfg.index.clone(),
                    source,
                }
            }
            other => other,
        }
    }

    fn decoder<'s>(&self, inferred: &'s Inferred) -> Decoder<'s> {
        let id_column = match (&self.cfg.id_column, self.cfg.raw) {
            (Some(c), _) => Some(c.as_str()),
            (None, true) => Some(crate::mapping::ID_COLUMN),
            (None, false) => None,
        };
        Decoder {
            schema: &inferred.0,
            objects: &inferred.1,
            raw: self.cfg.raw,
            id: id_column.and_then(|c| inferred.0.index_of(c)),
            id_key: inferred.2.as_ref(),
            extra: self
                .cfg
                .extra_column
                .as_deref()
                .and_then(|n| inferred.0.index_of(n)),
        }
    }

    fn parse<'b>(&self, context: &str, body: &'b [u8]) -> Result<SearchAnswer<'b>, EsError> {
        serde_json::from_slice(body).map_err(|e| EsError::Protocol {
            context: context.into(),
            reason: format!("search answer: {e}"),
        })
    }

    fn decode(&self, d: &Decoder<'_>, context: &str, hit: Hit<'_>) -> Result<Record, EsError> {
        let id = hit.id.clone();
        d.record(hit).map_err(|e| EsError::Protocol {
            context: context.into(),
            reason: format!("document {id}: {e}"),
        })
    }

    async fn shards(&self) -> Result<usize, EsError> {
        let path = format!("/{}/_settings", encode_path(&self.cfg.index));
        let v = self
            .client
            .json(
                &format!("reading the settings of index {}", self.cfg.index),
                Method::Get,
                &path,
                &[("flat_settings", "true")],
                None,
                Some(&self.cfg.index),
            )
            .await?;
        let n = v
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|i| i.pointer("/settings/index.number_of_shards"))
                    .filter_map(|s| {
                        s.as_str()
                            .and_then(|s| s.parse::<usize>().ok())
                            .or(s.as_u64().map(|u| u as usize))
                    })
                    .max()
                    .unwrap_or(1)
            })
            .unwrap_or(1);
        Ok(n.max(1))
    }
}

impl Drop for EsSource {
    fn drop(&mut self) {
        if let Reader::Pit(p) = &self.reader {
            if let Some(id) = p.take_open() {
                if let Ok(h) = tokio::runtime::Handle::try_current() {
                    let client = self.client.clone();
                    let api = p.api();
                    h.spawn(async move { crate::contexts::close_pit(&client, api, &id).await });
                }
            }
        }
    }
}

#[async_trait]
impl Source for EsSource {
    /// Snapshot rows have distinct keys: several writers may write them in any order.
    fn ordered(&self) -> bool {
        false
    }

    async fn schema(&self) -> datatrace_core::Result<Option<Arc<Schema>>> {
        let s = self
            .inferred_schema()
            .await
            .map_err(|e| self.named(e.into()))?;
        Ok(Some(s))
    }

    async fn split(&self, max_parts: usize) -> datatrace_core::Result<Vec<Part>> {
        // OpenSearch's `_seq_no` order needs every slice to be one whole shard, which slicing
        // without a slice field gives when there are exactly as many slices as shards.
        let per_shard = matches!(&self.reader, Reader::Pit(p) if p.api() == PitApi::OpenSearch)
            && self.cfg.tiebreaker.is_none();
        let n = if self.cfg.slices > 0 && !per_shard {
            self.cfg.slices
        } else {
            let shards = self.shards().await.map_err(|e| self.named(e.into()))?;
            if per_shard {
                if self.cfg.slices > 0 && self.cfg.slices != shards {
                    tracing::info!(index = %self.cfg.index, slices = self.cfg.slices, shards, "reading one slice per shard (OpenSearch orders by _seq_no, which is unique only within a shard)");
                }
                shards
            } else {
                shards.min(max_parts.max(1))
            }
        };
        if let Reader::Pit(p) = &self.reader {
            p.expect_parts(n).await;
        }
        Ok((0..n)
            .map(|i| {
                let spec = SliceSpec {
                    slice: i as u64,
                    max: n as u64,
                };
                Part::with_spec(format!("slice-{i}"), &spec)
            })
            .collect())
    }

    async fn estimate_rows(&self) -> Option<u64> {
        let path = format!("/{}/_count", encode_path(&self.cfg.index));
        let body =
            json!({"query": self.cfg.query.clone().unwrap_or_else(|| json!({"match_all": {}}))});
        let v = self
            .client
            .json(
                "counting documents",
                Method::Post,
                &path,
                &[],
                Some(&body),
                Some(&self.cfg.index),
            )
            .await
            .ok()?;
        v.get("count").and_then(|c| c.as_u64())
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let spec: SliceSpec = part
            .spec_as("an Elasticsearch slice")
            .map_err(|e| self.damaged(e))?;
        let slice = (spec.slice, spec.max);
        let r = match &self.reader {
            Reader::Pit(p) => self.read_pit(p, slice, from, out).await,
            Reader::Scroll => self.read_scroll(slice, from, out).await,
        };
        r.map_err(|e| self.named(e))
    }
}

/// The order a point-in-time read uses when no `tiebreaker` is configured: index order,
/// which costs nothing to sort by and needs no doc values (never `_id`).
pub fn default_tiebreaker(api: PitApi) -> &'static str {
    match api {
        PitApi::Elasticsearch => "_shard_doc",
        PitApi::OpenSearch => "_seq_no",
    }
}

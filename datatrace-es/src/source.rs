//! [`EsSource`]: reads an index with point-in-time + `search_after` (or scroll), in slices
//! read in parallel, resumable from the last page's sort values.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datatrace_core::{Emitter, Part, Position, Record, Schema, Source};
use elasticsearch::http::Method;
use serde_json::{json, Map, Value as Json};

use crate::client::{encode_path, EsClient, Flavor, PitApi};
use crate::config::{ConnectionConfig, ReadMethod, SourceConfig};
use crate::contexts::{clear_scroll, is_context_missing, SharedPit};
use crate::errors::EsError;
use crate::hits::{Decoder, Hit, SearchAnswer};
use crate::mapping::{mapping_to_schema, InferredSchema};

/// How this source reads, decided from the configuration and the cluster.
#[derive(Debug)]
enum Reader {
    Pit(SharedPit),
    Scroll,
}

/// The Elasticsearch/OpenSearch source.
///
/// [`Source::split`] makes one part per slice (`{"slice": i, "max": n}`); each part pages
/// through its slice with `search_after` under a shared point-in-time, sorted by the
/// tiebreaker (`_shard_doc` on Elasticsearch, `_id` on OpenSearch, or the configured
/// field), and checkpoints after every page with the last hit's sort values. A resumed part
/// opens a new point-in-time and continues after those values. Where the cluster has no
/// point-in-time (Elasticsearch before 7.15, OpenSearch before 2.4) or `method` is
/// `scroll`, each slice is a sliced scroll; a resumed scroll restarts its slice and skips
/// the hits already delivered (exact only if the index did not change meanwhile).
///
/// Records: the schema comes from the index mapping (see [`crate::mapping`]): the id
/// column (`_id`, the primary key), one column per top-level field, and the extra column
/// (`_extra`, JSON) for fields outside the mapping. With `raw`, each record is the id and
/// the whole `_source`.
pub struct EsSource {
    client: EsClient,
    cfg: SourceConfig,
    reader: Reader,
    inferred: tokio::sync::OnceCell<Arc<(Arc<Schema>, HashSet<String>)>>,
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
        let reader = match (cfg.method, pit) {
            (ReadMethod::Scroll, _) | (ReadMethod::Auto, None) => Reader::Scroll,
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

    async fn inferred(&self) -> Result<Arc<(Arc<Schema>, HashSet<String>)>, EsError> {
        self.inferred
            .get_or_try_init(|| async {
                let answer = self.client.get_mapping(&self.cfg.index).await?;
                let InferredSchema { schema, objects } =
                    mapping_to_schema(&self.cfg.index, &answer, &self.cfg)?;
                Ok(Arc::new((Arc::new(schema), objects)))
            })
            .await
            .cloned()
    }

    fn sort(&self) -> Json {
        let field = match (&self.cfg.tiebreaker, &self.reader) {
            (Some(f), _) => f.as_str(),
            (None, Reader::Scroll) => "_doc",
            (None, Reader::Pit(p)) => match p.api() {
                PitApi::Elasticsearch => "_shard_doc",
                PitApi::OpenSearch => "_id",
            },
        };
        json!([{ field: "asc" }])
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

    fn decoder<'s>(&self, inferred: &'s (Arc<Schema>, HashSet<String>)) -> Decoder<'s> {
        Decoder {
            schema: &inferred.0,
            objects: &inferred.1,
            raw: self.cfg.raw,
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

    async fn search(
        &self,
        context: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Json,
    ) -> Result<Result<Bytes, (u16, Bytes)>, EsError> {
        let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let r = self
            .client
            .request_retry(context, Method::Post, path, query, Some(bytes))
            .await?;
        if !r.is_success() {
            if is_context_missing(r.status, &r.body) {
                return Ok(Err((r.status, r.body)));
            }
            return Err(self.client.status_error(&r, context, Some(&self.cfg.index)));
        }
        Ok(Ok(r.body))
    }

    async fn read_pit(
        &self,
        pit: &SharedPit,
        slice: (u64, u64),
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let inferred = self.inferred().await?;
        let decoder = self.decoder(&inferred);
        let mut after: Option<Json> = from.and_then(|p| p.state.get("after").cloned());
        let mut id = pit.join(&self.client).await?;
        let result: datatrace_core::Result<()> = async {
            let context = format!("reading index {} (slice {} of {})", self.cfg.index, slice.0, slice.1);
            loop {
                let mut body = self.base_body(slice);
                body.insert("pit".into(), json!({"id": id, "keep_alive": self.cfg.keep_alive}));
                if let Some(a) = &after {
                    body.insert("search_after".into(), a.clone());
                }
                let bytes = match self.search(&context, "/_search", &[], &Json::Object(body)).await? {
                    Ok(b) => b,
                    Err(_) => {
                        tracing::info!(index = %self.cfg.index, "point-in-time expired, opening a new one");
                        id = pit.renew(&self.client, &id).await?;
                        continue;
                    }
                };
                let answer = self.parse(&context, &bytes)?;
                if let Some(new) = &answer.pit_id {
                    pit.update(&id, new).await;
                    id = new.clone();
                }
                let hits = answer.hits.hits;
                let n = hits.len();
                if n == 0 {
                    return Ok(());
                }
                let last_sort = hits.last().and_then(|h| h.sort.clone());
                for hit in hits {
                    let record = self.decode(&decoder, &context, hit)?;
                    out.emit(record).await?;
                }
                let Some(sort) = last_sort else {
                    return Err(EsError::Protocol {
                        context,
                        reason: "hits without sort values".into(),
                    }
                    .into());
                };
                after = Some(Json::Array(sort));
                out.checkpoint(Position::new(json!({"slice": slice.0, "after": after})))
                    .await?;
                if n < self.cfg.page_size {
                    return Ok(());
                }
            }
        }
        .await;
        pit.leave(&self.client, result.is_ok()).await;
        result
    }

    async fn read_scroll(
        &self,
        slice: (u64, u64),
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let inferred = self.inferred().await?;
        let decoder = self.decoder(&inferred);
        let mut skip = from
            .and_then(|p| p.state.get("read").and_then(|r| r.as_u64()))
            .unwrap_or(0);
        let mut read = skip;
        let context = format!(
            "scrolling index {} (slice {} of {})",
            self.cfg.index, slice.0, slice.1
        );
        let ka = self.cfg.keep_alive.as_str();
        let path = format!("/{}/_search", encode_path(&self.cfg.index));
        let first = Json::Object(self.base_body(slice));
        let mut scroll_id: Option<String> = None;
        let result: datatrace_core::Result<()> = async {
            let mut page = self
                .search(&context, &path, &[("scroll", ka)], &first)
                .await?;
            loop {
                let bytes = page.map_err(|_| EsError::Protocol {
                    context: context.clone(),
                    reason: "the scroll context expired (raise keep_alive)".into(),
                })?;
                let a = self.parse(&context, &bytes)?;
                if a.scroll_id.is_some() {
                    scroll_id = a.scroll_id.clone();
                }
                let hits = a.hits.hits;
                if hits.is_empty() {
                    return Ok(());
                }
                for hit in hits {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    let record = self.decode(&decoder, &context, hit)?;
                    out.emit(record).await?;
                    read += 1;
                }
                out.checkpoint(Position::new(json!({"slice": slice.0, "read": read})))
                    .await?;
                let Some(sid) = &scroll_id else {
                    return Ok(());
                };
                let body = json!({"scroll": ka, "scroll_id": sid});
                page = self.search(&context, "/_search/scroll", &[], &body).await?;
            }
        }
        .await;
        if let Some(sid) = scroll_id {
            clear_scroll(&self.client, &sid).await;
        }
        result
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
    async fn schema(&self) -> datatrace_core::Result<Option<Arc<Schema>>> {
        let s = self
            .inferred_schema()
            .await
            .map_err(|e| self.named(e.into()))?;
        Ok(Some(s))
    }

    async fn split(&self, max_parts: usize) -> datatrace_core::Result<Vec<Part>> {
        let n = if self.cfg.slices > 0 {
            self.cfg.slices
        } else {
            self.shards()
                .await
                .map_err(|e| self.named(e.into()))?
                .min(max_parts.max(1))
        };
        if let Reader::Pit(p) = &self.reader {
            p.expect_parts(n).await;
        }
        Ok((0..n)
            .map(|i| Part {
                id: format!("slice-{i}"),
                spec: json!({"slice": i, "max": n}),
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
        let slice = (
            part.spec.get("slice").and_then(|s| s.as_u64()).unwrap_or(0),
            part.spec.get("max").and_then(|s| s.as_u64()).unwrap_or(1),
        );
        let r = match &self.reader {
            Reader::Pit(p) => self.read_pit(p, slice, from, out).await,
            Reader::Scroll => self.read_scroll(slice, from, out).await,
        };
        r.map_err(|e| self.named(e))
    }
}

/// The flavour-specific default tiebreaker, for documentation and tests.
pub fn default_tiebreaker(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Elasticsearch => "_shard_doc",
        Flavor::OpenSearch => "_id",
    }
}

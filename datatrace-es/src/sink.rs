//! [`EsSink`]: writes batches with `_bulk` requests and reports an outcome per record.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datatrace_core::{
    Batch, Op, Outcome, PrepareContext, Record, Schema, Sink, SinkError, TableChange,
    TableChangeKind, TableChanges, Value,
};
use elasticsearch::http::Method;
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::bulk::{classify, parse_items, write_action, DocPlan, ItemOp};
use crate::client::EsClient;
use crate::config::{ConnectionConfig, SinkConfig, VersionSource, WriteAction};
use crate::errors::{is_retryable_status, EsError};
use crate::indices::{
    drop_index, ensure_index, finish_bulk_load, rename_index, start_bulk_load, truncate_index,
    Renamed, Restore,
};
use crate::naming::IndexPattern;

/// Counters of a sink, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Bulk requests sent (answered or not).
    pub requests: u64,
    /// Documents sent (retries included).
    pub docs: u64,
    /// Request body bytes sent (before compression).
    pub bytes: u64,
    /// Documents handed back for a retry (whole failed requests and 429/503 items).
    pub retryable: u64,
    /// Documents rejected.
    pub rejected: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    docs: AtomicU64,
    bytes: AtomicU64,
    retryable: AtomicU64,
    rejected: AtomicU64,
}

/// One document in a request body.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Its record in the batch.
    record: usize,
    /// Its lines in the body.
    start: usize,
    end: usize,
    op: ItemOp,
}

/// A bulk request body and the documents in it.
struct Chunk {
    body: Bytes,
    entries: Vec<Entry>,
}

/// The Elasticsearch/OpenSearch bulk sink.
///
/// A batch is cut into `_bulk` requests of at most `max_docs` documents and `max_bytes`
/// bytes, sent with at most `max_in_flight` requests at a time over all writers. Document
/// ids come from the primary key (`record.key_string(id_separator)`): replays after a crash
/// or a retry overwrite the same documents. Records without a primary key get ids chosen
/// by the cluster, so their copies are not idempotent (a retried request may duplicate
/// them).
///
/// Outcomes per record: written (also a 404 on delete, and a 409 version conflict under
/// external versioning or on `create`: the newer or same document is already there);
/// retryable (a failed request, HTTP 429/502/503/504, or an item failing with 429/503: the
/// pipeline retries those records alone with backoff); rejected with the cluster's reason
/// naming the index and the document id (mapping errors, too large documents).
///
/// Table changes of a change stream ([`Sink::table_change`]) follow
/// [`SinkConfig::table_changes`]: under `apply`, `TRUNCATE` deletes every document of the
/// table's index (keeping mappings and settings), `DROP TABLE` deletes the index, and
/// `RENAME TABLE a TO b` moves the documents into the index of `b` (created like the index of
/// `a`, copied with `_reindex`) and deletes the index of `a`. A `TRUNCATE` or `DROP` is refused
/// when the index pattern has no `{table}` (the index may hold other tables) or is
/// time-based. `fail` stops the unit at the change; `ignore` logs it and goes on.
pub struct EsSink {
    client: EsClient,
    cfg: SinkConfig,
    pattern: IndexPattern,
    permits: Arc<Semaphore>,
    plans: Mutex<Vec<(Arc<Schema>, Arc<DocPlan>)>>,
    known: Mutex<HashSet<String>>,
    creating: tokio::sync::Mutex<()>,
    restores: Mutex<Vec<Restore>>,
    counters: Counters,
    /// Size of the last full request body, to size the next one.
    last_body: std::sync::atomic::AtomicUsize,
    /// (index, schema) pairs whose fields are in the index mapping: a new schema for a known
    /// index (a column added at the source, seen by a change stream) extends the mapping.
    mapped: Mutex<Vec<(String, Arc<Schema>)>>,
}

impl std::fmt::Debug for EsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSink")
            .field("client", &self.client)
            .field("index", &self.cfg.index)
            .finish()
    }
}

impl EsSink {
    /// A sink writing through `client`.
    pub fn new(client: EsClient, cfg: SinkConfig) -> Result<EsSink, EsError> {
        cfg.validate()?;
        let pattern = IndexPattern::parse(&cfg.index)?;
        Ok(EsSink {
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            client,
            pattern,
            cfg,
            plans: Mutex::new(Vec::new()),
            known: Mutex::new(HashSet::new()),
            creating: tokio::sync::Mutex::new(()),
            restores: Mutex::new(Vec::new()),
            counters: Counters::default(),
            last_body: std::sync::atomic::AtomicUsize::new(0),
            mapped: Mutex::new(Vec::new()),
        })
    }

    /// Schema changes (change streams): when records of `index` come with a schema not seen
    /// for it before, its columns are added to the index mapping (`PUT _mapping`; existing
    /// fields are left as they are, fields of dropped columns stay in the mapping and in
    /// documents not rewritten since). A field whose type changed cannot be remapped:
    /// logged, and documents that do not fit are rejected per item.
    async fn follow_schema(&self, index: &str, schema: &Arc<Schema>) -> Result<(), EsError> {
        {
            let mut m = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            if m.iter().any(|(i, s)| i == index && Arc::ptr_eq(s, schema)) {
                return Ok(());
            }
            let first = !m.iter().any(|(i, _)| i == index);
            if m.len() >= 256 {
                m.remove(0);
            }
            m.push((index.to_string(), schema.clone()));
            if first || !self.cfg.create_index {
                return Ok(());
            }
        }
        let mapping =
            crate::mapping::schema_to_mapping(schema, &self.cfg.mapping, self.client.info());
        let body = serde_json::json!({ "properties": mapping.get("properties").cloned().unwrap_or_default() });
        let path = format!("/{}/_mapping", crate::client::encode_path(index));
        match self
            .client
            .json(
                "extending the mapping",
                Method::Put,
                &path,
                &[],
                Some(&body),
                Some(index),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(%index, table = %schema.qualified_name(), "schema change: index mapping extended");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(%index, error = %e, "schema change: the mapping could not be extended (a field changed type?)");
                Ok(())
            }
        }
    }

    /// Connects and builds a sink.
    pub async fn connect(conn: &ConnectionConfig, cfg: SinkConfig) -> Result<EsSink, EsError> {
        cfg.validate()?;
        let client = EsClient::connect(conn).await?;
        EsSink::new(client, cfg)
    }

    /// The client.
    pub fn client(&self) -> &EsClient {
        &self.client
    }

    /// The counters so far.
    pub fn stats(&self) -> SinkStats {
        let c = &self.counters;
        SinkStats {
            requests: c.requests.load(Ordering::Relaxed),
            docs: c.docs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            retryable: c.retryable.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }

    /// The index a record goes to: the pattern applied to its routed target (or schema
    /// name), namespace and the prefix.
    pub fn index_for(&self, record: &Record) -> Result<String, EsError> {
        self.index_for_table(&record.schema, record.target.as_deref())
    }

    /// The index of a table: the pattern applied to `target` (a routed target) or else the
    /// schema's name, the schema's namespace and the prefix. Used for records and for table
    /// changes.
    pub fn index_for_table(
        &self,
        schema: &Schema,
        target: Option<&str>,
    ) -> Result<String, EsError> {
        self.pattern.render(
            target.unwrap_or(schema.name()),
            schema.namespace(),
            &self.cfg.prefix,
        )
    }

    /// Why a `TRUNCATE`/`DROP TABLE` (or a `RENAME` between two indices) cannot be applied
    /// under this sink's naming, if it cannot.
    fn table_change_refusal(&self, change: &TableChange, index: &str) -> Option<String> {
        let remedy = "set table_changes = \"ignore\" to leave the index as it is, or \"fail\" to stop at such changes";
        if self.pattern.is_time_based() {
            return Some(format!(
                "{change}: index pattern {:?} is time-based, so the table's documents are spread over several indices and {index} is only the current one; {remedy}",
                self.cfg.index
            ));
        }
        if !self.pattern.has_table() {
            return Some(format!(
                "{change}: index {index} is not per table (index pattern {:?} has no {{table}}), so it may hold the documents of other tables too; {remedy}",
                self.cfg.index
            ));
        }
        None
    }

    /// Drops what the sink remembers about `index` (it was deleted): it is created again,
    /// from the schema of the next records, when they come.
    fn forget_index(&self, index: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(index);
        self.mapped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| i != index);
        self.restores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.index != index);
    }

    /// `from` was renamed to `to` (with its mapping and settings): what the sink knows of
    /// `from` now holds for `to`.
    fn move_index(&self, from: &str, to: &str) {
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.remove(from);
            known.remove(to);
        }
        {
            let mut mapped = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            mapped.retain(|(i, _)| i != to);
            for (i, _) in mapped.iter_mut() {
                if i == from {
                    *i = to.to_string();
                }
            }
        }
        let mut restores = self.restores.lock().unwrap_or_else(|e| e.into_inner());
        if restores.iter().any(|r| r.index == to) {
            restores.retain(|r| r.index != from);
        } else {
            for r in restores.iter_mut() {
                if r.index == from {
                    r.index = to.to_string();
                }
            }
        }
    }

    /// Applies a table change under `table_changes = "apply"`.
    async fn apply_table_change(
        &self,
        change: &TableChange,
        index: &str,
        to: Option<&str>,
    ) -> Result<(), SinkError> {
        let context = change.to_string();
        if to == Some(index) {
            tracing::info!(change = %change, index, "table change: both names map to the same index, nothing to do");
            return Ok(());
        }
        if let Some(why) = self.table_change_refusal(change, index) {
            return Err(SinkError::Fatal(why));
        }
        match (&change.kind, to) {
            (TableChangeKind::Rename { .. }, Some(to)) => {
                let r = rename_index(
                    &self.client,
                    index,
                    to,
                    self.cfg.version.is_some(),
                    &context,
                )
                .await;
                // Whatever happened, the sink's view of both indices may be stale.
                self.move_index(index, to);
                match r? {
                    Renamed::Moved { documents } => {
                        tracing::info!(change = %change, from = index, to, documents, "table change: documents moved to the new index, old index deleted")
                    }
                    Renamed::AlreadyDone => {
                        tracing::info!(change = %change, from = index, to, "table change: already applied")
                    }
                    Renamed::NothingToDo => {
                        tracing::info!(change = %change, from = index, to, "table change: neither index exists, nothing to do")
                    }
                }
            }
            (TableChangeKind::Truncate, _) => {
                // The index keeps its mapping and settings: what the sink knows stays true.
                match truncate_index(&self.client, index, &context).await? {
                    Some(deleted) => {
                        tracing::info!(change = %change, index, deleted, "table change: documents deleted")
                    }
                    None => {
                        tracing::info!(change = %change, index, "table change: the index does not exist, nothing to do")
                    }
                }
            }
            (TableChangeKind::Drop, _) | (TableChangeKind::Rename { .. }, None) => {
                let r = drop_index(&self.client, index, &context).await;
                self.forget_index(index);
                if r? {
                    tracing::info!(change = %change, index, "table change: index deleted");
                } else {
                    tracing::info!(change = %change, index, "table change: the index does not exist, nothing to do");
                }
            }
        }
        Ok(())
    }

    fn plan(&self, schema: &Arc<Schema>) -> Arc<DocPlan> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = plans.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return p.clone();
        }
        let p = Arc::new(DocPlan::new(schema, &self.cfg.mapping));
        if plans.len() >= 64 {
            plans.remove(0);
        }
        plans.push((schema.clone(), p.clone()));
        p
    }

    /// Makes sure `index` exists (creating it from `schema` when configured).
    async fn ensure(&self, index: &str, schema: Option<&Schema>) -> Result<(), EsError> {
        if self.is_known(index) {
            return Ok(());
        }
        let _guard = self.creating.lock().await;
        if self.is_known(index) {
            return Ok(());
        }
        if self.cfg.create_index {
            ensure_index(
                &self.client,
                index,
                schema,
                &self.cfg.mapping,
                &self.cfg.settings,
            )
            .await?;
        }
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index.to_string());
        Ok(())
    }

    fn is_known(&self, index: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(index)
    }

    /// The capacity to reserve for a request body: the size of the last full request, so
    /// bodies are neither regrown nor hugely over-allocated.
    fn body_capacity(&self) -> usize {
        let last = self.last_body.load(Ordering::Relaxed);
        let guess = if last == 0 { 1 << 20 } else { last + last / 8 };
        guess.min(self.cfg.max_bytes + 64 * 1024)
    }

    fn version_of(&self, record: &Record) -> Result<Option<u64>, String> {
        let Some(src) = &self.cfg.version else {
            return Ok(None);
        };
        match src {
            VersionSource::Position => record
                .position
                .as_ref()
                .and_then(|p| p.ordinal)
                .map(Some)
                .ok_or_else(|| "external versioning by position: the record has no position ordinal".into()),
            VersionSource::Field(f) => match record.get(f) {
                Some(Value::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
                Some(Value::UInt(u)) => Ok(Some(*u)),
                Some(Value::Timestamp(t)) if t.as_unix_micros() >= 0 => {
                    Ok(Some(t.as_unix_micros() as u64))
                }
                Some(Value::DateTime(d)) if d.as_unix_micros() >= 0 => {
                    Ok(Some(d.as_unix_micros() as u64))
                }
                Some(other) => Err(format!(
                    "external version field {f:?} holds {} {other}, not a non-negative integer or date",
                    other.type_name()
                )),
                None => Err(format!("external version field {f:?} is not in the record")),
            },
        }
    }

    /// Serializes the batch into request bodies; records that cannot be sent get their
    /// outcome in `outcomes` right away.
    fn build(
        &self,
        records: &[Record],
        indices: &[Arc<str>],
        outcomes: &mut [Outcome],
    ) -> Vec<Chunk> {
        let cfg = &self.cfg;
        let mut chunks = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(self.body_capacity());
        let mut entries: Vec<Entry> = Vec::new();
        let mut last_plan: Option<(Arc<Schema>, Arc<DocPlan>)> = None;
        let mut id = String::new();
        for (i, r) in records.iter().enumerate() {
            let index = &indices[i];
            let op = match (r.op, cfg.action) {
                (Op::Delete, _) => ItemOp::Delete,
                (_, WriteAction::Index) => ItemOp::Index,
                (_, WriteAction::Create) => ItemOp::Create,
                (_, WriteAction::Update) => ItemOp::Update,
                (_, WriteAction::Upsert) => ItemOp::Upsert,
            };
            let has_key = r.has_key();
            id.clear();
            if has_key {
                id.push_str(&r.key_string(&cfg.id_separator));
            } else if op != ItemOp::Index && op != ItemOp::Create {
                outcomes[i] = Outcome::Rejected(format!(
                    "index {index}: a {} needs a document id, and the record has no primary key",
                    op.name()
                ));
                continue;
            }
            let version = match self.version_of(r) {
                Ok(v) => v,
                Err(why) => {
                    outcomes[i] = Outcome::Rejected(format!("index {index}, document {id}: {why}"));
                    continue;
                }
            };
            let plan = match &last_plan {
                Some((s, p)) if Arc::ptr_eq(s, &r.schema) => p.clone(),
                _ => {
                    let p = self.plan(&r.schema);
                    last_plan = Some((r.schema.clone(), p.clone()));
                    p
                }
            };
            let start = buf.len();
            write_action(&mut buf, op, index, has_key.then_some(id.as_str()), version);
            if op != ItemOp::Delete {
                let doc_start = buf.len();
                if matches!(op, ItemOp::Update | ItemOp::Upsert) {
                    buf.extend_from_slice(b"{\"doc\":");
                }
                plan.write_doc(&mut buf, &r.schema, &r.values, cfg.write_nulls);
                if op == ItemOp::Upsert {
                    buf.extend_from_slice(b",\"doc_as_upsert\":true");
                }
                if matches!(op, ItemOp::Update | ItemOp::Upsert) {
                    buf.push(b'}');
                }
                let size = buf.len() - doc_start;
                if size > cfg.max_document_bytes {
                    buf.truncate(start);
                    outcomes[i] = Outcome::Rejected(format!(
                        "index {index}, document {id}: the document is {size} bytes, above max_document_bytes ({})",
                        cfg.max_document_bytes
                    ));
                    continue;
                }
                buf.push(b'\n');
            }
            entries.push(Entry {
                record: i,
                start,
                end: buf.len(),
                op,
            });
            // Close the request when it is full; a lone oversized document goes alone.
            if entries.len() >= cfg.max_docs || buf.len() >= cfg.max_bytes {
                let over = buf.len() > cfg.max_bytes && entries.len() > 1;
                if over {
                    // The last document made it too big: it starts the next request.
                    let last = entries.pop().expect("not empty");
                    let tail = buf.split_off(last.start);
                    chunks.push(Chunk {
                        body: Bytes::from(std::mem::take(&mut buf)),
                        entries: std::mem::take(&mut entries),
                    });
                    buf = Vec::with_capacity(self.body_capacity());
                    buf.extend_from_slice(&tail);
                    entries.push(Entry {
                        start: 0,
                        end: tail.len(),
                        ..last
                    });
                    if entries.len() >= cfg.max_docs || buf.len() >= cfg.max_bytes {
                        chunks.push(Chunk {
                            body: Bytes::from(std::mem::take(&mut buf)),
                            entries: std::mem::take(&mut entries),
                        });
                    }
                } else {
                    self.last_body.store(buf.len(), Ordering::Relaxed);
                    chunks.push(Chunk {
                        body: Bytes::from(std::mem::take(&mut buf)),
                        entries: std::mem::take(&mut entries),
                    });
                    buf = Vec::with_capacity(self.body_capacity());
                }
            }
        }
        if !entries.is_empty() {
            chunks.push(Chunk {
                body: Bytes::from(buf),
                entries,
            });
        }
        chunks
    }

    /// Sends one request; returns the outcome of each of its records. `Err` only for
    /// failures that no retry can fix (authentication, a refused request).
    async fn send(
        &self,
        chunk: Chunk,
        records: &[Record],
        indices: &[Arc<str>],
    ) -> Result<Vec<(usize, Outcome)>, SinkError> {
        let mut pending = vec![chunk];
        let mut out = Vec::new();
        while let Some(chunk) = pending.pop() {
            let n = chunk.entries.len();
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| SinkError::Fatal("sink closed".into()))?;
            let c = &self.counters;
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.docs.fetch_add(n as u64, Ordering::Relaxed);
            c.bytes
                .fetch_add(chunk.body.len() as u64, Ordering::Relaxed);
            // Only what the outcomes need comes back: smaller answers, cheaper parsing.
            let filter = ("filter_path", "errors,items.*.status,items.*.error");
            let with_refresh;
            let query: &[(&str, &str)] = match self.cfg.refresh.as_param() {
                Some(r) => {
                    with_refresh = [("refresh", r), filter];
                    &with_refresh
                }
                None => std::slice::from_ref(&filter),
            };
            let result = self
                .client
                .request_with_type(
                    Method::Post,
                    "/_bulk",
                    query,
                    Some(chunk.body.clone()),
                    "application/x-ndjson",
                )
                .await;
            drop(_permit);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let why = e.to_string();
                    out.extend(
                        chunk
                            .entries
                            .iter()
                            .map(|e| (e.record, Outcome::Retryable(why.clone()))),
                    );
                    continue;
                }
            };
            match resp.status {
                200 => match parse_items(&resp.body) {
                    Ok(items) if items.len() == n => {
                        let external = self.cfg.version.is_some();
                        for (e, item) in chunk.entries.iter().zip(&items) {
                            let o = if (200..300).contains(&item.status) {
                                Outcome::Written
                            } else {
                                let r = &records[e.record];
                                let id = r.key_string(&self.cfg.id_separator);
                                classify(item, e.op, external, &indices[e.record], &id)
                            };
                            out.push((e.record, o));
                        }
                    }
                    Ok(items) => {
                        let why =
                            format!("bulk answer has {} items for {n} documents", items.len());
                        out.extend(
                            chunk
                                .entries
                                .iter()
                                .map(|e| (e.record, Outcome::Retryable(why.clone()))),
                        );
                    }
                    Err(why) => {
                        out.extend(
                            chunk
                                .entries
                                .iter()
                                .map(|e| (e.record, Outcome::Retryable(why.clone()))),
                        );
                    }
                },
                413 if n > 1 => {
                    // Too large for the cluster's http.max_content_length: halve it.
                    let (a, b) = chunk.entries.split_at(n / 2);
                    for part in [a, b] {
                        let base = part[0].start;
                        let end = part[part.len() - 1].end;
                        pending.push(Chunk {
                            body: chunk.body.slice(base..end),
                            entries: part
                                .iter()
                                .map(|e| Entry {
                                    start: e.start - base,
                                    end: e.end - base,
                                    ..*e
                                })
                                .collect(),
                        });
                    }
                }
                413 => {
                    let e = chunk.entries[0];
                    let id = records[e.record].key_string(&self.cfg.id_separator);
                    out.push((
                        e.record,
                        Outcome::Rejected(format!(
                            "index {}, document {id}: too large for a request ({} bytes; see the cluster's http.max_content_length)",
                            indices[e.record],
                            e.end - e.start
                        )),
                    ));
                }
                s if is_retryable_status(s) => {
                    let why = format!(
                        "bulk request: HTTP {s}: {}",
                        crate::errors::error_reason(&resp.body)
                    );
                    out.extend(
                        chunk
                            .entries
                            .iter()
                            .map(|e| (e.record, Outcome::Retryable(why.clone()))),
                    );
                }
                _ => {
                    let index = chunk
                        .entries
                        .first()
                        .map(|e| indices[e.record].to_string())
                        .unwrap_or_default();
                    let err = self.client.status_error(
                        &resp,
                        &format!("bulk request to index {index}"),
                        None,
                    );
                    return Err(SinkError::Fatal(err.to_string()));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Sink for EsSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let Some(schema) = &ctx.schema else {
            return Ok(());
        };
        let index = self
            .index_for_table(schema, None)
            .map_err(|e| SinkError::Fatal(e.to_string()))?;
        self.ensure(&index, Some(schema)).await?;
        if self.cfg.bulk_load {
            let r = start_bulk_load(&self.client, &index).await?;
            let mut rs = self.restores.lock().unwrap_or_else(|e| e.into_inner());
            if !rs.iter().any(|x| x.index == r.index) {
                rs.push(r);
            }
        }
        Ok(())
    }

    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let records = &batch.records;
        let mut outcomes = vec![Outcome::Written; records.len()];
        // Index names, rendered once per (schema, target) run of records.
        let mut indices: Vec<Arc<str>> = Vec::with_capacity(records.len());
        let mut first_schema: HashMap<Arc<str>, usize> = HashMap::new();
        let mut last: Option<(usize, Option<Arc<str>>, Arc<str>)> = None;
        for (i, r) in records.iter().enumerate() {
            let name = match &last {
                Some((s, t, n)) if *s == Arc::as_ptr(&r.schema) as usize && *t == r.target => {
                    n.clone()
                }
                _ => {
                    let n: Arc<str> = self
                        .index_for(r)
                        .map_err(|e| SinkError::Fatal(e.to_string()))?
                        .into();
                    last = Some((Arc::as_ptr(&r.schema) as usize, r.target.clone(), n.clone()));
                    n
                }
            };
            first_schema.entry(name.clone()).or_insert(i);
            indices.push(name);
        }
        for (name, &i) in &first_schema {
            if !self.is_known(name) {
                self.ensure(name, Some(&records[i].schema)).await?;
            }
        }
        // Change streams: a schema not seen before for an index extends its mapping.
        let mut pairs: Vec<(&Arc<str>, &Arc<Schema>)> = Vec::new();
        for (r, name) in records.iter().zip(&indices) {
            if !pairs
                .iter()
                .any(|(n, s)| *n == name && Arc::ptr_eq(s, &r.schema))
            {
                pairs.push((name, &r.schema));
            }
        }
        for (name, schema) in pairs {
            self.follow_schema(name, schema)
                .await
                .map_err(|e| SinkError::Fatal(e.to_string()))?;
        }
        let chunks = self.build(records, &indices, &mut outcomes);
        let mut results = stream::iter(chunks)
            .map(|c| self.send(c, records, &indices))
            .buffer_unordered(self.cfg.max_in_flight);
        while let Some(r) = results.next().await {
            for (i, o) in r? {
                outcomes[i] = o;
            }
        }
        let c = &self.counters;
        for o in &outcomes {
            match o {
                Outcome::Written => {}
                Outcome::Retryable(_) => {
                    c.retryable.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Rejected(_) => {
                    c.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(outcomes)
    }

    /// Applies a `TRUNCATE`, `DROP TABLE` or `RENAME TABLE` to the table's index under
    /// [`SinkConfig::table_changes`] (see [`EsSink`]). Idempotent: a truncate of an empty or
    /// missing index, a drop of a missing index and a rename already done succeed.
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let fatal = |e: EsError| SinkError::Fatal(format!("{change}: {e}"));
        let index = self
            .index_for_table(&change.schema, change.target.as_deref())
            .map_err(fatal)?;
        let to = match &change.kind {
            TableChangeKind::Rename { to, to_target } => Some(
                self.index_for_table(to, to_target.as_deref())
                    .map_err(fatal)?,
            ),
            _ => None,
        };
        let indices = match &to {
            Some(to) => format!("index {index} (new name's index {to})"),
            None => format!("index {index}"),
        };
        match self.cfg.table_changes {
            TableChanges::Apply => self.apply_table_change(change, &index, to.as_deref()).await,
            TableChanges::Fail => Err(SinkError::Fatal(format!(
                "{change}: {indices} left as it is because the sink has table_changes = \"fail\"; deal with the index, then resume (or set table_changes = \"apply\" or \"ignore\")"
            ))),
            TableChanges::Ignore => {
                tracing::warn!(change = %change, "{indices} left as it is (table_changes = \"ignore\"): its documents may no longer match the source");
                Ok(())
            }
        }
    }

    async fn finish(&self) -> Result<(), SinkError> {
        let restores =
            std::mem::take(&mut *self.restores.lock().unwrap_or_else(|e| e.into_inner()));
        for r in &restores {
            finish_bulk_load(&self.client, r).await?;
        }
        Ok(())
    }
}

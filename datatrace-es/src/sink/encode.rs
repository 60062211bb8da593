//! Encoding a batch: each record becomes an action line and a document, written straight
//! into request bodies that are closed at `max_docs` documents or `max_bytes` bytes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use datatrace_core::{Op, Outcome, Record, Schema, Value};

use super::EsSink;
use crate::bulk::{write_action, DocPlan, ItemOp};
use crate::config::{VersionSource, WriteAction};

/// The longest document id Elasticsearch and OpenSearch take, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// One document in a request body.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Its record in the batch.
    pub(super) record: usize,
    /// Its lines in the body.
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) op: ItemOp,
    /// The delete of the old key of a key-changing update (its id is the before-image's).
    pub(super) moved: bool,
}

/// A bulk request body and the documents in it.
pub(super) struct Chunk {
    pub(super) body: Bytes,
    pub(super) entries: Vec<Entry>,
}

/// The bulk action of a record under the sink's write action.
fn item_op(op: Op, action: WriteAction) -> ItemOp {
    match (op, action) {
        (Op::Delete, _) => ItemOp::Delete,
        (_, WriteAction::Index) => ItemOp::Index,
        (_, WriteAction::Create) => ItemOp::Create,
        (_, WriteAction::Update) => ItemOp::Update,
        (_, WriteAction::Upsert) => ItemOp::Upsert,
    }
}

/// Request bodies being filled: documents are appended, and a request is closed when full.
struct Cutter<'a> {
    sink: &'a EsSink,
    chunks: Vec<Chunk>,
    buf: Vec<u8>,
    entries: Vec<Entry>,
}

impl<'a> Cutter<'a> {
    fn new(sink: &'a EsSink) -> Self {
        Cutter {
            sink,
            chunks: Vec::new(),
            buf: Vec::with_capacity(sink.body_capacity()),
            entries: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        let cfg = &self.sink.cfg;
        self.entries.len() >= cfg.max_docs || self.buf.len() >= cfg.max_bytes
    }

    fn close(&mut self) {
        self.chunks.push(Chunk {
            body: Bytes::from(std::mem::take(&mut self.buf)),
            entries: std::mem::take(&mut self.entries),
        });
    }

    /// Adds the document just written at the end of the body; closes the request when it
    /// is full. A lone oversized document goes alone.
    fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
        if !self.full() {
            return;
        }
        let over = self.buf.len() > self.sink.cfg.max_bytes && self.entries.len() > 1;
        if over {
            // The last document made it too big: it starts the next request.
            let last = self.entries.pop().expect("not empty");
            let tail = self.buf.split_off(last.start);
            self.close();
            self.buf = Vec::with_capacity(self.sink.body_capacity());
            self.buf.extend_from_slice(&tail);
            self.entries.push(Entry {
                start: 0,
                end: tail.len(),
                ..last
            });
            if self.full() {
                self.close();
            }
        } else {
            self.sink.last_body.store(self.buf.len(), Ordering::Relaxed);
            self.close();
            self.buf = Vec::with_capacity(self.sink.body_capacity());
        }
    }

    fn finish(mut self) -> Vec<Chunk> {
        if !self.entries.is_empty() {
            self.close();
        }
        self.chunks
    }
}

/// The document plan of the last schema seen, so runs of records of one schema look the
/// plan up once.
#[derive(Default)]
struct LastPlan(Option<(Arc<Schema>, Arc<DocPlan>)>);

impl LastPlan {
    fn get(&mut self, sink: &EsSink, schema: &Arc<Schema>) -> Arc<DocPlan> {
        match &self.0 {
            Some((s, p)) if Arc::ptr_eq(s, schema) => p.clone(),
            _ => {
                let p = sink.plan(schema);
                self.0 = Some((schema.clone(), p.clone()));
                p
            }
        }
    }
}

impl EsSink {
    /// The document plan of a schema (cached for the last 64 schemas).
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

    /// The capacity to reserve for a request body: the size of the last full request, so
    /// bodies are neither regrown nor hugely over-allocated.
    fn body_capacity(&self) -> usize {
        let last = self.last_body.load(Ordering::Relaxed);
        let guess = if last == 0 { 1 << 20 } else { last + last / 8 };
        guess.min(self.cfg.max_bytes.saturating_add(64 * 1024))
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

    /// The document id of an entry's record, for messages (the old key's for the delete of
    /// a key-changing update).
    pub(super) fn entry_id(&self, r: &Record, moved: bool) -> String {
        let sep = &self.cfg.id_separator;
        let id = match moved {
            true => r.before_doc_id(sep).unwrap_or_else(|| r.doc_id(sep)),
            false => r.doc_id(sep),
        };
        id.unwrap_or_else(|_| r.key_string(sep))
    }

    /// The id of the document a record names, or why it has none.
    fn document_id(&self, r: &Record, op: ItemOp, index: &str) -> Result<Option<String>, String> {
        let table = r.schema.qualified_name();
        if !r.has_key() {
            let needs = if op != ItemOp::Index && op != ItemOp::Create {
                Some(format!("a {} of a row", op.name()))
            } else if self.cfg.version.is_some() {
                Some("a write under external versioning (version)".to_string())
            } else {
                None
            };
            return match needs {
                // A copy of a keyless table gets ids chosen by the cluster.
                None => Ok(None),
                Some(what) => Err(format!(
                    "table {table}, index {index}: {what} needs a document id, and the table has no primary key: name the columns that identify a row with the source's `key` setting (key = {{ \"{}\" = [\"col\", ...] }})",
                    r.schema.name()
                )),
            };
        }
        let id = r.doc_id(&self.cfg.id_separator).map_err(|e| {
            let detail = match e {
                datatrace_core::doc_id::DocIdError::NullPart { part } => {
                    let col = r
                        .schema
                        .primary_key()
                        .get(part)
                        .map(|&i| r.schema.columns()[i].name.as_str())
                        .unwrap_or("?");
                    format!("key column {col} is NULL, so the row has no document id (key columns must be NOT NULL)")
                }
                other => other.to_string(),
            };
            format!("table {table}, index {index}, key {}: {detail}", r.key_string(","))
        })?;
        if id.len() > MAX_ID_BYTES {
            return Err(format!(
                "table {table}, index {index}, key {}: its document id is {} bytes, above the {MAX_ID_BYTES} an index takes",
                r.key_string(","),
                id.len()
            ));
        }
        Ok(Some(id))
    }

    /// Writes the action line and document of `r` at the end of `buf`; `Err` with the
    /// reason the record is rejected (the caller cuts what was written). `id` is scratch
    /// space for the document id.
    fn encode(
        &self,
        buf: &mut Vec<u8>,
        plans: &mut LastPlan,
        id: &mut String,
        r: &Record,
        index: &str,
    ) -> Result<ItemOp, String> {
        let cfg = &self.cfg;
        let op = item_op(r.op, cfg.action);
        id.clear();
        let doc_id = self.document_id(r, op, index)?;
        if let Some(d) = &doc_id {
            id.push_str(d);
        }
        let version = self
            .version_of(r)
            .map_err(|why| format!("index {index}, document {id}: {why}"))?;
        let plan = plans.get(self, &r.schema);
        let routing = plan.routing(&r.values);
        write_action(
            buf,
            op,
            index,
            doc_id.as_deref(),
            routing.as_deref(),
            version,
        );
        if op == ItemOp::Delete {
            return Ok(op);
        }
        let doc_start = buf.len();
        let update = matches!(op, ItemOp::Update | ItemOp::Upsert);
        if update {
            buf.extend_from_slice(b"{\"doc\":");
        }
        plan.write_doc(buf, &r.schema, &r.values, cfg.write_nulls)
            .map_err(|why| format!("index {index}, document {id}: {why}"))?;
        if op == ItemOp::Upsert {
            buf.extend_from_slice(b",\"doc_as_upsert\":true");
        }
        if update {
            buf.push(b'}');
        }
        let size = buf.len() - doc_start;
        if size > cfg.max_document_bytes {
            return Err(format!(
                "index {index}, document {id}: the document is {size} bytes, above max_document_bytes ({})",
                cfg.max_document_bytes
            ));
        }
        buf.push(b'\n');
        Ok(op)
    }

    /// Serializes the batch into request bodies; records that cannot be sent get their
    /// outcome in `outcomes` right away.
    pub(super) fn build(
        &self,
        records: &[Record],
        indices: &[Arc<str>],
        outcomes: &mut [Outcome],
    ) -> Vec<Chunk> {
        let mut cut = Cutter::new(self);
        let mut plans = LastPlan::default();
        let mut id = String::new();
        for (i, r) in records.iter().enumerate() {
            // A key-changing update: the old key's document is deleted first (same version,
            // so a replay of an older change of the old key cannot bring it back).
            let mut start = cut.buf.len();
            if r.changes_key() {
                match self.encode_move(&mut cut.buf, &mut plans, r, &indices[i]) {
                    Ok(()) => {
                        cut.push(Entry {
                            record: i,
                            start,
                            end: cut.buf.len(),
                            op: ItemOp::Delete,
                            moved: true,
                        });
                        start = cut.buf.len();
                    }
                    Err(why) => {
                        cut.buf.truncate(start);
                        outcomes[i] = Outcome::Rejected(why.into());
                        continue;
                    }
                }
            }
            match self.encode(&mut cut.buf, &mut plans, &mut id, r, &indices[i]) {
                Ok(op) => cut.push(Entry {
                    record: i,
                    start,
                    end: cut.buf.len(),
                    op,
                    moved: false,
                }),
                Err(why) => {
                    cut.buf.truncate(start);
                    outcomes[i] = Outcome::Rejected(why.into());
                }
            }
        }
        cut.finish()
    }

    /// The delete of the old key's document of a key-changing update.
    fn encode_move(
        &self,
        buf: &mut Vec<u8>,
        plans: &mut LastPlan,
        r: &Record,
        index: &str,
    ) -> Result<(), String> {
        let table = r.schema.qualified_name();
        let old = r
            .before_doc_id(&self.cfg.id_separator)
            .unwrap_or(Err(datatrace_core::doc_id::DocIdError::NoKey))
            .map_err(|e| {
                format!("table {table}, index {index}: the key before the update has no document id: {e}")
            })?;
        let version = self
            .version_of(r)
            .map_err(|why| format!("index {index}, document {old}: {why}"))?;
        // The old document is where the before-image's routing put it.
        let routing = r
            .before
            .as_deref()
            .and_then(|b| plans.get(self, &r.schema).routing(b));
        write_action(
            buf,
            ItemOp::Delete,
            index,
            Some(&old),
            routing.as_deref(),
            version,
        );
        Ok(())
    }
}

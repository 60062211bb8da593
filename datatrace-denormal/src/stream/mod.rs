//! [`DocumentStream`]: the binlog change stream of every table of a set of definitions,
//! turned into rebuilt documents.
//!
//! Each row change becomes [triggers](derive) (the documents it may change: by key, or
//! found by an upward [lookup]); triggers gather in a short [window] (deduplicated); then
//! the window's documents are rebuilt from the source in batches (one statement per
//! relation per batch, [`crate::build`]), several batches at a time, each in a consistent
//! snapshot whose binlog position is the documents' external version, and the change
//! stream's checkpoint is passed on after them. A row shared by many documents (a product
//! in 10,000 orders) is looked up a page of keys at a time and rebuilt a batch at a time:
//! memory stays bounded by the batch and the page.
//!
//! # Why the index ends up equal to a fresh snapshot
//!
//! Notation: every change `c` belongs to a transaction whose end in the binlog has ordinal
//! `P(c)` (file number and offset; snapshots can only stand at transaction ends). For a
//! document `d` (a kind and a top key) and a database state `s` (the state at binlog
//! ordinal `s`), `F(d, s)` is what a build of `d` reads from `s` (a document, or none), and
//! `G(d, s)` the rows that build reads: the top row, every related row reachable from it
//! through the relations' link columns, and the join-table rows on those paths. `F(d, s)`
//! depends on nothing but `G(d, s)`.
//!
//! The stream keeps four rules.
//!
//! - **R1, snapshots with a position.** Every build (and lookup) reads inside one
//!   `START TRANSACTION WITH CONSISTENT SNAPSHOT` whose binlog position `S` MariaDB
//!   reports: the snapshot holds exactly the transactions that end at or before `S`. The
//!   documents it builds are written with external version `S`; Elasticsearch keeps a
//!   write only when its version is above the stored one (an equal version comes from the
//!   same snapshot, so the same content), and deletes carry versions too.
//! - **R2, never read before the changes are visible.** A window's builds and lookups use
//!   snapshots with `S >= N`, `N` the highest ordinal the window saw. A transaction reaches
//!   the binlog (and this stream) a moment before its rows are visible to other sessions;
//!   a snapshot taken in that moment reports an `S` before the transaction's end, is
//!   rolled back and taken again ([`crate::clock`]). Since `S` is a transaction end and `N`
//!   lies inside or at the end of a transaction, `S >= N` means the snapshot holds every
//!   transaction the window saw, in whole.
//! - **R3, triggers never miss.** Let `c` change row `x` (of node `n`'s table, or a join
//!   row of `n`), and let `d` be a document with `G(d, P(c)-) != G(d, P(c))` (`c` changed
//!   it). Then for any `L >= P(c)` such that no change in `(P(c), L]` alters `G(d, .)`, the
//!   lookup of `c`'s images evaluated at state `L` finds `d`:
//!   - if `x` is in `G(d, P(c))`, the path from `d`'s top down to `x` consists of rows of
//!     `G(d, P(c)) = G(d, L)`; the lookup starts from `x`'s after-image link values and
//!     follows the same link columns upward at state `L`, so it walks that path back to
//!     `d`'s top;
//!   - if `x` was in `G(d, P(c)-)` only (`c` deleted it, moved its foreign key, changed its
//!     key or a link column), the link between `x` and its parent row on `d`'s path is held
//!     by `x`'s before-image (`one_to_many`: `x`'s foreign key), by the parent row
//!     (`many_to_one`: the parent's foreign key still holds `x`'s old key) or by a join row
//!     (`many_to_many`): `c` changed none of those other rows, so the path from `d`'s top to
//!     `x`'s parent is unchanged, in `G(d, L)`, and the lookup from `x`'s before-image
//!     walks it;
//!   - `x` the top itself: `d` is triggered by key, from both images (a key change is the
//!     old document's delete and the new one's build).
//!
//!   Over-approximation is harmless (a document rebuilt without a change is rebuilt the
//!   same); an update that changes no column a node reads is skipped for that node.
//! - **R4, the checkpoint waits.** The stream's position moves past a change only after
//!   every document its triggers found has been written (the runner commits a position once
//!   everything emitted before it is acknowledged). A crash replays the changes after the
//!   last checkpoint, and their builds take newer snapshots.
//!
//! **Claim.** Once the stream has handled every change up to `E` and no change comes after
//! `E`, each document in the index is `F(d, E)` (and documents with `F(d, E)` = none are
//! absent): the index equals a fresh snapshot at `E`.
//!
//! **Proof.** Take `d`. If no change after the initial snapshot altered `G(d, .)`, the
//! snapshot built `F(d, S0) = F(d, E)` (a later build of `d`, from an over-approximating
//! trigger, builds the same). Else let `c` be the last change at or before `E` that altered
//! `G(d, .)`; `G(d, .)` is constant on `[P(c), E]`. The stream handled `c`: by R2 its
//! lookups ran at some `L` with `P(c) <= L <= E` (no snapshot can be past `E`), so by R3 `d`
//! was found and rebuilt from a snapshot `S` with `P(c) <= S <= E`, writing `F(d, S) =
//! F(d, E)` with version `S` (R1). A stored version above `S` comes from a snapshot in
//! `(S, E]`, whose content is `F(d, E)` too; a stored version below `S` is overwritten.
//! So the stored document is `F(d, E)`. By R4 this holds after crashes as well. The
//! interleavings that break weaker designs are covered by this argument: a change arriving
//! while its document's rebuild is in flight triggers another rebuild from a later
//! snapshot, whose higher version wins whichever write lands last; an FK move triggers the
//! old parent through the before-image and the new one through the after-image; a deleted
//! shared row is found from its before-image through the rows that still point at it.
//!
//! **Routing.** A routed document lives on the shard of its routing value, and versions are
//! kept per shard copy. A change of the routing column reaches the stream with both images
//! (and a deleted row with its last routing); the build writes the document at its current
//! routing, then deletes it (with version `S`) at every other routing its triggers' images
//! showed. In that order: an old routing that hashes to the document's own shard meets a
//! document of the same version and the delete is refused as a version conflict, instead
//! of deleting the fresh document. Writes of one document go through one writer in order
//! (`partition_by_key`), and by R4 the images are replayed after a crash.
//!
//! **Limits.** Foreign keys with `ON DELETE/UPDATE CASCADE` or `SET NULL` change rows
//! without row events in the binlog, so no stream can follow them: the planner refuses
//! such constraints inside a streamed definition. `TRUNCATE`, `DROP` and `RENAME` of a
//! definition's table stop the stream with an error (copy again with `--restart`).
//! Versions are binlog ordinals: after `RESET MASTER` (binlog numbering restarts) copy the
//! documents afresh.
//!
//! # How the others do it
//!
//! pgsync finds the documents a child change affects by searching the index for the
//! child's key (a near-real-time search, blind to documents written within the last
//! refresh interval) and rebuilds them without versions, so a slower rebuild can overwrite
//! a newer one. canal's Elasticsearch adapter runs the mapping's SQL per changed row and
//! patches the changed fields into the documents the current state points at, so an FK
//! move leaves the old parent stale. This stream looks documents up in the source at a
//! snapshot that holds the change (R2, R3), in batches, and orders every write by the
//! snapshot it was built from (R1).

pub mod derive;
pub mod lookup;
pub mod window;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{Emitted, Emitter, Op, Part, Position, Record, Source, TableChange, Value};
use futures::stream::{FuturesOrdered, StreamExt};

use crate::build::{self, delete_record, Routing};
use crate::clock::Clock;
use crate::definition::Definition;
use crate::error::{DenormalError, Result};
use crate::keys::KeyBuf;
use crate::query::MAX_IN;
use derive::{Deriver, Trigger};
use lookup::Start;
use window::{Pending, Window};

/// Called after each batch's snapshot was read and before its documents are emitted, with
/// the batch's version: tests use it to change the source while a rebuild is in flight.
pub type RebuildHook =
    Arc<dyn Fn(Option<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Counters of a stream, readable while it runs.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Row changes received.
    pub changes: AtomicU64,
    /// Windows flushed.
    pub windows: AtomicU64,
    /// Lookup statements run.
    pub lookups: AtomicU64,
    /// Batches rebuilt.
    pub batches: AtomicU64,
    /// Documents written (rebuilt).
    pub documents: AtomicU64,
    /// Deletes written (documents gone, or left on an old routing).
    pub deletes: AtomicU64,
}

/// Retries of a rebuild or lookup that fails transiently (a lost connection, a deadlock): 5
/// attempts in all, 0.2 s to 1.6 s apart.
const REBUILD_RETRY: datatrace_core::RetryPolicy =
    datatrace_core::RetryPolicy::new(5, Duration::from_millis(200), Duration::from_millis(1600));

/// The change stream of documents (see the module docs).
pub struct DocumentStream {
    unit: String,
    deriver: Deriver,
    clocks: Vec<Clock>,
    inner: Arc<dyn Source>,
    stats: Arc<StreamStats>,
    hook: Option<RebuildHook>,
    window: Duration,
    max_pending: usize,
    lookup_page: usize,
    concurrency: usize,
}

impl DocumentStream {
    /// The stream of `defs` (each with the clock its reads go through) over `inner`, the
    /// binlog source of their tables (`datatrace_mysql::binlog::BinlogSource`, possibly in
    /// a `snapshot+cdc` handoff wrapper); `unit` names it in errors.
    pub fn new(
        unit: impl Into<String>,
        defs: Vec<(Arc<Definition>, Clock)>,
        inner: Arc<dyn Source>,
    ) -> DocumentStream {
        let window = defs
            .iter()
            .map(|(d, _)| d.spec.window_ms)
            .min()
            .unwrap_or(50);
        let batch = defs
            .iter()
            .map(|(d, _)| d.spec.batch_size)
            .max()
            .unwrap_or(500);
        let concurrency = defs
            .iter()
            .map(|(d, _)| d.spec.rebuild_concurrency)
            .max()
            .unwrap_or(2);
        let (defs, clocks): (Vec<_>, Vec<_>) = defs.into_iter().unzip();
        DocumentStream {
            unit: unit.into(),
            deriver: Deriver::new(defs),
            clocks,
            inner,
            stats: Arc::new(StreamStats::default()),
            hook: None,
            window: Duration::from_millis(window),
            max_pending: batch.saturating_mul(8),
            lookup_page: batch.saturating_mul(8),
            concurrency: concurrency.max(1),
        }
    }

    /// Sets the hook called between each batch's read and its emission (tests).
    pub fn with_rebuild_hook(mut self, hook: RebuildHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The stream's counters.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }

    fn def(&self, d: usize) -> &Definition {
        &self.deriver.definitions()[d]
    }

    async fn retry<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = REBUILD_RETRY.start();
        loop {
            let result = f().await;
            let delay = match &result {
                Err(e) if e.is_transient() => retry.failed(None),
                _ => None,
            };
            match (result, delay) {
                (Err(e), Some(delay)) => {
                    let attempt = retry.failures();
                    tracing::warn!(unit = %self.unit, attempt, error = %e, "rebuild failed, retrying");
                    tokio::time::sleep(delay).await;
                }
                (other, _) => return other,
            }
        }
    }

    /// Rebuilds one batch of documents of a kind; returns the records to emit.
    async fn rebuild(
        &self,
        d: usize,
        kind: usize,
        batch: Vec<Pending>,
        need: Option<u64>,
        ts_ms: Option<i64>,
    ) -> Result<Vec<Record>> {
        let def = self.def(d);
        let keys: Vec<Vec<Value>> = batch.iter().map(|p| p.key.clone()).collect();
        let (docs, version) = self
            .retry(|| async {
                let mut txn = self.clocks[d].begin(need).await?;
                let docs = build::by_keys(def, &mut txn, kind, &keys).await?;
                let v = txn.version();
                txn.finish().await?;
                Ok((docs, v))
            })
            .await?;
        if let Some(h) = &self.hook {
            h(version).await;
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let position = Position {
            state: serde_json::Value::Null,
            ordinal: version,
            ts_ms,
        };
        let hints: HashMap<KeyBuf, &Pending> =
            batch.iter().map(|p| (KeyBuf::of(&p.key), p)).collect();
        let routed = def.kinds[kind].routed;
        let mut out = Vec::with_capacity(docs.docs.len());
        let push = |mut r: Record, out: &mut Vec<Record>| {
            r.position = Some(position.clone());
            out.push(r);
        };
        for (key, mut rec) in docs.docs {
            rec.op = Op::Update;
            let current: Routing = match rec.values.get(1) {
                Some(Value::String(r)) if routed => Some(r.clone()),
                _ => None,
            };
            // The document first, then its copies on other routings: an old routing may
            // hash to the document's own shard, where the delete (same version) then
            // conflicts and leaves the document, instead of deleting it.
            push(rec, &mut out);
            self.stats.documents.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = hints.get(&KeyBuf::of(&key)) {
                for old in p.routings.iter().filter(|r| **r != current) {
                    push(delete_record(def, kind, &key, old.clone()), &mut out);
                    self.stats.deletes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for (key, known) in docs.absent {
            // Routed documents are deleted wherever the changes or the row say they lived;
            // the others where they always live.
            let mut routings: Vec<Routing> = Vec::new();
            if routed {
                if let Some(p) = hints.get(&KeyBuf::of(&key)) {
                    routings.extend(p.routings.iter().cloned());
                }
                if let Some(r) = known {
                    if !routings.contains(&r) {
                        routings.push(r);
                    }
                }
            } else {
                routings.push(None);
            }
            for r in routings {
                push(delete_record(def, kind, &key, r), &mut out);
                self.stats.deletes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(out)
    }

    /// One page of the top keys a lookup finds.
    async fn lookup_page(
        &self,
        start: &Start,
        values: &[Vec<Value>],
        last: Option<&[Value]>,
        need: Option<u64>,
    ) -> Result<Vec<Vec<Value>>> {
        let def = self.def(start.def);
        let (st, kinds) = lookup::page(def, start, values, last, self.lookup_page);
        let what = format!("looking up the {} documents a change reaches", def.name());
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        self.retry(|| async {
            let mut txn = self.clocks[start.def].begin(need).await?;
            let rows = txn.rows(&st, &kinds, &what).await?;
            txn.finish().await?;
            Ok(rows)
        })
        .await
    }

    /// Rebuilds everything a window found, then passes on its checkpoint.
    async fn flush(&self, w: Window, ts_ms: Option<i64>, out: &mut Emitter) -> Result<()> {
        self.stats.windows.fetch_add(1, Ordering::Relaxed);
        let need = Some(w.need).filter(|&n| n > 0);
        let mut inflight = FuturesOrdered::new();
        let mut direct: Vec<_> = w.direct.into_iter().collect();
        direct.sort_by_key(|(k, _)| *k);
        for ((d, kind), m) in direct {
            let batch = self.def(d).spec.batch_size;
            let pending: Vec<Pending> = m.into_values().collect();
            for chunk in pending.chunks(batch) {
                inflight.push_back(self.rebuild(d, kind, chunk.to_vec(), need, ts_ms));
                if inflight.len() >= self.concurrency {
                    if let Some(r) = inflight.next().await {
                        self.emit(r?, out).await?;
                    }
                }
            }
        }
        for (start, (_, values)) in w.lookups {
            let batch = self.def(start.def).spec.batch_size;
            for chunk in values.chunks(MAX_IN) {
                let mut last: Option<Vec<Value>> = None;
                loop {
                    let keys = self
                        .lookup_page(&start, chunk, last.as_deref(), need)
                        .await?;
                    for b in keys.chunks(batch) {
                        let pending = b
                            .iter()
                            .map(|k| Pending {
                                key: k.clone(),
                                routings: Default::default(),
                            })
                            .collect();
                        inflight
                            .push_back(self.rebuild(start.def, start.kind, pending, need, ts_ms));
                        if inflight.len() >= self.concurrency {
                            if let Some(r) = inflight.next().await {
                                self.emit(r?, out).await?;
                            }
                        }
                    }
                    if keys.len() < self.lookup_page {
                        break;
                    }
                    last = keys.last().cloned();
                }
            }
        }
        while let Some(r) = inflight.next().await {
            self.emit(r?, out).await?;
        }
        match w.checkpoint {
            Some(cp) => out.checkpoint(cp).await?,
            None => out.flush().await?,
        }
        Ok(())
    }

    async fn emit(&self, records: Vec<Record>, out: &mut Emitter) -> Result<()> {
        for r in records {
            out.emit(r).await?;
        }
        Ok(())
    }

    /// Counts a batch of row changes into the window, with the triggers they derive.
    fn absorb(
        &self,
        records: &[Record],
        w: &mut Window,
        ts: &mut Option<i64>,
        triggers: &mut Vec<Trigger>,
    ) {
        for r in records {
            self.stats.changes.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = &r.position {
                w.saw(p.ordinal);
                *ts = (*ts).max(p.ts_ms);
            }
            w.changes += 1;
            self.deriver.derive(r, triggers);
            for t in triggers.drain(..) {
                w.add(t);
            }
        }
    }

    /// The error for a truncate, drop or rename of a table the documents read: documents
    /// cannot follow it; `None` for other tables.
    fn refuse(&self, c: &TableChange) -> Option<DenormalError> {
        let s = &c.schema;
        if !self
            .deriver
            .watches(s.namespace().unwrap_or_default(), s.name())
        {
            return None;
        }
        let docs: Vec<&str> = self
            .deriver
            .definitions()
            .iter()
            .map(|d| d.name())
            .collect();
        Some(DenormalError::Definition {
            document: docs.join(", "),
            relation: None,
            message: format!("{c}: a table of the documents was truncated, dropped or renamed; documents cannot follow such a change: copy them again (run with --restart)"),
        })
    }

    async fn run(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> Result<(), datatrace_core::Error> {
        let core = |e: DenormalError| datatrace_core::Error::source(self.unit.clone(), e);
        let (mut em, mut rx) = Emitter::for_test(512, 4);
        let inner = self.inner.clone();
        let p = part.clone();
        let task = tokio::spawn(async move {
            let r = inner.read(&p, from, &mut em).await;
            let _ = em.flush().await;
            r
        });
        let _abort = AbortOnDrop(task.abort_handle());
        let mut w = Window::default();
        let mut ts: Option<i64> = None;
        let mut triggers = Vec::new();
        loop {
            let deadline = w.deadline(self.window);
            let item = tokio::select! {
                biased;
                _ = out.cancelled().cancelled() => return Err(datatrace_core::Error::Cancelled),
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d.into()).await,
                        None => std::future::pending().await,
                    }
                } => None,
                item = rx.recv() => Some(item),
            };
            match item {
                None => self.flush(w.take(), ts.take(), out).await.map_err(core)?,
                Some(None) => {
                    if !w.is_empty() || w.checkpoint.is_some() {
                        self.flush(w.take(), ts.take(), out).await.map_err(core)?;
                    }
                    return task.await.unwrap_or_else(|e| {
                        Err(core(DenormalError::Data {
                            document: String::new(),
                            context: "change stream".into(),
                            message: format!("the binlog reader stopped: {e}"),
                        }))
                    });
                }
                Some(Some(Emitted::Records(records))) => {
                    self.absorb(&records, &mut w, &mut ts, &mut triggers);
                    if w.size() >= self.max_pending {
                        self.flush(w.take(), ts.take(), out).await.map_err(core)?;
                    }
                }
                Some(Some(Emitted::Checkpoint(p))) => {
                    w.saw(p.ordinal);
                    if w.is_empty() {
                        out.checkpoint(p).await?;
                    } else {
                        w.checkpoint = Some(p);
                    }
                }
                Some(Some(Emitted::TableChange(c))) => {
                    if let Some(e) = self.refuse(&c) {
                        return Err(core(e));
                    }
                }
                Some(Some(_)) => {}
            }
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Source for DocumentStream {
    /// The binlog reader's: how long until the server may purge the binlog the stream
    /// still has to read.
    fn retention_secs(&self) -> Option<i64> {
        self.inner.retention_secs()
    }

    /// Passed on: the positions are the binlog reader's.
    async fn acknowledged(&self, part: &Part, position: &Position) {
        self.inner.acknowledged(part, position).await
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        match self.run(part, from, out).await {
            Err(_) if out.is_stopped() => Err(datatrace_core::Error::Cancelled),
            other => other,
        }
    }
}

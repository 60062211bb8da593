//! [`EsSink`]: writes batches with `_bulk` requests and reports an outcome per record.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datatrace_core::{Batch, Op, Outcome, PrepareContext, Schema, Sink, SinkError, TableChange};
use futures::stream::{self, StreamExt};

use crate::bulk::DocPlan;
use crate::client::EsClient;
use crate::config::{ConnectionConfig, SinkConfig};
use crate::errors::EsError;
use crate::indices::{finish_bulk_load, start_bulk_load, Restore};
use crate::naming::IndexPattern;

mod aimd;
mod encode;
mod gate;
mod send;
mod table_changes;
mod targets;

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
    /// Bulk requests allowed in flight now (the adaptive limit, or the fixed one).
    pub concurrency: usize,
    /// The highest in-flight limit so far.
    pub concurrency_highest: usize,
    /// The lowest in-flight limit so far.
    pub concurrency_lowest: usize,
    /// Times the in-flight limit was lowered (push-back or rising latency).
    pub concurrency_decreases: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    docs: AtomicU64,
    bytes: AtomicU64,
    retryable: AtomicU64,
    rejected: AtomicU64,
}

/// Bulk requests in flight at the start under adaptive concurrency (at most `max_in_flight`).
const INITIAL_IN_FLIGHT: usize = 2;

/// The Elasticsearch/OpenSearch bulk sink.
///
/// A batch is cut into `_bulk` requests of at most `max_docs` documents and `max_bytes`
/// bytes, sent with at most `max_in_flight` requests at a time over all writers: with
/// [`SinkConfig::adaptive_concurrency`] (the default) the limit starts at 2 and adapts to
/// the cluster (one more while latency stays near its minimum, halved on 429s, rejected
/// executions or rising latency; see `aimd.rs`), otherwise it is `max_in_flight`. Document
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
    gate: gate::Gate,
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
            gate: gate::Gate::new(if cfg.adaptive_concurrency {
                aimd::Aimd::adaptive(INITIAL_IN_FLIGHT, cfg.max_in_flight)
            } else {
                aimd::Aimd::fixed(cfg.max_in_flight)
            }),
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

    /// The sink's settings.
    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }

    /// The counters so far.
    pub fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let g = self.gate.stats();
        SinkStats {
            concurrency: g.limit,
            concurrency_highest: g.highest,
            concurrency_lowest: g.lowest,
            concurrency_decreases: g.decreases,
            requests: c.requests.load(Ordering::Relaxed),
            docs: c.docs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            retryable: c.retryable.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }

    /// Adds a batch's outcomes to the counters.
    fn tally(&self, outcomes: &[Outcome]) {
        let c = &self.counters;
        for o in outcomes {
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
            .map_err(SinkError::fatal)?;
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
        let indices = self.batch_indices(records)?;
        self.ready_indices(records, &indices).await?;
        let chunks = self.build(records, &indices, &mut outcomes);
        // Without external versions the order of a key's changes is the order of the
        // requests: changes (not snapshot rows) then go one request at a time.
        let ordered = self.cfg.version.is_none() && records.iter().any(|r| r.op != Op::Read);
        let in_flight = if ordered { 1 } else { self.cfg.max_in_flight };
        let mut results = stream::iter(chunks)
            .map(|c| self.send(c, records, &indices))
            .buffer_unordered(in_flight);
        while let Some(r) = results.next().await {
            for (i, o) in r? {
                // A record with two items (a key-changing update) takes the worse outcome.
                merge(&mut outcomes[i], o);
            }
        }
        self.tally(&outcomes);
        Ok(outcomes)
    }

    /// Applies a `TRUNCATE`, `DROP TABLE` or `RENAME TABLE` to the table's index under
    /// [`SinkConfig::table_changes`] (see [`EsSink`]). Idempotent: a truncate of an empty or
    /// missing index, a drop of a missing index and a rename already done succeed.
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        self.on_table_change(change).await
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

/// Keeps the worse of two outcomes of one record: rejected, then retryable, then written.
fn merge(current: &mut Outcome, next: Outcome) {
    let rank = |o: &Outcome| match o {
        Outcome::Written => 0,
        Outcome::Retryable(_) => 1,
        Outcome::Rejected(_) => 2,
    };
    if rank(&next) >= rank(current) {
        *current = next;
    }
}

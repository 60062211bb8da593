//! The snapshot-to-stream handoff of `snapshot+cdc` (see the crate README).
//!
//! The approach is "position first, then snapshots, then replay": before any table is
//! snapshotted, the stream unit's checkpoint is set to the server's current binlog position
//! P0 ([`prepare_stream_start`]); the table snapshots run (each in its own consistent
//! snapshot, all taken after P0); then the stream starts at P0 and replays every change
//! made since, in order. Replays are harmless because sinks apply idempotently: MySQL
//! targets upsert and delete by key in binlog order (per key, with `partition_by_key`), and
//! Elasticsearch targets use external versions: snapshot rows get the ordinal of P0
//! ([`stamp_snapshot`]), lower than that of any change after P0, so a later change always
//! wins and an older one never overwrites a newer one.

use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{
    CheckpointStore, Op, PartState, Position, Record, Timestamp, UnitCheckpoint, UnitState,
};
use datatrace_core::{Emitter, Part, Schema, Source};

use super::checkpoint::{snapshot_position, StreamCheckpoint};
use super::position::to_position;
use super::stream::current_position;
use crate::connect::MySqlConnection;
use crate::error::MySqlError;
use crate::snapshot::BinlogPosition;

/// Makes sure the stream unit `unit` of `job` has a start: if it has no checkpoint yet,
/// saves one at the server's current position (P0) and returns it; otherwise returns the
/// saved one (a resumed job keeps its first P0, or wherever the stream got to).
pub async fn prepare_stream_start(
    conn: &MySqlConnection,
    store: &Arc<dyn CheckpointStore>,
    job: &str,
    unit: &str,
) -> Result<BinlogPosition, datatrace_core::Error> {
    let core = |e: MySqlError| datatrace_core::Error::source(unit, e);
    if let Some(cp) = store.load(job, unit).await? {
        if let Some(part) = cp.parts.first() {
            if let Some(p) = &part.position {
                return Ok(StreamCheckpoint::decode(unit, &part.part.id, p)?.at);
            }
        }
    }
    let p0 = current_position(conn).await.map_err(core)?;
    let cp = UnitCheckpoint {
        state: UnitState::Running,
        parts: vec![PartState {
            part: Part::whole(),
            position: Some(to_position(&p0, None)),
            done: false,
        }],
        error: None,
        written: 0,
        updated_at: Timestamp::now(),
    };
    store.save(job, unit, &cp).await?;
    Ok(p0)
}

/// A transform giving snapshot rows (`Op::Read`) the position ordinal of `start`, so that
/// external versions of changes after it are higher.
pub fn stamp_snapshot(start: &BinlogPosition) -> impl Fn(Record) -> Option<Record> + Send + Sync {
    // the state names P0 (file, pos, GTID set): Debezium's snapshot events carry it as their
    // `source` block
    let pos = to_position(start, None);
    move |mut r: Record| {
        if r.op == Op::Read && r.position.is_none() {
            r.position = Some(pos.clone());
        }
        Some(r)
    }
}

/// The shared start of a `snapshot+cdc` job: P0, taken once (at the first snapshot unit's
/// start, or read back from the stream unit's checkpoint) and used by every snapshot unit
/// ([`HandoffSnapshot`], [`Handoff::stamp`]) and by the stream ([`HandoffStream`]).
pub struct Handoff {
    conn: MySqlConnection,
    store: Arc<dyn CheckpointStore>,
    job: String,
    stream_unit: String,
    snapshot_units: Vec<String>,
    p0: tokio::sync::OnceCell<BinlogPosition>,
    /// Snapshot units of tables without a key (see [`Handoff::exact_snapshot`]).
    exact: std::sync::Mutex<Vec<String>>,
}

impl Handoff {
    /// The handoff of job `job` whose stream unit is `stream_unit` and whose snapshot units
    /// (which must be done before the stream applies anything) are `snapshot_units`.
    pub fn new(
        conn: MySqlConnection,
        store: Arc<dyn CheckpointStore>,
        job: impl Into<String>,
        stream_unit: impl Into<String>,
        snapshot_units: Vec<String>,
    ) -> Arc<Handoff> {
        Arc::new(Handoff {
            conn,
            store,
            job: job.into(),
            stream_unit: stream_unit.into(),
            snapshot_units,
            p0: tokio::sync::OnceCell::new(),
            exact: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Marks snapshot unit `unit` as a table whose changes cannot be replayed over its
    /// snapshot (no key: a replayed insert would duplicate its row). Its snapshot must be
    /// read in a consistent snapshot with a binlog position (the MySQL source's
    /// `consistent_snapshot`); the stream then skips the table's changes up to that position,
    /// which the snapshot already holds ([`Handoff::floors`]).
    pub fn exact_snapshot(&self, unit: &str) {
        self.exact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(unit.to_string());
    }

    /// Per table (`db.table`), the binlog ordinal its snapshot was read at, for the tables
    /// marked by [`Handoff::exact_snapshot`]: read from their checkpoints (a scan records
    /// the position of the snapshot it read when it ends), so a resumed stream skips the
    /// same changes. An error names a table whose snapshot has no position.
    pub async fn floors(
        &self,
    ) -> Result<std::collections::HashMap<String, u64>, datatrace_core::Error> {
        let exact = self.exact.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = std::collections::HashMap::new();
        for u in exact {
            let mut at = None;
            if let Some(cp) = self.store.load(&self.job, &u).await? {
                for p in &cp.parts {
                    if let Some(pos) = &p.position {
                        at = at.or(snapshot_position(&u, &p.part.id, pos)?);
                    }
                }
            }
            match at {
                Some(p) => {
                    out.insert(u, super::position::ordinal(&p.file, p.pos));
                }
                None => {
                    return Err(datatrace_core::Error::Config(format!(
                        "table {u} has no primary key, and its snapshot has no binlog position (a consistent snapshot needs the RELOAD privilege on MySQL), so the stream cannot tell which of its changes the snapshot holds; name the columns that identify a row in the source's `key` setting, or grant RELOAD"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// P0: taken (and saved as the stream unit's checkpoint) on first use.
    ///
    /// A table already copied while the stream has no start yet was copied by an earlier
    /// run without a stream (a `full` job switched to `snapshot+cdc`): the changes made to it
    /// since that copy are in no binlog range anyone knows, so starting the stream now would
    /// leave the target stale. That is refused with an error saying how to start afresh.
    pub async fn start(&self) -> Result<BinlogPosition, datatrace_core::Error> {
        self.p0
            .get_or_try_init(|| async {
                let started = self
                    .store
                    .load(&self.job, &self.stream_unit)
                    .await?
                    .is_some_and(|cp| cp.parts.iter().any(|p| p.position.is_some()));
                if !started {
                    for u in &self.snapshot_units {
                        if let Some(cp) = self.store.load(&self.job, u).await? {
                            if cp.state == UnitState::Done {
                                return Err(datatrace_core::Error::Config(format!(
                                    "job {}: table {u} was copied by an earlier run without a change stream, so the changes made to it since are unknown and the stream cannot start where that copy ended; to copy afresh and then stream, delete the job's checkpoints (or give the job a new name) and run again",
                                    self.job
                                )));
                            }
                        }
                    }
                }
                prepare_stream_start(&self.conn, &self.store, &self.job, &self.stream_unit).await
            })
            .await
            .cloned()
    }

    /// A transform giving snapshot rows the ordinal of P0 (see [`stamp_snapshot`]); P0 is
    /// known by the time rows flow because [`HandoffSnapshot`] takes it before reading.
    pub fn stamp(self: &Arc<Self>) -> impl Fn(Record) -> Option<Record> + Send + Sync {
        let me = self.clone();
        move |mut r: Record| {
            if r.op == Op::Read && r.position.is_none() {
                if let Some(p0) = me.p0.get() {
                    r.position = Some(to_position(p0, None));
                }
            }
            Some(r)
        }
    }

    /// Waits until every snapshot unit is done; an error if one failed.
    async fn snapshots_done(&self, out: &Emitter) -> Result<(), datatrace_core::Error> {
        loop {
            let mut pending = Vec::new();
            for u in &self.snapshot_units {
                match self.store.load(&self.job, u).await? {
                    Some(cp) if cp.state == UnitState::Done => {}
                    Some(cp) if cp.state == UnitState::Failed => {
                        return Err(datatrace_core::Error::Config(format!(
                            "the stream waits for the snapshot of {u}, which failed: {}",
                            cp.error.unwrap_or_default()
                        )))
                    }
                    _ => pending.push(u.as_str()),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            tracing::debug!(?pending, "stream waiting for snapshots");
            tokio::select! {
                _ = out.cancelled().cancelled() => return Err(datatrace_core::Error::Cancelled),
                _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
            }
        }
    }
}

/// A snapshot unit of a `snapshot+cdc` job: takes P0 before planning or reading, then reads
/// the table as `inner` does.
pub struct HandoffSnapshot {
    inner: Arc<dyn Source>,
    handoff: Arc<Handoff>,
}

impl HandoffSnapshot {
    /// Wraps a table's snapshot source.
    pub fn new(inner: Arc<dyn Source>, handoff: Arc<Handoff>) -> Self {
        HandoffSnapshot { inner, handoff }
    }
}

#[async_trait]
impl Source for HandoffSnapshot {
    /// Snapshot rows have distinct keys: several writers may write them in any order.
    fn ordered(&self) -> bool {
        false
    }

    async fn schema(&self) -> datatrace_core::Result<Option<Arc<Schema>>> {
        self.inner.schema().await
    }
    async fn split(&self, max_parts: usize) -> datatrace_core::Result<Vec<Part>> {
        self.handoff.start().await?;
        self.inner.split(max_parts).await
    }
    async fn estimate_rows(&self) -> Option<u64> {
        self.inner.estimate_rows().await
    }
    fn resumes_exactly(&self) -> bool {
        self.inner.resumes_exactly()
    }
    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        self.handoff.start().await?;
        self.inner.read(part, from, out).await
    }
}

/// The stream unit of a `snapshot+cdc` job: waits until every snapshot unit is done, then
/// streams from its checkpoint, which starts at P0.
pub struct HandoffStream {
    inner: Arc<dyn Source>,
    handoff: Arc<Handoff>,
}

impl HandoffStream {
    /// Wraps the binlog source.
    pub fn new(inner: Arc<dyn Source>, handoff: Arc<Handoff>) -> Self {
        HandoffStream { inner, handoff }
    }
}

#[async_trait]
impl Source for HandoffStream {
    fn retention_secs(&self) -> Option<i64> {
        self.inner.retention_secs()
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let p0 = self.handoff.start().await?;
        self.handoff.snapshots_done(out).await?;
        let mut from = from.unwrap_or_else(|| to_position(&p0, None));
        // Refused here, naming this unit, before the floors are added to it.
        StreamCheckpoint::decode(&self.handoff.stream_unit, &part.id, &from)?;
        let floors = self.handoff.floors().await?;
        if !floors.is_empty() {
            if let serde_json::Value::Object(m) = &mut from.state {
                m.insert("floors".into(), serde_json::json!(floors));
            }
        }
        self.inner.read(part, Some(from), out).await
    }
}

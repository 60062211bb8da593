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

use datatrace_core::Part;
use datatrace_core::{
    CheckpointStore, Op, PartState, Position, Record, Timestamp, UnitCheckpoint, UnitState,
};

use super::position::{from_position, to_position};
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
        if let Some(p) = cp.parts.first().and_then(|p| p.position.as_ref()) {
            if let Some(b) = from_position(p) {
                return Ok(b);
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
    let pos = Position {
        state: serde_json::Value::Null,
        ..to_position(start, None)
    };
    move |mut r: Record| {
        if r.op == Op::Read && r.position.is_none() {
            r.position = Some(pos.clone());
        }
        Some(r)
    }
}

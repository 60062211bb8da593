//! How a [`BinlogSource`] reads: from the checkpoint (or its start position), with the
//! retention guard beside it, through a [`Reader`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{Emitter, Part, Position, Source};

use super::checkpoint::StreamCheckpoint;
use super::reader::Reader;
use super::retention::guard;
use super::source::BinlogSource;
use super::stats::NOT_AT_RISK;
use crate::error::MySqlError;

/// Aborts a task when dropped (the retention guard of a read).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Source for BinlogSource {
    fn retention_secs(&self) -> Option<i64> {
        Some(self.stats.retention_secs.load(Ordering::Relaxed)).filter(|s| *s != NOT_AT_RISK)
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let core = |e: MySqlError| datatrace_core::Error::source(&self.unit, e);
        let commit_ms = from.as_ref().and_then(|p| p.ts_ms);
        // The start position, and the tables whose changes up to some point are already in
        // the target (see `handoff::Handoff::floors`); a damaged checkpoint is refused.
        let (committed, floors) = match from {
            Some(p) => {
                let cp = StreamCheckpoint::decode(&self.unit, &part.id, &p)?;
                (cp.at, cp.floors)
            }
            None => (
                self.start_position().await.map_err(core)?,
                Default::default(),
            ),
        };
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((committed.clone(), commit_ms));
        let _guard = (self.opts.retention_check_secs > 0).then(|| {
            AbortOnDrop(tokio::spawn(guard(
                self.conn.clone(),
                self.committed.clone(),
                self.stats.clone(),
                Duration::from_secs(self.opts.retention_check_secs),
                Duration::from_secs(self.opts.retention_warn_secs),
            )))
        });
        let mut reader = Reader::new(self, committed);
        reader.floors = floors;
        tracing::info!(file = %reader.committed.file, pos = reader.committed.pos, gtid = ?reader.committed.gtid, "binlog stream starting");
        reader.run(out).await
    }
}

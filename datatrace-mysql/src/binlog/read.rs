//! How a [`BinlogSource`] reads: from the checkpoint (or its start position), with the
//! retention guard beside it, through a [`Reader`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{Emitter, Part, Position, Source};

use super::position::from_position;
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
        _part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let core = |e: MySqlError| datatrace_core::Error::source("binlog", e);
        let commit_ms = from.as_ref().and_then(|p| p.ts_ms);
        // Tables whose changes up to some point are already in the target (see
        // `handoff::Handoff::floors`), passed along with the start position.
        let floors: std::collections::HashMap<String, u64> = from
            .as_ref()
            .and_then(|p| p.state.get("floors"))
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        let committed = match from {
            Some(p) => from_position(&p).ok_or_else(|| {
                core(MySqlError::Config(format!(
                    "the checkpoint {} is not a binlog position",
                    p.state
                )))
            })?,
            None => self.start_position().await.map_err(core)?,
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

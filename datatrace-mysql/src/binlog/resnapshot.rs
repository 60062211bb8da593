//! Bridging a binlog gap (`on_binlog_gap = "resnapshot"`): the changes in the purged binlogs
//! are unknown, so every streamed table is emptied in the target (a `TRUNCATE` table change)
//! and copied again, then the stream goes on from a position taken *before* the copy: the
//! gap-free handoff of `snapshot+cdc` (changes made during the copy are replayed over it,
//! which sinks apply idempotently; copied rows carry that position's ordinal, so in
//! Elasticsearch a later change always wins). The stream's checkpoint moves to that
//! position only after the last copied row: a crash during the copy finds the gap again and
//! copies again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use datatrace_core::{Emitter, Position, Source, TableChange, TableChangeKind};

use super::gap::{find_gap, BinlogGap, OnBinlogGap};
use super::gtid_state::GtidState;
use super::position::to_position;
use super::reader::{End, Reader};
use super::stream::current_position;
use crate::error::MySqlError;
use crate::schema::discover_tables;
use crate::source::MySqlSource;

impl Reader<'_> {
    /// Checks the committed position against the server's binlogs; bridges or reports a gap.
    pub(super) async fn check_gap(&mut self, out: &mut Emitter) -> Result<(), End> {
        let by_gtid = self.src.opts.resume_by_gtid || self.committed.file.is_empty();
        match find_gap(&self.src.conn, &self.committed, by_gtid).await {
            Ok(None) => Ok(()),
            Ok(Some(gap)) => self.bridge_gap(gap, out).await,
            Err(e @ MySqlError::Transient { .. }) => Err(End::Lost(e)),
            // Without the privilege to list binlogs the server's own refusal (1236) is the
            // only sign of a gap.
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the binlog position against the server's binlogs");
                Ok(())
            }
        }
    }

    /// A gap the server reported (error 1236), with what the binlogs say if they tell more.
    pub(super) async fn describe_gap(&self, message: String) -> BinlogGap {
        let by_gtid = self.src.opts.resume_by_gtid || self.committed.file.is_empty();
        match find_gap(&self.src.conn, &self.committed, by_gtid).await {
            Ok(Some(gap)) => gap,
            _ => BinlogGap {
                position: self.committed.clone(),
                missing: format!("the server refuses it: {message}"),
                oldest: None,
            },
        }
    }

    /// Fails with the gap, or copies the tables again and moves the stream past it.
    pub(super) async fn bridge_gap(
        &mut self,
        gap: BinlogGap,
        out: &mut Emitter,
    ) -> Result<(), End> {
        match self.src.opts.on_binlog_gap {
            OnBinlogGap::Fail => Err(End::Fatal(gap.into_error())),
            OnBinlogGap::Resnapshot => {
                tracing::warn!(
                    "{gap}; on_binlog_gap = \"resnapshot\": copying the streamed tables again"
                );
                self.resnapshot(out).await
            }
        }
    }

    async fn resnapshot(&mut self, out: &mut Emitter) -> Result<(), End> {
        let conn = &self.src.conn;
        let fatal = |e: MySqlError| match e {
            MySqlError::Transient { .. } => End::Lost(e),
            other => End::Fatal(other),
        };
        let start = current_position(conn).await.map_err(fatal)?;
        let stamp = Position {
            state: serde_json::Value::Null,
            ..to_position(&start, None)
        };
        let tables = discover_tables(conn, &self.src.opts.tables)
            .await
            .map_err(fatal)?;
        for table in tables {
            let name = table.qualified_name();
            let mut change = TableChange::new(TableChangeKind::Truncate, table.schema.clone());
            change.position = Some(stamp.clone());
            out.table_change(change).await?;
            let source = Arc::new(
                MySqlSource::new(conn.clone(), table, self.src.snapshot.clone())
                    .map_err(fatal)?
                    .stamped(stamp.clone()),
            );
            let parts = source.split(1).await.map_err(|e| copy_error(&name, e))?;
            for part in parts {
                source
                    .read(&part, None, out)
                    .await
                    .map_err(|e| copy_error(&name, e))?;
            }
            source.end_snapshot().await;
            tracing::info!(table = %name, "table copied again after a binlog gap");
        }
        self.gtids = GtidState::resume(conn.info().is_mariadb, start.gtid.as_deref());
        self.committed = start;
        *self.src.committed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((self.committed.clone(), None));
        self.emitted_upto = 0;
        self.decoders.clear();
        self.infos.clear();
        self.src.stats.resnapshots.fetch_add(1, Ordering::Relaxed);
        out.checkpoint(to_position(&self.committed, None)).await?;
        tracing::info!(file = %self.committed.file, pos = self.committed.pos, "binlog gap bridged: streaming from the position taken before the copy");
        Ok(())
    }
}

fn copy_error(table: &str, e: datatrace_core::Error) -> End {
    match e {
        datatrace_core::Error::Cancelled => End::Stopped,
        other => End::Fatal(MySqlError::Driver {
            context: format!("copying {table} again after a binlog gap"),
            message: other.to_string(),
        }),
    }
}

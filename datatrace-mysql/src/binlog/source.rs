//! [`BinlogSource`]: a change stream of many tables, one unit that never completes on its own.
//!
//! Reads the binlog as a replica, decodes rows events of the selected tables into records
//! (`Insert`, `Update` with its before-image, `Delete` with the deleted row), and declares a
//! checkpoint at the end of every transaction (XID, or a COMMIT / DDL query event): a
//! checkpoint never lands inside a transaction. Records carry a [`Position`] with the event's
//! ordinal (external versions), commit time (lag) and, as `state`, where the event is
//! (`{"event": true, file, pos, gtid}`: the binlog file, the event's start and its
//! transaction's GTID, what Debezium's `source` block tells); only checkpoints carry the
//! resumable `{file, pos, gtid}` (the end of a transaction and the GTID set after it).
//!
//! A dropped connection (a killed dump thread, a restarted server, a dead link noticed by the
//! missing heartbeats) is retried with backoff from the end of the last committed
//! transaction; rows events already emitted before the drop are skipped by their ordinal, so
//! a reconnect emits nothing twice. After a crash the stream resumes from the last
//! acknowledged checkpoint and the changes after it are written again: sinks apply them
//! idempotently (upserts, external versions).
//!
//! DDL on streamed tables: the schema cache forgets the tables an `ALTER`, `RENAME`,
//! `TRUNCATE` or `DROP TABLE` names (their shape is read again at their next rows event), and
//! `TRUNCATE`, `DROP TABLE` and `RENAME TABLE` (also `ALTER TABLE a RENAME TO b`) are emitted
//! as [`datatrace_core::TableChange`]s, one per streamed table (a rename when either name is streamed),
//! before the checkpoint of their query event.

use std::sync::Arc;

use super::config::{CdcOptions, StartAt};
use super::retention::Committed;
use super::stats::StreamStats;
use super::stream::current_position;
use crate::config::SourceOptions;
use crate::connect::MySqlConnection;
use crate::error::MySqlError;
use crate::snapshot::BinlogPosition;

/// A binlog change stream (see the module docs).
pub struct BinlogSource {
    pub(super) conn: MySqlConnection,
    pub(super) opts: CdcOptions,
    pub(super) stats: Arc<StreamStats>,
    /// How tables are read when a binlog gap makes the stream copy them again.
    pub(super) snapshot: SourceOptions,
    /// The last committed position and its commit time, for the retention guard.
    pub(super) committed: Committed,
    /// The unit its errors name ([`BinlogSource::with_unit`]).
    pub(super) unit: String,
}

impl BinlogSource {
    /// A stream reading through `conn` (which also reads table shapes from
    /// `information_schema`). Check the server first with
    /// [`super::stream::check_prerequisites`].
    pub fn new(conn: MySqlConnection, opts: CdcOptions) -> Result<Self, MySqlError> {
        opts.validate().map_err(MySqlError::Config)?;
        let snapshot = SourceOptions {
            zero_date: opts.zero_date,
            ..SourceOptions::default()
        };
        Ok(BinlogSource {
            conn,
            opts,
            stats: Arc::new(StreamStats::default()),
            snapshot,
            committed: Committed::default(),
            unit: "binlog".into(),
        })
    }

    /// How tables are read when a binlog gap makes the stream copy them again
    /// (`on_binlog_gap = "resnapshot"`): the job's snapshot settings (key columns, filter,
    /// chunking). Default: [`SourceOptions::default`] with the stream's `zero_date`.
    pub fn with_snapshot_options(mut self, opts: SourceOptions) -> Self {
        self.snapshot = opts;
        self
    }

    /// The name of the unit the stream runs as, which its errors (a damaged checkpoint, a
    /// failed read) name. Default: `binlog`, the stream unit of a `snapshot+cdc` job.
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    /// The stream's counters.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }

    pub(super) async fn start_position(&self) -> Result<BinlogPosition, MySqlError> {
        match &self.opts.start {
            StartAt::Current => current_position(&self.conn).await,
            StartAt::Position { file, pos } => {
                let mut c = self.conn.get().await?;
                let gtid = super::stream::gtid_at(&mut c, self.conn.info().is_mariadb, file, *pos)
                    .await
                    .unwrap_or(None);
                Ok(BinlogPosition {
                    file: file.clone(),
                    pos: *pos,
                    gtid,
                })
            }
            StartAt::Gtid(g) => Ok(BinlogPosition {
                file: String::new(),
                pos: 4,
                gtid: Some(g.clone()),
            }),
        }
    }
}

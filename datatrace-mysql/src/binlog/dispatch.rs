//! Event dispatch: each binlog event updates the reader (file rotations, GTIDs) or becomes
//! records, table changes and checkpoints. A checkpoint is declared at the end of every
//! transaction (XID, or a COMMIT / DDL query event), never inside one.

use std::sync::atomic::Ordering;

use datatrace_core::{Emitter, Position};
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::binlog::EventType;
use mysql_async::BinlogStream;

use super::ddl::parse_ddl;
use super::gtid::{mysql_gtid_of, MariaDbGtid};
use super::position::{clean_rotate_name, event_state, ordinal, to_position};
use super::reader::{bad_event, End, Reader};
use crate::snapshot::BinlogPosition;

const MARIADB_GTID_EVENT: u8 = 0xa2;

impl Reader<'_> {
    /// Handles one event; `file` is the binlog file being read.
    pub(super) async fn event(
        &mut self,
        stream: &BinlogStream,
        ev: &Event,
        file: &mut String,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let h = ev.header();
        let end_pos = h.log_pos() as u64;
        if h.event_type_raw() == MARIADB_GTID_EVENT {
            self.gtids
                .begin_mariadb(MariaDbGtid::from_event(ev.data(), h.server_id()).map(|g| g.0));
            return Ok(());
        }
        let Ok(ty) = h.event_type() else {
            return Ok(());
        };
        match ty {
            EventType::ROTATE_EVENT => {
                if let Ok(Some(EventData::RotateEvent(r))) = ev.read_data() {
                    rotate(file, r.name_raw());
                }
            }
            EventType::GTID_EVENT => {
                if let Ok(Some(EventData::GtidEvent(g))) = ev.read_data() {
                    self.gtids.begin_mysql(mysql_gtid_of(&g));
                }
            }
            EventType::XID_EVENT => self.commit(file, end_pos, h.timestamp(), out).await?,
            // An idle stream: declare the last committed position again, so that the runner,
            // which saves checkpoints when it hears from the source, persists it.
            EventType::HEARTBEAT_EVENT if !self.committed.file.is_empty() => {
                out.checkpoint(to_position(&self.committed, None)).await?;
            }
            EventType::QUERY_EVENT => self.query(ev, file, out).await?,
            EventType::WRITE_ROWS_EVENT
            | EventType::UPDATE_ROWS_EVENT
            | EventType::DELETE_ROWS_EVENT
            | EventType::WRITE_ROWS_EVENT_V1
            | EventType::UPDATE_ROWS_EVENT_V1
            | EventType::DELETE_ROWS_EVENT_V1
            | EventType::PARTIAL_UPDATE_ROWS_EVENT => {
                let ord = ordinal(file, end_pos);
                self.src.stats.last_ordinal.store(ord, Ordering::Relaxed);
                if ord <= self.emitted_upto {
                    return Ok(());
                }
                let data = ev
                    .read_data()
                    .map_err(|e| End::Fatal(bad_event(file, end_pos, e)))?;
                if let Some(EventData::RowsEvent(re)) = data {
                    let pos = Position {
                        state: event_state(
                            file,
                            end_pos.saturating_sub(u64::from(h.event_size())),
                            self.gtids.current(),
                        ),
                        ordinal: Some(ord),
                        ts_ms: Some(h.timestamp() as i64 * 1000),
                    };
                    self.rows(stream, &re, pos, out).await?;
                }
                self.emitted_upto = ord;
            }
            _ => {}
        }
        Ok(())
    }

    /// A query event: `BEGIN` opens a transaction; `COMMIT` and DDL statements end one
    /// (DDL on streamed tables first becomes table changes).
    async fn query(&mut self, ev: &Event, file: &str, out: &mut Emitter) -> Result<(), End> {
        let h = ev.header();
        let end_pos = h.log_pos() as u64;
        let data = ev
            .read_data()
            .map_err(|e| End::Fatal(bad_event(file, end_pos, e)))?;
        let Some(EventData::QueryEvent(q)) = data else {
            return Ok(());
        };
        let sql = q.query();
        let trimmed = sql.trim();
        if trimmed.eq_ignore_ascii_case("BEGIN") {
            return Ok(());
        }
        if !trimmed.eq_ignore_ascii_case("COMMIT") {
            if let Some(ddl) = parse_ddl(trimmed, &q.schema()) {
                let pos = Position {
                    state: event_state(
                        file,
                        end_pos.saturating_sub(u64::from(h.event_size())),
                        self.gtids.current(),
                    ),
                    ordinal: Some(ordinal(file, end_pos)),
                    ts_ms: Some(h.timestamp() as i64 * 1000),
                };
                self.ddl(&ddl, pos, out).await?;
            }
        }
        self.commit(file, end_pos, h.timestamp(), out).await
    }

    /// The end of a transaction: its GTID joins the state, and its end becomes a checkpoint.
    async fn commit(
        &mut self,
        file: &str,
        end_pos: u64,
        ts: u32,
        out: &mut Emitter,
    ) -> Result<(), End> {
        self.gtids.commit();
        if end_pos == 0 || file.is_empty() {
            return Ok(());
        }
        self.committed = BinlogPosition {
            file: file.to_string(),
            pos: end_pos,
            gtid: self.gtids.text(),
        };
        self.src.stats.transactions.fetch_add(1, Ordering::Relaxed);
        *self.src.committed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((self.committed.clone(), Some(i64::from(ts) * 1000)));
        out.checkpoint(to_position(&self.committed, Some(ts)))
            .await?;
        Ok(())
    }
}

/// A rotate event: the file being read from now on.
fn rotate(file: &mut String, name_raw: &[u8]) {
    let name = if !file.is_empty() && name_raw.starts_with(file.as_bytes()) {
        file.clone()
    } else {
        clean_rotate_name(name_raw)
    };
    if *file != name {
        tracing::debug!(%name, "binlog file");
    }
    *file = name;
}

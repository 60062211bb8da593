//! The stream loop of one connection: opens a dump at the end of the last committed
//! transaction and reads events until the run is cancelled or the connection is lost. What
//! survives a reconnect (the committed position, the table shapes, the GTID state, the last
//! emitted ordinal) lives in the [`Reader`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::Emitter;
use futures::StreamExt;

use super::decode::TableDecoder;
use super::gtid_state::GtidState;
use super::source::BinlogSource;
use super::stream::{open_stream, DumpFrom};
use crate::error::MySqlError;
use crate::schema::TableInfo;
use crate::snapshot::BinlogPosition;

/// ER_SLAVE_SAME_ID (MariaDB) / ER_SLAVE_SAME_UUID-like refusals of a second dump with our id.
const SAME_SERVER_ID: u16 = 4052;

/// Why one connection's stream ended.
pub(super) enum End {
    Stopped,
    Lost(MySqlError),
    Fatal(MySqlError),
    /// The server cannot serve the position (error 1236): a binlog gap.
    Gap(String),
}

/// ER_MASTER_FATAL_ERROR_READING_BINLOG: the requested position or GTID state is not in the
/// server's binlogs (purged, reset).
const CANNOT_READ_BINLOG: u16 = 1236;

impl From<datatrace_core::Stopped> for End {
    fn from(_: datatrace_core::Stopped) -> Self {
        End::Stopped
    }
}

/// Per-connection reading state that survives reconnects.
pub(super) struct Reader<'a> {
    pub(super) src: &'a BinlogSource,
    /// End of the last committed transaction.
    pub(super) committed: BinlogPosition,
    /// The ordinal of the last rows event emitted (events up to it are skipped after a
    /// reconnect).
    pub(super) emitted_upto: u64,
    pub(super) infos: HashMap<(String, String), TableInfo>,
    pub(super) decoders: HashMap<u64, Option<Arc<TableDecoder>>>,
    pub(super) gtids: GtidState,
    /// Per table (`db.table`), the ordinal up to which its changes are already in the
    /// target (the exact snapshot point of a table without a key, `snapshot+cdc`): its rows
    /// events at or before it are skipped.
    pub(super) floors: HashMap<String, u64>,
}

impl<'a> Reader<'a> {
    /// A reader resuming after `committed`.
    pub(super) fn new(src: &'a BinlogSource, committed: BinlogPosition) -> Reader<'a> {
        Reader {
            src,
            gtids: GtidState::resume(src.conn.info().is_mariadb, committed.gtid.as_deref()),
            committed,
            emitted_upto: 0,
            infos: HashMap::new(),
            decoders: HashMap::new(),
            floors: HashMap::new(),
        }
    }

    /// Reads one connection's stream until it ends.
    pub(super) async fn run_once(&mut self, out: &mut Emitter) -> Result<(), End> {
        let o = &self.src.opts;
        let use_gtid = o.resume_by_gtid || self.committed.file.is_empty();
        let from = match (&self.committed.gtid, use_gtid) {
            (Some(g), true) => DumpFrom::Gtid(g),
            _ => DumpFrom::Position(&self.committed.file, self.committed.pos),
        };
        let mut stream =
            match open_stream(&self.src.conn, o.server_id, from, o.heartbeat_secs).await {
                Ok(s) => s,
                Err(e @ MySqlError::Transient { .. }) => return Err(End::Lost(e)),
                Err(MySqlError::Server {
                    code: CANNOT_READ_BINLOG,
                    message,
                    ..
                }) => return Err(End::Gap(message)),
                Err(e) => return Err(End::Fatal(e)),
            };
        let mut file = self.committed.file.clone();
        let wait = Duration::from_secs(o.heartbeat_secs.saturating_mul(3).saturating_add(1));
        let cancel = out.cancelled().clone();
        loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(End::Stopped),
                n = tokio::time::timeout(wait, stream.next()) => n,
            };
            let ev = match next {
                Err(_) => {
                    return Err(End::Lost(lost(format!(
                        "no event or heartbeat for {} s",
                        wait.as_secs()
                    ))))
                }
                Ok(None) => return Err(End::Lost(lost("the server closed the stream".into()))),
                Ok(Some(Err(e))) => return Err(read_error(e)),
                Ok(Some(Ok(ev))) => ev,
            };
            self.src.stats.events.fetch_add(1, Ordering::Relaxed);
            self.event(&stream, &ev, &mut file, out).await?;
        }
    }
}

/// How a failed read ends the connection's stream.
fn read_error(e: mysql_async::Error) -> End {
    let e = MySqlError::from_driver("reading the binlog stream", e);
    match e {
        MySqlError::Transient { .. } => End::Lost(e),
        MySqlError::Driver { .. } => End::Lost(e),
        // "A slave with the same server_id is already connected": our own previous
        // connection (a crashed run), which the server drops once it notices; retried with
        // backoff.
        MySqlError::Server {
            code: SAME_SERVER_ID,
            ..
        } => End::Lost(e),
        MySqlError::Server {
            code: CANNOT_READ_BINLOG,
            message,
            ..
        } => End::Gap(message),
        other => End::Fatal(other),
    }
}

fn lost(message: String) -> MySqlError {
    MySqlError::Transient {
        context: "reading the binlog stream".into(),
        message,
    }
}

/// An event that could not be parsed.
pub(super) fn bad_event(file: &str, pos: u64, e: std::io::Error) -> MySqlError {
    MySqlError::Data {
        context: format!("reading the binlog event ending at {file}:{pos}"),
        message: e.to_string(),
    }
}

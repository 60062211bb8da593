//! [`BinlogSource`]: a change stream of many tables, one unit that never completes on its own.
//!
//! Reads the binlog as a replica, decodes rows events of the selected tables into records
//! (`Insert`, `Update` with its before-image, `Delete` with the deleted row), and declares a
//! checkpoint at the end of every transaction (XID, or a COMMIT / DDL query event): a
//! checkpoint never lands inside a transaction. Records carry a [`Position`] with the event's
//! ordinal (external versions) and commit time (lag); their `state` is left null, only
//! checkpoints carry the resumable `{file, pos, gtid}`.
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
//! as [`TableChange`]s, one per streamed table (a rename when either name is streamed),
//! before the checkpoint of their query event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{
    Emitter, Op, Part, Position, Record, Schema, Source, TableChange, TableChangeKind,
};
use futures::StreamExt;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::EventType;
use mysql_async::BinlogStream;

use super::config::{CdcOptions, StartAt};
use super::ddl::parse_ddl;
use super::decode::{
    event_shape, map_shape, missing_columns, narrow, table_map_names, with_map_key, TableDecoder,
};
use super::gtid::{mysql_gtid_of, MariaDbGtid, MariaDbGtidState, MySqlGtidSet};
use super::position::{clean_rotate_name, from_position, ordinal, to_position};
use super::stream::{current_position, open_stream, DumpFrom};
use crate::connect::MySqlConnection;
use crate::error::MySqlError;
use crate::schema::{table_info, TableInfo};
use crate::snapshot::BinlogPosition;

const MARIADB_GTID_EVENT: u8 = 0xa2;
/// ER_SLAVE_SAME_ID (MariaDB) / ER_SLAVE_SAME_UUID-like refusals of a second dump with our id.
const SAME_SERVER_ID: u16 = 4052;

/// Counters of a stream, readable while it runs.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Binlog events received.
    pub events: AtomicU64,
    /// Row changes emitted.
    pub rows: AtomicU64,
    /// Transactions committed (checkpoints declared).
    pub transactions: AtomicU64,
    /// Reconnects after a lost connection.
    pub reconnects: AtomicU64,
    /// The ordinal of the last event read.
    pub last_ordinal: AtomicU64,
}

/// A binlog change stream (see the module docs).
pub struct BinlogSource {
    conn: MySqlConnection,
    opts: CdcOptions,
    stats: Arc<StreamStats>,
}

/// Why one connection's stream ended.
enum End {
    Stopped,
    Lost(MySqlError),
    Fatal(MySqlError),
}

impl From<datatrace_core::Stopped> for End {
    fn from(_: datatrace_core::Stopped) -> Self {
        End::Stopped
    }
}

impl BinlogSource {
    /// A stream reading through `conn` (which also reads table shapes from
    /// `information_schema`). Check the server first with
    /// [`super::stream::check_prerequisites`].
    pub fn new(conn: MySqlConnection, opts: CdcOptions) -> Result<Self, MySqlError> {
        opts.validate().map_err(MySqlError::Config)?;
        Ok(BinlogSource {
            conn,
            opts,
            stats: Arc::new(StreamStats::default()),
        })
    }

    /// The stream's counters.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }

    async fn start_position(&self) -> Result<BinlogPosition, MySqlError> {
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

/// Per-connection reading state that survives reconnects.
struct Reader<'a> {
    src: &'a BinlogSource,
    /// End of the last committed transaction.
    committed: BinlogPosition,
    /// The ordinal of the last rows event emitted (events up to it are skipped after a
    /// reconnect).
    emitted_upto: u64,
    infos: HashMap<(String, String), TableInfo>,
    decoders: HashMap<u64, Option<Arc<TableDecoder>>>,
    mariadb: MariaDbGtidState,
    mysql: MySqlGtidSet,
    pending_mariadb: Option<MariaDbGtid>,
    pending_mysql: Option<(String, u64)>,
    /// Whether `mysql` started from the server's executed set (MySQL only).
    mysql_complete: bool,
}

impl Reader<'_> {
    fn gtid_text(&self) -> Option<String> {
        if self.src.conn.info().is_mariadb {
            (!self.mariadb.is_empty()).then(|| self.mariadb.to_string())
        } else if self.mysql_complete {
            // Only a set that started from the server's whole executed set may be resumed
            // from: one holding just the streamed transactions would replay the rest.
            (!self.mysql.is_empty()).then(|| self.mysql.to_string())
        } else {
            None
        }
    }

    async fn run_once(&mut self, out: &mut Emitter) -> Result<(), End> {
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
                Err(e) => return Err(End::Fatal(e)),
            };
        let mut file = self.committed.file.clone();
        let wait = Duration::from_secs(o.heartbeat_secs * 3 + 1);
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
                Ok(Some(Err(e))) => {
                    let e = MySqlError::from_driver("reading the binlog stream", e);
                    return Err(match e {
                        MySqlError::Transient { .. } => End::Lost(e),
                        MySqlError::Driver { .. } => End::Lost(e),
                        // "A slave with the same server_id is already connected": our own
                        // previous connection (a crashed run), which the server drops once
                        // it notices; retried with backoff.
                        MySqlError::Server {
                            code: SAME_SERVER_ID,
                            ..
                        } => End::Lost(e),
                        other => End::Fatal(other),
                    });
                }
                Ok(Some(Ok(ev))) => ev,
            };
            self.src.stats.events.fetch_add(1, Ordering::Relaxed);
            self.event(&stream, &ev, &mut file, out).await?;
        }
    }

    async fn event(
        &mut self,
        stream: &BinlogStream,
        ev: &Event,
        file: &mut String,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let h = ev.header();
        let raw = h.event_type_raw();
        let end_pos = h.log_pos() as u64;
        if raw == MARIADB_GTID_EVENT {
            self.pending_mariadb = MariaDbGtid::from_event(ev.data(), h.server_id()).map(|g| g.0);
            return Ok(());
        }
        let Ok(ty) = h.event_type() else {
            return Ok(());
        };
        match ty {
            EventType::ROTATE_EVENT => {
                if let Ok(Some(EventData::RotateEvent(r))) = ev.read_data() {
                    let name_raw = r.name_raw();
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
            }
            EventType::GTID_EVENT => {
                if let Ok(Some(EventData::GtidEvent(g))) = ev.read_data() {
                    self.pending_mysql = Some(mysql_gtid_of(&g));
                }
            }
            EventType::XID_EVENT => self.commit(file, end_pos, h.timestamp(), out).await?,
            // An idle stream: declare the last committed position again, so that the runner,
            // which saves checkpoints when it hears from the source, persists it.
            EventType::HEARTBEAT_EVENT if !self.committed.file.is_empty() => {
                out.checkpoint(to_position(&self.committed, None)).await?;
            }
            EventType::QUERY_EVENT => {
                let data = ev
                    .read_data()
                    .map_err(|e| End::Fatal(bad_event(file, end_pos, e)))?;
                if let Some(EventData::QueryEvent(q)) = data {
                    let sql = q.query();
                    let trimmed = sql.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN") {
                        return Ok(());
                    }
                    if !trimmed.eq_ignore_ascii_case("COMMIT") {
                        if let Some(ddl) = parse_ddl(trimmed, &q.schema()) {
                            let pos = Position {
                                state: serde_json::Value::Null,
                                ordinal: Some(ordinal(file, end_pos)),
                                ts_ms: Some(h.timestamp() as i64 * 1000),
                            };
                            self.ddl(&ddl, pos, out).await?;
                        }
                    }
                    self.commit(file, end_pos, h.timestamp(), out).await?;
                }
            }
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
                        state: serde_json::Value::Null,
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

    async fn commit(
        &mut self,
        file: &str,
        end_pos: u64,
        ts: u32,
        out: &mut Emitter,
    ) -> Result<(), End> {
        if let Some(g) = self.pending_mariadb.take() {
            self.mariadb.apply(g);
        }
        if let Some((sid, gno)) = self.pending_mysql.take() {
            self.mysql.add(&sid, gno);
        }
        if end_pos == 0 || file.is_empty() {
            return Ok(());
        }
        self.committed = BinlogPosition {
            file: file.to_string(),
            pos: end_pos,
            gtid: self.gtid_text(),
        };
        self.src.stats.transactions.fetch_add(1, Ordering::Relaxed);
        out.checkpoint(to_position(&self.committed, Some(ts)))
            .await?;
        Ok(())
    }

    /// A DDL statement: the schema cache forgets the tables it names, and `TRUNCATE`,
    /// `DROP TABLE` and `RENAME TABLE` of streamed tables are passed on as table changes
    /// (once: a reconnect replaying the event emits nothing again).
    async fn ddl(
        &mut self,
        ddl: &super::ddl::DdlChange,
        pos: Position,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let touched: Vec<&(String, String)> = ddl
            .tables
            .iter()
            .filter(|(d, t)| self.src.opts.matches(d, t))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        tracing::info!(kind = ?ddl.kind, tables = ?touched, "DDL on streamed tables: their schema is read again");
        let changes = self.table_changes(ddl);
        for (d, t) in &ddl.tables {
            self.infos.remove(&(d.clone(), t.clone()));
        }
        self.decoders.clear();
        let ord = pos.ordinal.unwrap_or(0);
        if changes.is_empty() || ord <= self.emitted_upto {
            return Ok(());
        }
        for mut change in changes {
            change.position = Some(pos.clone());
            out.table_change(change).await?;
        }
        self.emitted_upto = ord;
        Ok(())
    }

    /// The table changes of a DDL statement, for the streamed tables it names (a rename
    /// counts when either name is streamed).
    fn table_changes(&self, ddl: &super::ddl::DdlChange) -> Vec<TableChange> {
        use super::ddl::DdlKind;
        let o = &self.src.opts;
        let kind = match ddl.kind {
            DdlKind::Truncate => TableChangeKind::Truncate,
            DdlKind::Drop => TableChangeKind::Drop,
            DdlKind::Rename => {
                return ddl
                    .tables
                    .chunks_exact(2)
                    .filter(|p| p.iter().any(|(d, t)| o.matches(d, t)))
                    .map(|p| {
                        let from = self.table_schema(&p[0].0, &p[0].1);
                        let to = Arc::new(from.renamed(Some(p[1].0.clone()), p[1].1.clone()));
                        TableChange::new(
                            TableChangeKind::Rename {
                                to,
                                to_target: None,
                            },
                            from,
                        )
                    })
                    .collect();
            }
            DdlKind::Alter | DdlKind::Create => return Vec::new(),
        };
        ddl.tables
            .iter()
            .filter(|(d, t)| o.matches(d, t))
            .map(|(d, t)| TableChange::new(kind.clone(), self.table_schema(d, t)))
            .collect()
    }

    /// The table's schema as its records carry it (name = table, namespace = database):
    /// the cached one, or one without columns when no row of it was read.
    fn table_schema(&self, db: &str, table: &str) -> Arc<Schema> {
        match self.infos.get(&(db.to_string(), table.to_string())) {
            Some(i) => i.schema.clone(),
            None => Arc::new(Schema::new(table, Vec::new()).with_namespace(db)),
        }
    }

    async fn decoder(
        &mut self,
        stream: &BinlogStream,
        table_id: u64,
    ) -> Result<Option<Arc<TableDecoder>>, End> {
        if let Some(d) = self.decoders.get(&table_id) {
            return Ok(d.clone());
        }
        let Some(tme) = stream.get_tme(table_id) else {
            return Err(End::Fatal(MySqlError::Data {
                context: "reading the binlog".into(),
                message: format!("rows event for table id {table_id} without a table map"),
            }));
        };
        let (db, table) = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        if !self.src.opts.matches(&db, &table) {
            self.decoders.insert(table_id, None);
            return Ok(None);
        }
        let zero = self.src.opts.zero_date;
        let key = (db.clone(), table.clone());
        let mut fresh = false;
        let info = match self.infos.get(&key) {
            Some(i) => i.clone(),
            None => {
                fresh = true;
                match self.load(tme, &db, &table).await? {
                    Some(i) => i,
                    // Renamed or dropped since the event (a stream behind the server): the
                    // table map describes the rows (FULL row metadata).
                    None => match map_shape(tme, &db, &table) {
                        Some(shape) => shape,
                        None => {
                            tracing::warn!(table = %format!("{db}.{table}"), "a streamed table no longer exists and the binlog has no column names (binlog_row_metadata=FULL): its changes from this point of the binlog are skipped");
                            self.decoders.insert(table_id, None);
                            return Ok(None);
                        }
                    },
                }
            }
        };
        let built = match TableDecoder::new(tme, &info, zero, false) {
            Ok(d) => Ok(d),
            Err(_) => {
                // The cached shape may be old: read it again, then adapt to the event.
                let info = if fresh {
                    info
                } else {
                    match self.load(tme, &db, &table).await? {
                        Some(i) => i,
                        None => info,
                    }
                };
                match TableDecoder::new(tme, &info, zero, false) {
                    Ok(d) => Ok(d),
                    // The table changed since the event: decode with the event's columns.
                    Err(_) => match event_shape(tme, &info) {
                        Some(shape) => TableDecoder::new(tme, &shape, zero, false),
                        None => {
                            let names = table_map_names(tme).unwrap_or_default();
                            let narrowed = narrow(&info, &missing_columns(&info, &names));
                            TableDecoder::new(tme, &narrowed, zero, true)
                        }
                    },
                }
            }
        };
        let d = built.map_err(|m| {
            End::Fatal(MySqlError::Data {
                context: format!("decoding binlog rows of {db}.{table}"),
                message: m.0,
            })
        })?;
        let d = Arc::new(d);
        self.decoders.insert(table_id, Some(d.clone()));
        Ok(Some(d))
    }

    /// The table's shape (with the table map's primary key if `information_schema` showed
    /// none: see [`with_map_key`]); `None` when it no longer exists.
    async fn load(
        &mut self,
        tme: &TableMapEvent<'_>,
        db: &str,
        table: &str,
    ) -> Result<Option<TableInfo>, End> {
        match table_info(&self.src.conn, db, table).await {
            Ok(i) => {
                let i = with_map_key(tme, i);
                self.infos
                    .insert((db.to_string(), table.to_string()), i.clone());
                Ok(Some(i))
            }
            Err(MySqlError::NoTable { .. }) => Ok(None),
            Err(e @ MySqlError::Transient { .. }) => Err(End::Lost(e)),
            Err(e) => Err(End::Fatal(e)),
        }
    }

    async fn rows(
        &mut self,
        stream: &BinlogStream,
        re: &RowsEventData<'_>,
        pos: Position,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let op = match re {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
            _ => Op::Update,
        };
        if !self.src.opts.ops.contains(&op) {
            return Ok(());
        }
        let Some(dec) = self.decoder(stream, re.table_id()).await? else {
            return Ok(());
        };
        let w = dec.width();
        let before_bits: Option<Vec<bool>> = re
            .columns_before_image()
            .map(|b| (0..w).map(|i| b.get(i).is_some_and(|x| *x)).collect());
        let after_bits: Option<Vec<bool>> = re
            .columns_after_image()
            .map(|b| (0..w).map(|i| b.get(i).is_some_and(|x| *x)).collect());
        if matches!(re, RowsEventData::PartialUpdateRowsEvent(_)) {
            return Err(End::Fatal(MySqlError::Config(
                "partial JSON updates in the binlog: set binlog_row_value_options='' on the server"
                    .into(),
            )));
        }
        let data = re.rows_data();
        let mut at = 0usize;
        let fail = |m: String| {
            End::Fatal(MySqlError::Data {
                context: format!(
                    "decoding binlog rows of {} at ordinal {:?}",
                    dec.name, pos.ordinal
                ),
                message: m,
            })
        };
        while at < data.len() {
            let before = match &before_bits {
                Some(b) => {
                    let (v, used) = dec.decode_image(&data[at..], b).map_err(fail)?;
                    at += used;
                    Some(v)
                }
                None => None,
            };
            let after = match &after_bits {
                Some(b) => {
                    let (v, used) = dec.decode_image(&data[at..], b).map_err(fail)?;
                    at += used;
                    Some(v)
                }
                None => None,
            };
            let mut rec = match (op, before, after) {
                (Op::Delete, Some(b), _) => Record::new(Op::Delete, dec.schema.clone(), b),
                (Op::Update, b, Some(a)) => {
                    let mut r = Record::new(Op::Update, dec.schema.clone(), a);
                    r.before = b;
                    r
                }
                (_, _, Some(a)) => Record::new(Op::Insert, dec.schema.clone(), a),
                _ => return Err(fail("a row without an image".into())),
            };
            rec.position = Some(pos.clone());
            out.emit(rec).await?;
            self.src.stats.rows.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn lost(message: String) -> MySqlError {
    MySqlError::Transient {
        context: "reading the binlog stream".into(),
        message,
    }
}

fn bad_event(file: &str, pos: u64, e: std::io::Error) -> MySqlError {
    MySqlError::Data {
        context: format!("reading the binlog event ending at {file}:{pos}"),
        message: e.to_string(),
    }
}

#[async_trait]
impl Source for BinlogSource {
    async fn read(
        &self,
        _part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let core = |e: MySqlError| datatrace_core::Error::source("binlog", e);
        let committed = match from {
            Some(p) => from_position(&p).ok_or_else(|| {
                core(MySqlError::Config(format!(
                    "the checkpoint {} is not a binlog position",
                    p.state
                )))
            })?,
            None => self.start_position().await.map_err(core)?,
        };
        let mut reader = Reader {
            src: self,
            mariadb: committed
                .gtid
                .as_deref()
                .filter(|_| self.conn.info().is_mariadb)
                .and_then(|g| MariaDbGtidState::parse(g).ok())
                .unwrap_or_default(),
            mysql: committed
                .gtid
                .as_deref()
                .filter(|_| !self.conn.info().is_mariadb)
                .and_then(|g| MySqlGtidSet::parse(g).ok())
                .unwrap_or_default(),
            mysql_complete: !self.conn.info().is_mariadb && committed.gtid.is_some(),
            committed,
            emitted_upto: 0,
            infos: HashMap::new(),
            decoders: HashMap::new(),
            pending_mariadb: None,
            pending_mysql: None,
        };
        tracing::info!(file = %reader.committed.file, pos = reader.committed.pos, gtid = ?reader.committed.gtid, "binlog stream starting");
        let mut attempt = 0u32;
        let mut delay = Duration::from_millis(200);
        loop {
            let before = self.stats.events.load(Ordering::Relaxed);
            match reader.run_once(out).await {
                Ok(()) | Err(End::Stopped) => return Err(datatrace_core::Error::Cancelled),
                Err(End::Fatal(e)) => return Err(core(e)),
                Err(End::Lost(e)) => {
                    if self.stats.events.load(Ordering::Relaxed) > before + 1 {
                        attempt = 0;
                        delay = Duration::from_millis(200);
                    }
                    attempt += 1;
                    if attempt > self.opts.reconnect_attempts {
                        return Err(core(e));
                    }
                    tracing::warn!(error = %e, attempt, "binlog connection lost; reconnecting");
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    // Table ids may change on the new connection's table maps.
                    reader.decoders.clear();
                    let _ = out.flush().await;
                    tokio::select! {
                        _ = out.cancelled().cancelled() => return Err(datatrace_core::Error::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

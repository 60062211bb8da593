//! [`MySqlSource`]: a snapshot read of one table, split into key-range chunks read in
//! parallel, streaming with constant memory and resuming from the last acknowledged key.

mod read;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{Emitter, Part, Position, Record, Schema, Source, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tokio::sync::OnceCell;

use crate::chunk::{self, ChunkPosition, ChunkSpec};
use crate::config::{SourceOptions, ZeroDate};
use crate::connect::MySqlConnection;
use crate::error::{Context, MySqlError, Result};
use crate::schema::TableInfo;
use crate::snapshot::{BinlogPosition, Snapshot};
use crate::sql::{column_list, ident, key_after, key_at_most, table_ref};
use crate::types::{decode, to_param, DecodeError};

/// Tables below this estimate are counted exactly before planning chunks.
const COUNT_BELOW: u64 = 2_000_000;
/// Zero-date warnings logged per read before they are only counted.
const MAX_ZERO_DATE_WARNINGS: u64 = 20;

/// Reads one table (see the crate docs for chunking, resume and consistency).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use datatrace_mysql::{discover_tables, ConnectionConfig, MySqlConnection, MySqlSource, SourceOptions, TableSelector};
/// let conn = MySqlConnection::connect(&ConnectionConfig::new("mysql://root@127.0.0.1:3306/shop")).await?;
/// for table in discover_tables(&conn, &TableSelector::include(["shop.*"])).await? {
///     let source = Arc::new(MySqlSource::new(conn.clone(), table, SourceOptions::default())?);
///     // Pipeline::new(unit, source, sink).run().await?
/// #   let _ = source;
/// }
/// # Ok(()) }
/// ```
pub struct MySqlSource {
    conn: MySqlConnection,
    table: TableInfo,
    opts: SourceOptions,
    columns_sql: String,
    key_names: Vec<String>,
    snapshot: OnceCell<Snapshot>,
    recorded: std::sync::Mutex<Option<BinlogPosition>>,
    zero_dates: AtomicU64,
    /// Read and planning attempts retried after a transient failure (a lost connection).
    retries: AtomicU64,
    /// A copy inside a change stream (after a binlog gap): every row carries this position
    /// and no checkpoint is declared (the stream's checkpoints are binlog positions).
    stamp: Option<Position>,
}

impl MySqlSource {
    /// A source for `table`. Applies `opts.key` or `opts.key_columns` when they name its key.
    pub fn new(conn: MySqlConnection, table: TableInfo, opts: SourceOptions) -> Result<Self> {
        opts.validate()?;
        let table = table
            .with_key_settings(&opts.key_columns, &opts.key)?
            .with_zero_dates(opts.zero_date);
        if table.key.is_empty() {
            tracing::warn!(
                table = %table.qualified_name(),
                "table has no primary key: it is read in one sequential scan, a stopped copy restarts from the beginning, and changes are applied by matching whole rows; name the columns that identify a row in the source's `key` setting to change that"
            );
        }
        let names: Vec<&str> = table
            .schema
            .columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        Ok(MySqlSource {
            columns_sql: column_list(&names),
            key_names: table.key_names(),
            conn,
            table,
            opts,
            snapshot: OnceCell::new(),
            recorded: std::sync::Mutex::new(None),
            zero_dates: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            stamp: None,
        })
    }

    /// A copy read inside a change stream: rows carry `position` (its ordinal orders them
    /// before the changes streamed after it) and no checkpoint is declared.
    pub(crate) fn stamped(mut self, position: Position) -> Self {
        self.stamp = Some(position);
        self
    }

    /// The table read.
    pub fn table(&self) -> &TableInfo {
        &self.table
    }

    /// The binlog position of the consistent snapshot (after [`MySqlSource::begin_snapshot`],
    /// [`Source::split`] or a read; on a resumed unit, the position recorded by the first run).
    pub fn snapshot_position(&self) -> Option<BinlogPosition> {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Opens the consistent snapshot now (a no-op without `consistent_snapshot` or when
    /// already open) and returns its binlog position.
    pub async fn begin_snapshot(&self) -> Result<Option<BinlogPosition>> {
        if !self.opts.consistent_snapshot {
            return Ok(None);
        }
        let snap = self
            .snapshot
            .get_or_try_init(|| {
                Snapshot::open(&self.conn, self.opts.snapshot_connections, self.name())
            })
            .await?;
        let mut rec = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if rec.is_none() {
            *rec = snap.position.clone();
        }
        Ok(rec.clone())
    }

    /// Ends the snapshot transactions (also happens when the source is dropped).
    pub async fn end_snapshot(&self) {
        if let Some(s) = self.snapshot.get() {
            s.close().await;
        }
    }

    /// Zero dates met so far (read as NULL or kept as text).
    pub fn zero_dates_seen(&self) -> u64 {
        self.zero_dates.load(Ordering::Relaxed)
    }

    /// Reads and plannings of this source tried again after a transient failure (a killed
    /// session, a restarted server, a dropped link), over all its parts so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn name(&self) -> String {
        self.table.qualified_name()
    }

    fn table_sql(&self) -> String {
        table_ref(&self.table.database, &self.table.name)
    }

    async fn planning_conn(&self) -> Result<Conn> {
        self.conn.get().await
    }

    async fn count_rows(&self, c: &mut Conn) -> Result<u64> {
        if self.table.estimated_rows >= COUNT_BELOW {
            return Ok(self.table.estimated_rows);
        }
        let n: Option<u64> = c
            .query_first(format!("SELECT COUNT(*) FROM {}", self.table_sql()))
            .await
            .ctx(|| format!("counting rows of {}", self.name()))?;
        Ok(n.unwrap_or(0))
    }

    async fn plan(&self, max_parts: usize) -> Result<Vec<ChunkSpec>> {
        if self.key_names.is_empty() {
            return Ok(vec![ChunkSpec {
                scan: true,
                ..Default::default()
            }]);
        }
        let mut c = self.planning_conn().await?;
        let rows = self.count_rows(&mut c).await?;
        let n = chunk::chunk_count(rows, self.opts.chunk_rows, max_parts);
        if n <= 1 {
            return Ok(vec![ChunkSpec::default()]);
        }
        let ctx = || format!("planning chunks of {}", self.name());
        if self.key_names.len() == 1 {
            let k = ident(&self.key_names[0]);
            let row: Option<Row> = c
                .exec_first(
                    format!("SELECT MIN({k}), MAX({k}) FROM {}", self.table_sql()),
                    (),
                )
                .await
                .ctx(ctx)?;
            let kind = self.table.kinds[self.table.key[0]];
            let bounds = row.map(|mut r| {
                let lo = r.take::<mysql_async::Value, _>(0).map(|v| decode(kind, v));
                let hi = r.take::<mysql_async::Value, _>(1).map(|v| decode(kind, v));
                (lo, hi)
            });
            if let Some((Some(Ok(lo)), Some(Ok(hi)))) = bounds {
                if let (Some(a), Some(b)) = (chunk::as_i128(&lo), chunk::as_i128(&hi)) {
                    if chunk::is_dense(a, b, rows) {
                        let bs = chunk::int_boundaries(a, b, n)
                            .into_iter()
                            .map(|x| vec![chunk::int_value(x, &lo)])
                            .collect();
                        return Ok(chunk::specs_from_boundaries(bs));
                    }
                }
            } else {
                return Ok(vec![ChunkSpec::default()]);
            }
        }
        // Walk the key index: a boundary every `step` rows.
        let step = rows.div_ceil(n as u64).max(1);
        let mut boundaries: Vec<Vec<Value>> = Vec::new();
        let cols = column_list(&self.key_names);
        while boundaries.len() + 1 < n {
            let (cond, params) = match boundaries.last() {
                Some(b) => {
                    let (s, p) = key_after(&self.key_names, b);
                    (format!("WHERE {s}"), p)
                }
                None => (String::new(), Vec::new()),
            };
            let sql = format!(
                "SELECT {cols} FROM {} {cond} ORDER BY {cols} LIMIT 1 OFFSET {}",
                self.table_sql(),
                step - 1
            );
            let params: Vec<mysql_async::Value> = params.iter().map(to_param).collect();
            let row: Option<Row> = c.exec_first(sql, params).await.ctx(ctx)?;
            let Some(row) = row else { break };
            let key = self.decode_key(row)?;
            boundaries.push(key);
        }
        Ok(chunk::specs_from_boundaries(boundaries))
    }

    fn decode_key(&self, row: Row) -> Result<Vec<Value>> {
        let values = row.unwrap();
        values
            .into_iter()
            .zip(&self.table.key)
            .map(|(v, &i)| match decode(self.table.kinds[i], v) {
                Err(DecodeError::ZeroDate(text)) => Ok(Value::String(text)),
                other => other.map_err(|e| MySqlError::Data {
                    context: format!(
                        "table {}, key column {}",
                        self.name(),
                        self.table.schema.columns()[i].name
                    ),
                    message: format!("{e:?}"),
                }),
            })
            .collect()
    }

    /// Builds the query of one page after `after` within `spec`.
    fn page_query(&self, spec: &ChunkSpec, after: Option<&[Value]>) -> (String, Vec<Value>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(lo) = after {
            let (s, p) = key_after(&self.key_names, lo);
            conds.push(s);
            params.extend(p);
        }
        if let Some(hi) = &spec.hi {
            let (s, p) = key_at_most(&self.key_names, hi);
            conds.push(s);
            params.extend(p);
        }
        if let Some(f) = &self.opts.filter {
            conds.push(format!("({f})"));
        }
        let mut sql = format!("SELECT {} FROM {}", self.columns_sql, self.table_sql());
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        if !spec.scan {
            sql.push_str(&format!(
                " ORDER BY {} LIMIT {}",
                column_list(&self.key_names),
                self.opts.page_rows
            ));
        }
        (sql, params)
    }

    /// Turns a row into a record, applying the zero-date policy.
    fn to_record(&self, row: Row, schema: &Arc<Schema>) -> Result<Record> {
        let values = row.unwrap();
        let mut out = Vec::with_capacity(values.len());
        let mut problems: Vec<(usize, DecodeError)> = Vec::new();
        for (i, v) in values.into_iter().enumerate() {
            let kind = self.table.kinds[i];
            match decode(kind, v) {
                Ok(v) => out.push(v),
                // A key must stay comparable for keyset reads: zero dates in key columns
                // are always kept as text.
                Err(DecodeError::ZeroDate(text)) if self.table.key.contains(&i) => {
                    self.zero_dates.fetch_add(1, Ordering::Relaxed);
                    out.push(Value::String(text));
                }
                Err(DecodeError::ZeroDate(text)) if self.opts.zero_date != ZeroDate::Error => {
                    self.zero_dates.fetch_add(1, Ordering::Relaxed);
                    if self.opts.zero_date == ZeroDate::Keep {
                        out.push(Value::String(text));
                    } else {
                        out.push(Value::Null);
                        problems.push((i, DecodeError::ZeroDate(text)));
                    }
                }
                Err(e) => {
                    out.push(Value::Null);
                    problems.push((i, e));
                }
            }
        }
        let record = Record::read(schema.clone(), out);
        for (i, e) in problems {
            let column = &schema.columns()[i].name;
            let key = record.key_string(",");
            match e {
                DecodeError::ZeroDate(text) if self.opts.zero_date == ZeroDate::Error => {
                    return Err(MySqlError::Data {
                        context: format!("table {}, column {column}, key {key}", self.name()),
                        message: format!("zero date {text} (zero_date = \"error\")"),
                    })
                }
                DecodeError::ZeroDate(text) => {
                    if self.zero_dates.load(Ordering::Relaxed) <= MAX_ZERO_DATE_WARNINGS {
                        tracing::warn!(table = %self.name(), %column, %key, value = %text, "zero date read as NULL");
                    }
                }
                DecodeError::Invalid(msg) => {
                    return Err(MySqlError::Data {
                        context: format!("table {}, column {column}, key {key}", self.name()),
                        message: msg,
                    })
                }
            }
        }
        Ok(record)
    }
}

impl From<datatrace_core::Stopped> for MySqlError {
    fn from(_: datatrace_core::Stopped) -> Self {
        MySqlError::Driver {
            context: "pipeline".into(),
            message: "stopped".into(),
        }
    }
}

#[async_trait]
impl Source for MySqlSource {
    /// Snapshot rows have distinct keys: several writers may write them in any order.
    fn ordered(&self) -> bool {
        false
    }

    async fn schema(&self) -> datatrace_core::Result<Option<Arc<Schema>>> {
        Ok(Some(self.table.schema.clone()))
    }

    /// A table without a key is read in one scan, again from its start after a stop.
    fn resumes_exactly(&self) -> bool {
        !self.key_names.is_empty()
    }

    async fn split(&self, max_parts: usize) -> datatrace_core::Result<Vec<Part>> {
        // Planning retries lost connections like reading does.
        let mut budget = read::Budget::new(self.opts.reconnect);
        let (position, specs) = loop {
            let planned = match self.begin_snapshot().await {
                Ok(position) => self.plan(max_parts).await.map(|specs| (position, specs)),
                Err(e) => Err(e),
            };
            match planned {
                Ok(p) => break p,
                Err(e) if e.is_transient() => match budget.failed(0) {
                    Some(delay) => {
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(table = %self.name(), attempt = budget.attempts(), error = %e, "planning failed; trying again");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(self.core_err(e)),
                },
                Err(e) => return Err(self.core_err(e)),
            }
        };
        tracing::info!(table = %self.name(), parts = specs.len(), key = ?self.key_names, "planned chunks");
        Ok(specs
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                s.snapshot = position.clone();
                s.into_part(i)
            })
            .collect())
    }

    async fn estimate_rows(&self) -> Option<u64> {
        Some(self.table.estimated_rows)
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let damaged = |e| datatrace_core::Error::DamagedCheckpoint {
            unit: self.name(),
            source: Box::new(e),
        };
        let spec = ChunkSpec::from_part(part).map_err(damaged)?;
        let resume: Option<ChunkPosition> = match &from {
            Some(p) => Some(
                p.state_as(&part.id, "a MySQL chunk position")
                    .map_err(damaged)?,
            ),
            None => None,
        };
        if spec.snapshot.is_some() {
            let mut rec = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            if rec.is_none() {
                *rec = spec.snapshot.clone();
            }
        }
        let spec = if self.key_names.is_empty() {
            ChunkSpec { scan: true, ..spec }
        } else {
            spec
        };
        match self.read_part(&spec, resume, out).await {
            Ok(()) => Ok(()),
            Err(_) if out.is_stopped() => Err(datatrace_core::Error::Cancelled),
            Err(e) => Err(self.core_err(e)),
        }
    }
}

impl MySqlSource {
    fn core_err(&self, e: MySqlError) -> datatrace_core::Error {
        datatrace_core::Error::source(self.name(), e)
    }
}

impl Drop for MySqlSource {
    fn drop(&mut self) {
        if let Some(s) = self.snapshot.take() {
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move { s.close().await });
            }
        }
    }
}

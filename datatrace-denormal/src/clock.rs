//! Reads that know where they stand in the binlog: every batch of documents is built inside
//! one `START TRANSACTION WITH CONSISTENT SNAPSHOT` whose binlog position MariaDB reports
//! (`binlog_snapshot_file` / `binlog_snapshot_position`): the snapshot holds every
//! transaction committed before that position and none after it. The position's ordinal
//! (see `datatrace_mysql::binlog::position`) is the external version the batch's documents
//! are written with.
//!
//! [`Clock::begin`] takes the least ordinal the snapshot must reach (the changes that asked
//! for the rebuild): a transaction's events reach a replica when it is written to the
//! binlog, a moment before its rows are visible to other sessions, so a snapshot taken
//! right after may not hold it yet. Such a snapshot is rolled back and taken again until
//! it does (see [`crate::stream`] for why this makes the index exact).
//!
//! Without binary logging the snapshot has no position: documents are then written
//! without versions (full copies only; change streams need the binlog anyway). Oracle
//! MySQL does not report a snapshot's binlog position: there, full copies work without
//! versions and change streams of documents are refused at planning (see the crate docs).

use std::time::{Duration, Instant};

use datatrace_core::Value;
use datatrace_mysql::binlog::position::ordinal;
use datatrace_mysql::types::{decode, to_param, ColumnKind, DecodeError};
use datatrace_mysql::{MySqlConnection, MySqlError, ZeroDate};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row};

use crate::error::{DenormalError, InDocument, Result};
use crate::query::Statement;

/// How long [`Clock::begin`] waits for a snapshot to reach the required position.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Opens read transactions with known binlog positions (see the module docs).
#[derive(Debug, Clone)]
pub struct Clock {
    conn: MySqlConnection,
    document: String,
    zero_date: ZeroDate,
}

/// One read transaction: a consistent snapshot and its binlog ordinal.
pub struct ReadTxn {
    conn: Option<Conn>,
    version: Option<u64>,
    document: String,
    zero_date: ZeroDate,
}

impl Clock {
    /// A clock over `conn` for the reads of `document`; `zero_date` says what zero dates
    /// become.
    pub fn new(conn: MySqlConnection, document: &str, zero_date: ZeroDate) -> Clock {
        Clock {
            conn,
            document: document.to_string(),
            zero_date,
        }
    }

    /// The connection.
    pub fn connection(&self) -> &MySqlConnection {
        &self.conn
    }

    /// Opens a snapshot whose ordinal is at least `need` (when given), waiting for the
    /// server to make the required transactions visible (see the module docs).
    pub async fn begin(&self, need: Option<u64>) -> Result<ReadTxn> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let ctx = || "opening a consistent snapshot".to_string();
        loop {
            let mut c = self.conn.get().await.in_doc(&self.document)?;
            let r: std::result::Result<Vec<(String, String)>, MySqlError> = async {
                c.query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .await
                    .map_err(|e| MySqlError::from_driver(ctx(), e))?;
                c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .await
                    .map_err(|e| MySqlError::from_driver(ctx(), e))?;
                c.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
                    .await
                    .map_err(|e| MySqlError::from_driver(ctx(), e))
            }
            .await;
            let rows = r.in_doc(&self.document)?;
            let get = |k: &str| {
                rows.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
            };
            let version = match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
                (Some(f), Some(p)) if !f.is_empty() => p.parse::<u64>().ok().map(|p| ordinal(f, p)),
                _ => None,
            };
            let reached = match (need, version) {
                (Some(n), Some(v)) => v >= n,
                _ => true,
            };
            let txn = ReadTxn {
                conn: Some(c),
                version,
                document: self.document.clone(),
                zero_date: self.zero_date,
            };
            if reached {
                return Ok(txn);
            }
            txn.finish().await?;
            if started.elapsed() > MAX_WAIT {
                return Err(DenormalError::Data {
                    document: self.document.clone(),
                    context: "consistent snapshot".into(),
                    message: format!(
                        "the server's snapshots stay behind the binlog position (ordinal {}) of changes already streamed after {} s",
                        need.unwrap_or_default(),
                        MAX_WAIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

impl ReadTxn {
    /// The snapshot's binlog ordinal: the external version of what is built from it.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until finish")
    }

    /// Runs `st` and decodes its rows with `kinds` (one per result column); `what` names
    /// the read in errors (`reading order_items of orders`).
    pub async fn rows(
        &mut self,
        st: &Statement,
        kinds: &[ColumnKind],
        what: &str,
    ) -> Result<Vec<Vec<Value>>> {
        let doc = self.document.clone();
        let zero = self.zero_date;
        let params: Vec<mysql_async::Value> = st.params.iter().map(to_param).collect();
        let params = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params)
        };
        let ctx = || what.to_string();
        let mut result = self
            .conn()
            .exec_iter(st.sql.as_str(), params)
            .await
            .map_err(|e| MySqlError::from_driver(ctx(), e))
            .in_doc(&doc)?;
        let mut out = Vec::new();
        let stream = result
            .stream::<Row>()
            .await
            .map_err(|e| MySqlError::from_driver(ctx(), e))
            .in_doc(&doc)?;
        let Some(mut stream) = stream else {
            return Ok(out);
        };
        while let Some(row) = stream.next().await {
            let row = row
                .map_err(|e| MySqlError::from_driver(ctx(), e))
                .in_doc(&doc)?;
            let mut values = Vec::with_capacity(kinds.len());
            for (i, v) in row.unwrap().into_iter().enumerate() {
                let kind = kinds.get(i).copied().unwrap_or(ColumnKind::Text);
                values.push(match decode(kind, v) {
                    Ok(v) => v,
                    Err(DecodeError::ZeroDate(text)) => match zero {
                        ZeroDate::Keep => Value::String(text),
                        ZeroDate::Null => Value::Null,
                        ZeroDate::Error => {
                            return Err(DenormalError::Data {
                                document: doc,
                                context: what.to_string(),
                                message: format!("zero date {text} (zero_date = \"error\")"),
                            })
                        }
                    },
                    Err(DecodeError::Invalid(m)) => {
                        return Err(DenormalError::Data {
                            document: doc,
                            context: what.to_string(),
                            message: m,
                        })
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    /// Ends the transaction and hands the session back.
    pub async fn finish(mut self) -> Result<()> {
        if let Some(mut c) = self.conn.take() {
            c.query_drop("COMMIT")
                .await
                .map_err(|e| MySqlError::from_driver("ending a snapshot", e))
                .in_doc(&self.document)?;
        }
        Ok(())
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        if let Some(mut c) = self.conn.take() {
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = c.query_drop("ROLLBACK").await;
                });
            }
        }
    }
}

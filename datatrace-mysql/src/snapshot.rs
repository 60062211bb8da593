//! Consistent snapshots: several sessions that all see one point in time, and the binlog
//! position of that point (where change data capture continues).
//!
//! The approach is mysqldump's `--single-transaction --master-data` (and Debezium's): take
//! `FLUSH TABLES WITH READ LOCK` for a moment, start `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT` on every reader session, read the binlog position (`SHOW MASTER STATUS`, and on
//! MariaDB `BINLOG_GTID_POS(file, pos)`), then `UNLOCK TABLES`. Writers wait only for the
//! few milliseconds this takes. No writes can commit while the lock is held, so every
//! session's snapshot and the position are the same point.
//!
//! The lock waits at most 10 s (`lock_wait_timeout`) for running statements to finish (writers
//! queue behind a waiting FTWRL). Without the RELOAD privilege, or when the lock cannot be
//! had in time, the snapshot falls back to a single
//! session: MariaDB reports the binlog position of that session's snapshot itself
//! (`binlog_snapshot_file` / `binlog_snapshot_position` status), so it stays exact, only
//! chunks are then read one after the other.

use std::sync::Mutex;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::MySqlConnection;
use crate::error::{Context, MySqlError, Result};

/// A point of the binary log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// The binlog file name (`binlog.000003`).
    pub file: String,
    /// The offset in that file.
    pub pos: u64,
    /// The GTID state at that point, when the server has GTIDs (`0-1-48` on MariaDB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

/// Sessions inside one consistent snapshot, lent out one reader at a time.
pub(crate) struct Snapshot {
    conn: MySqlConnection,
    table: String,
    conns: Mutex<Vec<Conn>>,
    /// Sessions lost (and replaced by sessions in a new snapshot).
    lost: std::sync::atomic::AtomicU64,
    permits: std::sync::Arc<Semaphore>,
    /// The binlog position of the snapshot (None when binary logging is off).
    pub position: Option<BinlogPosition>,
}

/// A session of a snapshot, returned when dropped.
pub(crate) struct Lease<'a> {
    snap: &'a Snapshot,
    conn: Option<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until drop")
    }
}
impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until drop")
    }
}
impl Lease<'_> {
    /// The session failed (a lost connection): it is dropped instead of being lent again,
    /// and the next lease opens a replacement.
    pub(crate) fn broken(mut self) {
        self.conn.take();
        self.snap
            .lost
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.snap
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
        }
    }
}

/// Seconds `FLUSH TABLES WITH READ LOCK` may wait for running statements.
const LOCK_WAIT_SECS: u32 = 10;

const START: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

impl Snapshot {
    /// Opens `n` sessions in one consistent snapshot.
    pub(crate) async fn open(conn: &MySqlConnection, n: usize, table: String) -> Result<Snapshot> {
        let n = n.max(1);
        let ctx = || "opening a consistent snapshot".to_string();
        let mut lock = conn.dedicated().await?;
        lock.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .ctx(ctx)?;
        // FLUSH TABLES WITH READ LOCK waits for running statements, and writers queue
        // behind it meanwhile: give up after a few seconds rather than stall the server.
        lock.query_drop(format!("SET SESSION lock_wait_timeout = {LOCK_WAIT_SECS}"))
            .await
            .ctx(ctx)?;
        let (conns, position) = match lock.query_drop("FLUSH TABLES WITH READ LOCK").await {
            Ok(()) => {
                let result = Self::open_locked(conn, &mut lock, n).await;
                let unlocked = lock.query_drop("UNLOCK TABLES").await.ctx(ctx);
                let r = result?;
                unlocked?;
                r
            }
            Err(e) => {
                let e = MySqlError::from_driver(ctx(), e);
                if !matches!(
                    e,
                    MySqlError::NoPrivilege { .. } | MySqlError::Transient { .. }
                ) {
                    return Err(e);
                }
                tracing::warn!(error = %e, "FLUSH TABLES WITH READ LOCK failed (no RELOAD privilege or lock wait timeout): the consistent snapshot uses one session");
                lock.query_drop(START).await.ctx(ctx)?;
                let position = snapshot_status(&mut lock).await?;
                (vec![lock], position)
            }
        };
        if position.is_none() {
            tracing::warn!("binary logging is off: the snapshot has no binlog position");
        }
        let count = conns.len();
        Ok(Snapshot {
            conn: conn.clone(),
            table,
            lost: std::sync::atomic::AtomicU64::new(0),
            conns: Mutex::new(conns),
            permits: std::sync::Arc::new(Semaphore::new(count)),
            position,
        })
    }

    async fn open_locked(
        conn: &MySqlConnection,
        lock: &mut Conn,
        n: usize,
    ) -> Result<(Vec<Conn>, Option<BinlogPosition>)> {
        let ctx = || "opening a consistent snapshot".to_string();
        let mut conns = Vec::new();
        for _ in 0..n {
            let mut c = conn.dedicated().await?;
            c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await
                .ctx(ctx)?;
            c.query_drop(START).await.ctx(ctx)?;
            conns.push(c);
        }
        let status: Option<Row> = lock.query_first("SHOW MASTER STATUS").await.ctx(ctx)?;
        let position = match status {
            None => None,
            Some(row) => {
                let file: Option<String> = row.get(0);
                let pos: Option<u64> = row.get(1);
                match (file, pos) {
                    (Some(file), Some(pos)) => {
                        let gtid = gtid_at(lock, conn.info().is_mariadb, &file, pos).await;
                        Some(BinlogPosition { file, pos, gtid })
                    }
                    _ => None,
                }
            }
        };
        Ok((conns, position))
    }

    /// Borrows a session (waits while all are in use).
    pub(crate) async fn lease(&self) -> Result<Lease<'_>> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| MySqlError::Config("snapshot closed".into()))?;
        let pooled = self.conns.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.replacement().await?,
        };
        Ok(Lease {
            snap: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// A session in a new consistent snapshot, in place of a lost one. Its rows are as of
    /// now, not as of the snapshot's position: a stream started at that position replays
    /// the changes since over them (`snapshot+cdc`), a plain copy is told in a warning.
    async fn replacement(&self) -> Result<Conn> {
        let ctx = || format!("reopening a consistent snapshot of {}", self.table);
        let mut c = self.conn.dedicated().await?;
        c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .ctx(ctx)?;
        c.query_drop(START).await.ctx(ctx)?;
        tracing::warn!(
            table = %self.table,
            lost = self.lost.load(std::sync::atomic::Ordering::Relaxed),
            "a session of the consistent snapshot was lost: reading on in a new snapshot, so the rest of the table is read as of now, not as of the snapshot's binlog position (exact with snapshot+cdc, whose stream replays the changes since that position)"
        );
        Ok(c)
    }

    /// Ends the snapshot transactions and closes the sessions.
    pub(crate) async fn close(&self) {
        let conns: Vec<Conn> =
            std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for mut c in conns {
            let _ = c.query_drop("COMMIT").await;
            let _ = c.disconnect().await;
        }
    }
}

async fn gtid_at(lock: &mut Conn, mariadb: bool, file: &str, pos: u64) -> Option<String> {
    let r: std::result::Result<Option<Option<String>>, _> = if mariadb {
        lock.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
            .await
    } else {
        lock.query_first("SELECT @@GLOBAL.gtid_executed").await
    };
    r.ok().flatten().flatten().filter(|g| !g.is_empty())
}

/// MariaDB's position of this session's consistent snapshot.
async fn snapshot_status(c: &mut Conn) -> Result<Option<BinlogPosition>> {
    let rows: Vec<(String, String)> = c
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .ctx(|| "reading the snapshot's binlog position".to_string())?;
    let get = |k: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
        (Some(file), Some(pos)) if !file.is_empty() => {
            let pos: u64 = pos.parse().unwrap_or(0);
            let gtid = gtid_at(c, true, &file, pos).await;
            Ok(Some(BinlogPosition { file, pos, gtid }))
        }
        _ => Ok(None),
    }
}

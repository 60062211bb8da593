//! The retention guard: how long until the server may purge the binlog a stream still needs.
//!
//! The server removes a binlog file once it is older than `binlog_expire_logs_seconds`
//! (`expire_logs_days` on older servers), by the file's last write; never the file it is
//! writing. A stream at position P in file F needs F and every later file. F was last written
//! no earlier than P's commit time, so F stays at least until `commit time + expiry`: the
//! time left reported is that lower bound (the warning comes early rather than late), or
//! nothing when F is the file being written. A running stream checks every
//! `retention_check_secs` and logs a warning below `retention_warn_secs`; the figure is also
//! the unit's `retention_secs` in progress events, the server's task view and its metric
//! `datatrace_unit_binlog_retention_seconds`. `datatrace validate` reports it for a stopped
//! job's checkpoint.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::gap::binary_logs;
use crate::connect::MySqlConnection;
use crate::error::{Context, Result};
use crate::snapshot::BinlogPosition;

pub use super::stats::NOT_AT_RISK;

/// Where a stream's position stands against the server's binlog retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The position checked.
    pub position: BinlogPosition,
    /// The server's expiry in seconds (0: binlogs are never purged by age).
    pub expire_secs: u64,
    /// Seconds until the file at the position may be purged, at least (0: already gone or
    /// due); `None` when it is the file being written or the server never purges by age.
    pub time_left_secs: Option<i64>,
    /// Binlog bytes from the position to the end of the newest file: what the stream still
    /// has to read.
    pub bytes_behind: u64,
    /// The oldest binlog file on the server.
    pub oldest: Option<String>,
    /// The position's file is no longer on the server (a binlog gap).
    pub purged: bool,
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.position;
        write!(f, "binlog position {}:{}", p.file, p.pos)?;
        if self.purged {
            return write!(
                f,
                " is no longer on the server (oldest: {})",
                self.oldest.as_deref().unwrap_or("none")
            );
        }
        match self.time_left_secs {
            Some(s) => write!(
                f,
                ": its binlog may be purged in {} (binlog_expire_logs_seconds = {}), ",
                human(s),
                self.expire_secs
            )?,
            None => write!(f, ": not at risk of purging, ")?,
        }
        write!(f, "{} bytes of binlog behind", self.bytes_behind)
    }
}

/// `3 h 20 min`, `45 min`, `12 s`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The server's binlog expiry in seconds (0: none).
async fn expire_secs(conn: &MySqlConnection) -> Result<u64> {
    let mut c = conn.get().await?;
    let secs: std::result::Result<Option<u64>, _> = c
        .query_first("SELECT @@GLOBAL.binlog_expire_logs_seconds")
        .await;
    if let Ok(Some(s)) = secs {
        if s > 0 {
            return Ok(s);
        }
    }
    let days: Option<f64> = c
        .query_first("SELECT @@GLOBAL.expire_logs_days")
        .await
        .ctx(|| "reading expire_logs_days".to_string())?;
    Ok(days.map_or(0, |d| (d.max(0.0) * 86_400.0) as u64))
}

/// Checks `pos` (committed at `commit_ms`, ms since the epoch, when known).
pub async fn retention(
    conn: &MySqlConnection,
    pos: &BinlogPosition,
    commit_ms: Option<i64>,
) -> Result<Retention> {
    let files = binary_logs(conn).await?;
    let expire = expire_secs(conn).await?;
    let oldest = files.first().map(|f| f.name.clone());
    let at = files.iter().position(|f| f.name == pos.file);
    let mut r = Retention {
        position: pos.clone(),
        expire_secs: expire,
        time_left_secs: None,
        bytes_behind: 0,
        oldest,
        purged: at.is_none() && !pos.file.is_empty(),
    };
    let Some(at) = at else {
        if r.purged {
            r.time_left_secs = Some(0);
        }
        return Ok(r);
    };
    r.bytes_behind = files[at].size.saturating_sub(pos.pos)
        + files[at + 1..].iter().map(|f| f.size).sum::<u64>();
    let current = at + 1 == files.len();
    if !current && expire > 0 {
        let now = now_secs();
        let written = commit_ms.map_or(now, |ms| ms.div_euclid(1000));
        let expire = i64::try_from(expire).unwrap_or(i64::MAX);
        r.time_left_secs = Some(written.saturating_add(expire).saturating_sub(now).max(0));
    }
    Ok(r)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The committed position of a running stream and its commit time, shared with its guard.
pub(crate) type Committed = Arc<Mutex<Option<(BinlogPosition, Option<i64>)>>>;

/// The guard of a running stream: checks every `every`, publishes the time left in `out`
/// and warns below `warn`. Runs until dropped (aborted).
pub(crate) async fn guard(
    conn: MySqlConnection,
    committed: Committed,
    out: Arc<super::stats::StreamStats>,
    every: Duration,
    warn: Duration,
) {
    loop {
        let now = committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((pos, ts)) = now {
            match retention(&conn, &pos, ts).await {
                Ok(r) => {
                    let left = r.time_left_secs.unwrap_or(NOT_AT_RISK);
                    out.retention_secs.store(left, Ordering::Relaxed);
                    if r.time_left_secs.is_some_and(|s| s < warn.as_secs() as i64) {
                        tracing::warn!(
                            time_left_secs = left,
                            "binlog retention: {r}: the stream must catch up before then, or the server's binlog_expire_logs_seconds be raised, else a binlog gap follows"
                        );
                    }
                }
                Err(e) => tracing::debug!(error = %e, "binlog retention check failed"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human(12), "12 s");
        assert_eq!(human(45 * 60), "45 min");
        assert_eq!(human(3 * 3600 + 20 * 60), "3 h 20 min");
        assert_eq!(human(2 * 86_400 + 3 * 3600), "2 d 3 h");
        assert_eq!(human(-5), "0 s");
    }
}

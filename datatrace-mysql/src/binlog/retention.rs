//! The retention guard: how long until the server may purge the binlog a stream still needs.
//!
//! By age: the server removes a binlog file once it is older than
//! `binlog_expire_logs_seconds` (`expire_logs_days` on older servers), by the file's last
//! write; never the file it is writing. A stream at position P in file F needs F and every
//! later file. F was last written no earlier than P's commit time, so F stays at least until
//! `commit time + expiry`: that lower bound is the time left by age (the warning comes early
//! rather than late), or nothing when F is the file being written.
//!
//! By size: servers that also cap the binlogs' total size (MariaDB 11.4+:
//! `max_binlog_total_size`, alias `binlog_space_limit`; read only when the server has it)
//! purge the oldest files once the total passes the cap, so F goes once F and the later files
//! together pass it. The room left (cap minus those bytes) divided by the server's binlog
//! write rate is the time left by size; the rate is estimated from the binlog written since
//! P's commit (the bytes behind over the time since that commit). The time left reported is
//! the smaller of the two.
//!
//! A running stream checks every `retention_check_secs` and logs a warning below
//! `retention_warn_secs`; the figure is also the unit's `retention_secs` in progress events,
//! the server's task view and its metric `datatrace_unit_binlog_retention_seconds`.
//! `datatrace validate` reports it for a stopped job's checkpoint.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::gap::{binary_logs, BinlogFile};
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
    /// due): the smaller of the time left by age and by size; `None` when it is the file
    /// being written or the server purges neither by age nor (at the present write rate) by
    /// size.
    pub time_left_secs: Option<i64>,
    /// Binlog bytes from the position to the end of the newest file: what the stream still
    /// has to read.
    pub bytes_behind: u64,
    /// The server's cap on the binlogs' total size in bytes (`max_binlog_total_size`,
    /// MariaDB 11.4+; 0: none, or a server without the setting).
    pub size_limit: u64,
    /// The bytes that count against [`size_limit`](Self::size_limit) while the position's
    /// file is kept: that whole file and every later one.
    pub bytes_kept: u64,
    /// The server's binlog write rate in bytes per second (rounded), as estimated from the
    /// binlog written since the position's commit (`None` without a commit time).
    pub write_rate: Option<u64>,
    /// Of [`time_left_secs`](Self::time_left_secs), the time left by size (`None`: no cap,
    /// no writes, or no rate to tell).
    pub size_time_left_secs: Option<i64>,
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
            Some(s) if self.by_size() => write!(
                f,
                ": its binlog may be purged in {} (max_binlog_total_size = {}: {} bytes kept \
                 from its file on, {} bytes/s written), ",
                human(s),
                self.size_limit,
                self.bytes_kept,
                self.write_rate.unwrap_or(0)
            )?,
            Some(s) => write!(
                f,
                ": its binlog may be purged in {} (binlog_expire_logs_seconds = {}), ",
                human(s),
                self.expire_secs
            )?,
            None => write!(f, ": not at risk of purging, ")?,
        }
        write!(f, "{} bytes of binlog behind", self.bytes_behind)?;
        if self.size_limit > 0 && !self.by_size() {
            write!(
                f,
                ", {} of max_binlog_total_size = {} kept",
                self.bytes_kept, self.size_limit
            )?;
        }
        Ok(())
    }
}

impl Retention {
    /// Whether the time left is the one by size (the server's `max_binlog_total_size`) rather
    /// than by age.
    pub fn by_size(&self) -> bool {
        self.size_time_left_secs.is_some() && self.size_time_left_secs == self.time_left_secs
    }

    /// The server setting that bounds the time left: `max_binlog_total_size` or
    /// `binlog_expire_logs_seconds`.
    pub fn setting(&self) -> &'static str {
        if self.by_size() {
            "max_binlog_total_size"
        } else {
            "binlog_expire_logs_seconds"
        }
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

/// The server's cap on the binlogs' total size in bytes (0: none). Only servers that have
/// the setting are asked for it (MariaDB 11.4+; MariaDB 10.x and MySQL have none): a
/// `SHOW GLOBAL VARIABLES` filter, which returns no row elsewhere instead of failing.
async fn size_limit(conn: &MySqlConnection) -> Result<u64> {
    let mut c = conn.get().await?;
    let rows: Vec<(String, String)> = c
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
             ('max_binlog_total_size', 'binlog_space_limit')",
        )
        .await
        .ctx(|| "reading max_binlog_total_size".to_string())?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0))
}

/// Checks `pos` (committed at `commit_ms`, ms since the epoch, when known).
pub async fn retention(
    conn: &MySqlConnection,
    pos: &BinlogPosition,
    commit_ms: Option<i64>,
) -> Result<Retention> {
    let files = binary_logs(conn).await?;
    let expire = expire_secs(conn).await?;
    let limit = size_limit(conn).await?;
    Ok(assess(pos, &files, expire, limit, commit_ms, now_secs()))
}

/// [`retention`] from what the server said: its binlog files (oldest first), expiry and size
/// cap (0: none), at `now` (seconds since the epoch).
pub fn assess(
    pos: &BinlogPosition,
    files: &[BinlogFile],
    expire: u64,
    limit: u64,
    commit_ms: Option<i64>,
    now: i64,
) -> Retention {
    let oldest = files.first().map(|f| f.name.clone());
    let at = files.iter().position(|f| f.name == pos.file);
    let mut r = Retention {
        position: pos.clone(),
        expire_secs: expire,
        time_left_secs: None,
        bytes_behind: 0,
        size_limit: limit,
        bytes_kept: 0,
        write_rate: None,
        size_time_left_secs: None,
        oldest,
        purged: at.is_none() && !pos.file.is_empty(),
    };
    let Some(at) = at else {
        if r.purged {
            r.time_left_secs = Some(0);
        }
        return r;
    };
    let later: u64 = files[at + 1..].iter().map(|f| f.size).sum();
    r.bytes_behind = files[at].size.saturating_sub(pos.pos) + later;
    r.bytes_kept = files[at].size + later;
    let committed = commit_ms.map(|ms| ms.div_euclid(1000));
    let rate = committed.and_then(|c| write_rate(r.bytes_behind, now.saturating_sub(c)));
    r.write_rate = rate.map(|r| r.round() as u64);
    if at + 1 == files.len() {
        // The file being written is purged neither by age nor by size.
        return r;
    }
    if expire > 0 {
        let written = committed.unwrap_or(now);
        let expire = i64::try_from(expire).unwrap_or(i64::MAX);
        r.time_left_secs = Some(written.saturating_add(expire).saturating_sub(now).max(0));
    }
    r.size_time_left_secs = size_time_left(r.bytes_kept, limit, rate);
    if let Some(by_size) = r.size_time_left_secs {
        r.time_left_secs = Some(r.time_left_secs.map_or(by_size, |t| t.min(by_size)));
    }
    r
}

/// The binlog write rate (bytes per second) from `bytes` written over `secs` seconds; `None`
/// when the span is not positive.
pub fn write_rate(bytes: u64, secs: i64) -> Option<f64> {
    (secs > 0).then(|| bytes as f64 / secs as f64)
}

/// Seconds until `kept` bytes of binlog, growing at `rate` bytes per second, pass the cap
/// `limit` (0 once they have); `None` without a cap (0), without writes or without a rate.
pub fn size_time_left(kept: u64, limit: u64, rate: Option<f64>) -> Option<i64> {
    if limit == 0 {
        return None;
    }
    if kept >= limit {
        return Some(0);
    }
    let rate = rate.filter(|r| *r > 0.0)?;
    let secs = (limit - kept) as f64 / rate;
    Some(if secs >= i64::MAX as f64 {
        i64::MAX
    } else {
        secs as i64
    })
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
                            "binlog retention: {r}: the stream must catch up before then, or the server's {} be raised, else a binlog gap follows",
                            r.setting()
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

    fn files(sizes: &[u64]) -> Vec<BinlogFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| BinlogFile {
                name: format!("bin.{:06}", i + 1),
                size,
            })
            .collect()
    }

    fn at(file: usize, pos: u64) -> BinlogPosition {
        BinlogPosition {
            file: format!("bin.{file:06}"),
            pos,
            gtid: None,
        }
    }

    const NOW: i64 = 1_800_000_000;
    const MB: u64 = 1_000_000;

    #[test]
    fn size_time_left_is_the_room_over_the_write_rate() {
        // 100 MB cap, 70 MB kept, 10 kB/s: 3,000 s.
        assert_eq!(
            size_time_left(70 * MB, 100 * MB, Some(10_000.0)),
            Some(3000)
        );
        assert_eq!(size_time_left(100 * MB, 100 * MB, Some(1.0)), Some(0));
        assert_eq!(size_time_left(120 * MB, 100 * MB, None), Some(0));
        // No cap, no writes, no rate: nothing to tell.
        assert_eq!(size_time_left(70 * MB, 0, Some(10_000.0)), None);
        assert_eq!(size_time_left(70 * MB, 100 * MB, Some(0.0)), None);
        assert_eq!(size_time_left(70 * MB, 100 * MB, None), None);
        assert_eq!(write_rate(3600, 3600), Some(1.0));
        assert_eq!(write_rate(3600, 0), None);
    }

    #[test]
    fn a_size_cap_near_the_kept_bytes_bounds_the_time_left() {
        // Stopped an hour ago in the middle of file 2 of 4; 36 MB written since (10 kB/s).
        let f = files(&[50 * MB, 20 * MB, 20 * MB, 6 * MB]);
        let pos = at(2, 10 * MB);
        let hour_ago = Some((NOW - 3600) * 1000);
        let r = assess(&pos, &f, 7 * 86_400, 60 * MB, hour_ago, NOW);
        assert_eq!(r.bytes_behind, 36 * MB);
        assert_eq!(
            r.bytes_kept,
            46 * MB,
            "the whole file at the position counts"
        );
        assert_eq!(r.write_rate, Some(10_000));
        // 14 MB of room at 10 kB/s: 1,400 s, well before the 6 days left by age.
        assert_eq!(r.size_time_left_secs, Some(1400));
        assert_eq!(r.time_left_secs, Some(1400));
        assert!(r.by_size());
        assert_eq!(r.setting(), "max_binlog_total_size");
        let text = r.to_string();
        assert!(
            text.contains("23 min") && text.contains("max_binlog_total_size"),
            "{text}"
        );
        // Past the cap already: due now.
        let r = assess(&pos, &f, 7 * 86_400, 40 * MB, hour_ago, NOW);
        assert_eq!(r.time_left_secs, Some(0));
        // A cap far away: the time by age is the smaller.
        let r = assess(&pos, &f, 7200, 10_000 * MB, hour_ago, NOW);
        assert_eq!(r.time_left_secs, Some(3600));
        assert!(!r.by_size());
        assert_eq!(r.setting(), "binlog_expire_logs_seconds");
        // The file being written is purged by neither.
        let r = assess(&at(4, 1), &f, 7200, MB, hour_ago, NOW);
        assert_eq!(r.time_left_secs, None);
        assert_eq!(r.size_time_left_secs, None);
    }

    #[test]
    fn without_a_size_cap_the_time_left_is_by_age_alone() {
        // A server without max_binlog_total_size (MariaDB 10.11, MySQL): limit 0.
        let f = files(&[50 * MB, 20 * MB, 20 * MB, 6 * MB]);
        let pos = at(2, 10 * MB);
        let hour_ago = Some((NOW - 3600) * 1000);
        let r = assess(&pos, &f, 7200, 0, hour_ago, NOW);
        assert_eq!(r.time_left_secs, Some(3600));
        assert_eq!(r.size_time_left_secs, None);
        assert!(!r.by_size());
        assert_eq!(r.bytes_behind, 36 * MB);
        let text = r.to_string();
        assert!(
            text.contains("binlog_expire_logs_seconds = 7200")
                && !text.contains("max_binlog_total_size"),
            "{text}"
        );
        // No expiry either: never at risk, however much is written.
        let r = assess(&pos, &f, 0, 0, hour_ago, NOW);
        assert_eq!(r.time_left_secs, None);
        // Purged: 0 whatever the settings.
        let r = assess(&at(0, 4), &f, 7200, 0, None, NOW);
        assert!(r.purged);
        assert_eq!(r.time_left_secs, Some(0));
    }
}

//! Binlog gaps: a stream's position (or GTID state) that the server can no longer serve,
//! because the binlogs after it were purged (`expire_logs_days`,
//! `binlog_expire_logs_seconds`, `PURGE BINARY LOGS`) or reset. Checked when a stream starts
//! and on every reconnect, against `SHOW BINARY LOGS` and, for GTID resumes, MySQL's
//! `@@gtid_purged` or the `Gtid_list` at the start of MariaDB's oldest binlog. A dump the
//! server refuses with error 1236 is a gap too.
//!
//! What a gap does is the stream's `on_binlog_gap` setting ([`OnBinlogGap`]): fail with an
//! error naming what is missing and the way forward, or copy the streamed tables again and
//! go on from the server's current position (see `resnapshot`).

use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::Row;
use serde::{Deserialize, Serialize};

use super::gtid::{MariaDbGtidState, MySqlGtidSet};
use super::position::file_sequence;
use crate::connect::MySqlConnection;
use crate::error::{Context, MySqlError, Result};
use crate::snapshot::BinlogPosition;

/// What a stream does when its position is no longer on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBinlogGap {
    /// Fail with an error naming the missing binlog file or GTIDs (the default: nothing is
    /// skipped silently).
    #[default]
    Fail,
    /// Empty the streamed tables' targets (a `TRUNCATE` table change), copy the tables again
    /// from a position taken first, and stream on from that position: the gap-free handoff of
    /// `snapshot+cdc`, done again.
    Resnapshot,
}

/// A binlog file the server has, with its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogFile {
    /// `binlog.000042`.
    pub name: String,
    /// Bytes.
    pub size: u64,
}

/// What the server no longer has between a stream's position and its binlogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogGap {
    /// The stream's position.
    pub position: BinlogPosition,
    /// What is missing: a binlog file, an offset beyond a file's end, or GTIDs.
    pub missing: String,
    /// The oldest binlog the server still has.
    pub oldest: Option<String>,
}

impl fmt::Display for BinlogGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.position;
        write!(f, "binlog gap: the stream's position ")?;
        if p.file.is_empty() {
            write!(f, "(GTID {})", p.gtid.as_deref().unwrap_or("-"))?;
        } else {
            write!(f, "{}:{}", p.file, p.pos)?;
            if let Some(g) = &p.gtid {
                write!(f, " (GTID {g})")?;
            }
        }
        write!(f, " is no longer on the server: {}", self.missing)?;
        if let Some(o) = &self.oldest {
            write!(f, " (the oldest binlog there is {o})")?;
        }
        write!(
            f,
            "; the changes in between are lost. Set on_binlog_gap = \"resnapshot\" in the source's cdc settings to copy the streamed tables again and go on, or delete the job's checkpoints to start afresh; keep binlogs longer (binlog_expire_logs_seconds) so a stopped job can catch up"
        )
    }
}

impl BinlogGap {
    /// The gap as an error of the stream.
    pub fn into_error(self) -> MySqlError {
        MySqlError::BinlogGap(self.to_string())
    }
}

/// `SHOW BINARY LOGS`: the server's binlog files, oldest first.
pub async fn binary_logs(conn: &MySqlConnection) -> Result<Vec<BinlogFile>> {
    let mut c = conn.get().await?;
    let rows: Vec<Row> = c
        .query("SHOW BINARY LOGS")
        .await
        .ctx(|| "listing the binlogs (SHOW BINARY LOGS)".to_string())?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let name: Option<String> = r.get(0);
            let size: Option<u64> = r.get(1);
            Some(BinlogFile {
                name: name?,
                size: size.unwrap_or(0),
            })
        })
        .collect())
}

/// Checks `pos` against the server's binlogs: `Some(gap)` when it cannot be streamed from.
/// `by_gtid` says the stream resumes by its GTID state rather than its file and offset.
pub async fn find_gap(
    conn: &MySqlConnection,
    pos: &BinlogPosition,
    by_gtid: bool,
) -> Result<Option<BinlogGap>> {
    let files = binary_logs(conn).await?;
    let oldest = files.first().map(|f| f.name.clone());
    let gap = |missing: String| {
        Some(BinlogGap {
            position: pos.clone(),
            missing,
            oldest: oldest.clone(),
        })
    };
    if by_gtid {
        if let Some(state) = &pos.gtid {
            let missing = if conn.info().is_mariadb {
                mariadb_missing(conn, state, files.first()).await?
            } else {
                mysql_missing(conn, state).await?
            };
            return Ok(missing.and_then(gap));
        }
    }
    if pos.file.is_empty() {
        return Ok(None);
    }
    Ok(match files.iter().find(|f| f.name == pos.file) {
        Some(f) if pos.pos > f.size => gap(format!(
            "offset {} is beyond the end of {} ({} bytes): the binlogs were reset",
            pos.pos, f.name, f.size
        )),
        Some(_) => None,
        None => {
            let older = match (file_sequence(&pos.file), files.first()) {
                (Some(ours), Some(first)) => {
                    file_sequence(&first.name).is_some_and(|theirs| ours < theirs)
                }
                _ => false,
            };
            if older {
                gap(format!("{} was purged", pos.file))
            } else {
                gap(format!(
                    "{} does not exist there (the binlogs were reset, or this is another server)",
                    pos.file
                ))
            }
        }
    })
}

/// MySQL: the transactions of `@@gtid_purged` that `state` lacks.
async fn mysql_missing(conn: &MySqlConnection, state: &str) -> Result<Option<String>> {
    let mut c = conn.get().await?;
    let purged: Option<String> = c
        .query_first("SELECT @@GLOBAL.gtid_purged")
        .await
        .ctx(|| "reading @@gtid_purged".to_string())?;
    let purged = MySqlGtidSet::parse(&purged.unwrap_or_default().replace(['\n', '\r', ' '], ""))
        .map_err(MySqlError::Config)?;
    let ours = MySqlGtidSet::parse(state).map_err(MySqlError::Config)?;
    let missing = set_minus(&purged, &ours);
    Ok((!missing.is_empty()).then(|| format!("the purged transactions {missing}")))
}

/// `a - b` of two MySQL GTID sets.
fn set_minus(a: &MySqlGtidSet, b: &MySqlGtidSet) -> MySqlGtidSet {
    let mut text = Vec::new();
    for (uuid, ranges) in a.iter() {
        let mut kept: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in ranges {
            let mut start = s;
            for &(bs, be) in b.ranges(uuid) {
                if be < start || bs > e {
                    continue;
                }
                if bs > start {
                    kept.push((start, bs - 1));
                }
                start = be.saturating_add(1);
                if start > e {
                    break;
                }
            }
            if start <= e && start >= s {
                kept.push((start, e));
            }
        }
        if !kept.is_empty() {
            let iv: Vec<String> = kept
                .iter()
                .map(|&(s, e)| {
                    if s == e {
                        s.to_string()
                    } else {
                        format!("{s}-{e}")
                    }
                })
                .collect();
            text.push(format!("{uuid}:{}", iv.join(":")));
        }
    }
    MySqlGtidSet::parse(&text.join(",")).unwrap_or_default()
}

/// MariaDB: the GTIDs before the oldest binlog (its `Gtid_list` event) that `state` lacks.
async fn mariadb_missing(
    conn: &MySqlConnection,
    state: &str,
    oldest: Option<&BinlogFile>,
) -> Result<Option<String>> {
    let Some(oldest) = oldest else {
        return Ok(None);
    };
    let mut c = conn.get().await?;
    let rows: Vec<Row> = c
        .exec(
            format!("SHOW BINLOG EVENTS IN {} LIMIT 4", quote(&oldest.name)),
            (),
        )
        .await
        .ctx(|| format!("reading the GTID list of {}", oldest.name))?;
    let list = rows.iter().find_map(|r| {
        let ty: Option<String> = r.get(2);
        let info: Option<String> = r.get(5);
        (ty.as_deref() == Some("Gtid_list")).then(|| info.unwrap_or_default())
    });
    let Some(list) = list else {
        return Ok(None);
    };
    let before = MariaDbGtidState::parse(list.trim().trim_start_matches('[').trim_end_matches(']'))
        .map_err(MySqlError::Config)?;
    let ours = MariaDbGtidState::parse(state).map_err(MySqlError::Config)?;
    Ok(mariadb_lacks(&before, &ours))
}

/// The domains whose purged GTIDs (up to `before`) go beyond `ours`.
fn mariadb_lacks(before: &MariaDbGtidState, ours: &MariaDbGtidState) -> Option<String> {
    let missing: Vec<String> = before
        .iter()
        .filter_map(|b| {
            let have = ours.get(b.domain)?;
            (have.seq < b.seq).then(|| {
                format!(
                    "GTIDs {}-*-{} to {}-{}-{} (purged)",
                    b.domain,
                    have.seq + 1,
                    b.domain,
                    b.server,
                    b.seq
                )
            })
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn quote(s: &str) -> String {
    let mut q = String::new();
    crate::types::quote_str(&mut q, s);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_sets_subtract() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let v = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        let purged = MySqlGtidSet::parse(&format!("{u}:1-100,{v}:1-5")).unwrap();
        let ours = MySqlGtidSet::parse(&format!("{u}:1-40:50-60")).unwrap();
        assert_eq!(
            set_minus(&purged, &ours).to_string(),
            format!("{u}:41-49:61-100,{v}:1-5")
        );
        let all = MySqlGtidSet::parse(&format!("{u}:1-200,{v}:1-9")).unwrap();
        assert!(set_minus(&purged, &all).is_empty());
    }

    #[test]
    fn mariadb_states_compare_by_domain() {
        let before = MariaDbGtidState::parse("0-1-100,1-2-7").unwrap();
        let behind = MariaDbGtidState::parse("0-1-40,1-2-7").unwrap();
        assert_eq!(
            mariadb_lacks(&before, &behind).unwrap(),
            "GTIDs 0-*-41 to 0-1-100 (purged)"
        );
        let ahead = MariaDbGtidState::parse("0-1-100,1-2-9").unwrap();
        assert_eq!(mariadb_lacks(&before, &ahead), None);
    }

    #[test]
    fn the_message_names_what_is_missing_and_the_way_forward() {
        let g = BinlogGap {
            position: BinlogPosition {
                file: "binlog.000003".into(),
                pos: 1234,
                gtid: None,
            },
            missing: "binlog.000003 was purged".into(),
            oldest: Some("binlog.000007".into()),
        };
        let t = g.to_string();
        assert!(
            t.contains("binlog.000003:1234") && t.contains("binlog.000007"),
            "{t}"
        );
        assert!(t.contains("on_binlog_gap = \"resnapshot\""), "{t}");
        let o: OnBinlogGap = serde_json::from_str("\"resnapshot\"").unwrap();
        assert_eq!(o, OnBinlogGap::Resnapshot);
    }
}

//! Connecting as a replica: the prerequisite checks, the current position, and opening a
//! dump stream at a file and offset or after a GTID state (MariaDB or MySQL), with heartbeats.

use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Row};
use mysql_common::packets::{GnoInterval, Sid};

use super::gtid::MySqlGtidSet;

use crate::connect::MySqlConnection;
use crate::error::{Context, MySqlError, Result};
use crate::snapshot::BinlogPosition;

/// What [`check_prerequisites`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisites {
    /// `binlog_row_metadata` is FULL (column names, signedness and ENUM/SET labels are in
    /// the table maps). Without it, columns are matched by position.
    pub full_row_metadata: bool,
    /// The server is MariaDB (GTIDs `domain-server-seq`).
    pub mariadb: bool,
}

fn prereq(what: &str, fix: &str) -> MySqlError {
    MySqlError::Config(format!(
        "change data capture needs {what} on the source server: {fix}"
    ))
}

/// Checks what a binlog stream needs, with an error naming what is missing and how to fix
/// it: binary logging on, `binlog_format=ROW`, `binlog_row_image=FULL`, and the
/// REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR) privileges.
/// `binlog_row_metadata` other than FULL is a warning (columns then match by position).
pub async fn check_prerequisites(conn: &MySqlConnection) -> Result<Prerequisites> {
    let mut c = conn.get().await?;
    let ctx = || "checking the binlog prerequisites".to_string();
    let row: Option<Row> = c
        .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image")
        .await
        .ctx(ctx)?;
    let row = row.ok_or_else(|| MySqlError::Driver {
        context: ctx(),
        message: "no answer".into(),
    })?;
    let text = |i: usize| -> String {
        match row.as_ref(i) {
            Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).to_ascii_uppercase(),
            Some(mysql_async::Value::Int(v)) => v.to_string(),
            Some(mysql_async::Value::UInt(v)) => v.to_string(),
            _ => String::new(),
        }
    };
    let (log_bin, format, image) = (text(0), text(1), text(2));
    if !(log_bin == "1" || log_bin == "ON") {
        return Err(prereq(
            "binary logging (log_bin is OFF)",
            "start the server with --log-bin",
        ));
    }
    if format != "ROW" {
        return Err(prereq(
            &format!("binlog_format=ROW (it is {format})"),
            "SET GLOBAL binlog_format='ROW' or start with --binlog-format=ROW",
        ));
    }
    if image != "FULL" {
        return Err(prereq(
            &format!("binlog_row_image=FULL (it is {image})"),
            "SET GLOBAL binlog_row_image='FULL'",
        ));
    }
    let meta: Option<Option<String>> = c
        .query_first("SELECT @@GLOBAL.binlog_row_metadata")
        .await
        .ok()
        .flatten();
    let full_row_metadata = meta
        .flatten()
        .is_some_and(|m| m.eq_ignore_ascii_case("FULL"));
    if !full_row_metadata {
        tracing::warn!("binlog_row_metadata is not FULL: binlog columns are matched to information_schema by position, so a column added or dropped since an event makes it undecodable; SET GLOBAL binlog_row_metadata='FULL' (MariaDB 10.5+, MySQL 8.0.1+)");
    }
    check_replication_grants(&mut c).await?;
    Ok(Prerequisites {
        full_row_metadata,
        mariadb: conn.info().is_mariadb,
    })
}

/// The REPLICATION SLAVE and REPLICATION CLIENT (or BINLOG MONITOR) privileges, on `*.*`.
async fn check_replication_grants(c: &mut Conn) -> Result<()> {
    let ctx = || "checking the binlog prerequisites".to_string();
    let grants: Vec<String> = c.query("SHOW GRANTS").await.ctx(ctx)?;
    let global: Vec<String> = grants
        .iter()
        .map(|g| g.to_ascii_uppercase())
        .filter(|g| g.contains(" ON *.*"))
        .collect();
    let has = |names: &[&str]| {
        global
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || names.iter().any(|n| g.contains(n)))
    };
    if !has(&["REPLICATION SLAVE"]) {
        return Err(MySqlError::NoPrivilege {
            context: ctx(),
            message: format!(
                "the user lacks REPLICATION SLAVE (needed to read the binlog): GRANT REPLICATION SLAVE ON *.* TO {}",
                current_user(c).await
            ),
        });
    }
    if !has(&["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"]) {
        return Err(MySqlError::NoPrivilege {
            context: ctx(),
            message: format!(
                "the user lacks REPLICATION CLIENT (BINLOG MONITOR on MariaDB; needed for SHOW MASTER STATUS): GRANT REPLICATION CLIENT ON *.* TO {}",
                current_user(c).await
            ),
        });
    }
    Ok(())
}

async fn current_user(c: &mut Conn) -> String {
    c.query_first::<String, _>("SELECT CURRENT_USER()")
        .await
        .ok()
        .flatten()
        .map(|u| match u.split_once('@') {
            Some((n, h)) => format!("'{n}'@'{h}'"),
            None => u,
        })
        .unwrap_or_else(|| "<user>".into())
}

/// The server's current binlog position with its GTID state.
///
/// MySQL's GTID set comes from the same `SHOW MASTER STATUS` row (`Executed_Gtid_Set`), so
/// position and set describe the same instant; MySQL 8.4, which dropped that statement, is
/// asked `SHOW BINARY LOG STATUS`. MariaDB's state is `BINLOG_GTID_POS` of the position.
pub async fn current_position(conn: &MySqlConnection) -> Result<BinlogPosition> {
    let mut c = conn.get().await?;
    let mariadb = conn.info().is_mariadb;
    let ctx = || "reading the current binlog position (SHOW MASTER STATUS)".to_string();
    let row: Option<Row> = match c.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // ER_PARSE_ERROR: MySQL 8.4+ only knows the new name.
        Err(mysql_async::Error::Server(e)) if e.code == 1064 && !mariadb => {
            c.query_first("SHOW BINARY LOG STATUS").await.ctx(ctx)?
        }
        Err(e) => return Err(e).ctx(ctx),
    };
    let row = row.ok_or_else(|| {
        prereq(
            "binary logging",
            "SHOW MASTER STATUS is empty: start the server with --log-bin",
        )
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    let (Some(file), Some(pos)) = (file, pos) else {
        return Err(MySqlError::Driver {
            context: ctx(),
            message: "no file and position".into(),
        });
    };
    let gtid = if mariadb {
        gtid_at(&mut c, true, &file, pos).await?
    } else {
        // Executed_Gtid_Set: empty when gtid_mode is OFF.
        let set: Option<String> = row.get_opt(4).and_then(|r| r.ok());
        clean_gtid(set)
    };
    Ok(BinlogPosition { file, pos, gtid })
}

fn clean_gtid(g: Option<String>) -> Option<String> {
    g.map(|g| g.replace(['\n', '\r', ' '], ""))
        .filter(|g| !g.is_empty())
}

/// The GTID state at a binlog point: MariaDB's `BINLOG_GTID_POS`. MySQL has no way to ask
/// for the set at a past position, so it gives `None` there (a stream started at a file and
/// offset then resumes by file and offset).
pub async fn gtid_at(c: &mut Conn, mariadb: bool, file: &str, pos: u64) -> Result<Option<String>> {
    if !mariadb {
        return Ok(None);
    }
    let ctx = || format!("reading the GTID state at {file}:{pos}");
    let r: Option<Option<String>> = c
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
        .await
        .ctx(ctx)?;
    Ok(clean_gtid(r.flatten()))
}

/// A MySQL GTID set as the sid block of `COM_BINLOG_DUMP_GTID`: the server streams every
/// transaction outside it. Intervals are half-open there (`1-5` is `[1, 6)`).
pub fn mysql_dump_sids(set: &MySqlGtidSet) -> Result<Vec<Sid<'static>>> {
    set.iter()
        .map(|(uuid, ranges)| {
            let sid: Sid<'static> = format!("{uuid}:1").parse().map_err(|e| {
                MySqlError::Config(format!("GTID set {set}: server uuid {uuid}: {e}"))
            })?;
            let intervals = ranges
                .iter()
                .map(|&(a, b)| GnoInterval::new(a, b.saturating_add(1)))
                .collect();
            Ok(sid.with_intervals(intervals))
        })
        .collect()
}

/// Where a dump starts.
#[derive(Debug, Clone)]
pub enum DumpFrom<'a> {
    /// A file and offset.
    Position(&'a str, u64),
    /// After a GTID state: MariaDB `domain-server-seq` (sent as `@slave_connect_state`) or a
    /// MySQL set `uuid:1-n` (sent with `COM_BINLOG_DUMP_GTID`).
    Gtid(&'a str),
}

/// Opens a dump stream as replica `server_id`, with server heartbeats every
/// `heartbeat_secs` on an idle stream.
pub async fn open_stream(
    conn: &MySqlConnection,
    server_id: u32,
    from: DumpFrom<'_>,
    heartbeat_secs: u64,
) -> Result<BinlogStream> {
    let ctx = || format!("starting the binlog stream as replica {server_id} at {from:?}");
    let mut c = conn.dedicated().await?;
    let ns = heartbeat_secs.max(1).saturating_mul(1_000_000_000);
    c.query_drop(format!("SET @master_heartbeat_period = {ns}"))
        .await
        .ctx(ctx)?;
    let mariadb = conn.info().is_mariadb;
    if mariadb {
        // Announce GTID support so that GTID events are sent (capability 4 = MARIA_SLAVE_CAPABILITY_GTID).
        c.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .ctx(ctx)?;
    }
    let request = BinlogStreamRequest::new(server_id);
    let stream = match from {
        DumpFrom::Position(file, pos) => {
            c.get_binlog_stream(request.with_filename(file.as_bytes()).with_pos(pos))
                .await
        }
        DumpFrom::Gtid(state) if !mariadb => {
            let set = MySqlGtidSet::parse(state).map_err(MySqlError::Config)?;
            let sids = mysql_dump_sids(&set)?;
            c.get_binlog_stream(
                request
                    .with_gtid()
                    .with_gtid_set(sids)
                    .with_filename(b"")
                    .with_pos(4u64),
            )
            .await
        }
        DumpFrom::Gtid(state) => {
            let mut quoted = String::new();
            crate::types::quote_str(&mut quoted, state);
            c.query_drop(format!("SET @slave_connect_state = {quoted}"))
                .await
                .ctx(ctx)?;
            c.query_drop("SET @slave_gtid_strict_mode = 1")
                .await
                .ctx(ctx)?;
            c.get_binlog_stream(request.with_filename(b"").with_pos(4u64))
                .await
        }
    };
    stream.ctx(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::packets::binlog_request::BinlogRequest;
    use mysql_common::proto::MySerialize;

    #[test]
    fn mysql_gtid_sets_become_the_dump_sid_block() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let set = MySqlGtidSet::parse(&format!("{u}:1-5:7")).unwrap();
        let sids = mysql_dump_sids(&set).unwrap();
        assert_eq!(sids.len(), 1);
        let iv: Vec<(u64, u64)> = sids[0]
            .intervals()
            .iter()
            .map(|i| (i.start(), i.end()))
            .collect();
        // Half-open on the wire: 1-5 is [1, 6), 7 is [7, 8).
        assert_eq!(iv, vec![(1, 6), (7, 8)]);

        // The COM_BINLOG_DUMP_GTID packet the stream sends for it (what BinlogStreamRequest
        // builds with `with_gtid().with_gtid_set(..).with_filename(b"").with_pos(4)`).
        let req = BinlogRequest::new(6401)
            .with_use_gtid(true)
            .with_sids(sids)
            .with_filename(&b""[..])
            .with_pos(4u64);
        let mut buf = Vec::new();
        match req.as_cmd() {
            mysql_common::misc::raw::Either::Right(cmd) => cmd.serialize(&mut buf),
            mysql_common::misc::raw::Either::Left(_) => panic!("not COM_BINLOG_DUMP_GTID"),
        }
        assert_eq!(buf[0], 0x1e, "COM_BINLOG_DUMP_GTID");
        assert_eq!(&buf[3..7], &6401u32.to_le_bytes(), "server id");
        assert_eq!(&buf[7..11], &0u32.to_le_bytes(), "empty file name");
        assert_eq!(&buf[11..19], &4u64.to_le_bytes(), "position");
        let block = &buf[23..];
        assert_eq!(&block[0..8], &1u64.to_le_bytes(), "one sid");
        let uuid: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&u.replace('-', "")[i * 2..i * 2 + 2], 16).unwrap())
            .collect();
        assert_eq!(&block[8..24], uuid.as_slice());
        assert_eq!(&block[24..32], &2u64.to_le_bytes(), "two intervals");
        assert_eq!(&block[32..40], &1u64.to_le_bytes());
        assert_eq!(&block[40..48], &6u64.to_le_bytes());
        assert_eq!(&block[48..56], &7u64.to_le_bytes());
        assert_eq!(&block[56..64], &8u64.to_le_bytes());
    }

    #[test]
    fn an_empty_set_asks_for_everything() {
        assert!(mysql_dump_sids(&MySqlGtidSet::default())
            .unwrap()
            .is_empty());
    }
}

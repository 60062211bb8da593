//! Stream positions: the checkpoint state of a binlog stream and its ordinal.
//!
//! The checkpoint state is a [`BinlogPosition`] `{file, pos, gtid}` taken at the end of a
//! committed transaction (XID event or COMMIT/DDL query): `pos` is where the next transaction
//! starts, `gtid` the GTID state after it (MariaDB `0-1-48`, MySQL `uuid:1-48`).
//!
//! The ordinal of an event is `(file sequence number << 32) | end position`: the sequence
//! number is the digits after the last `.` of the file name (`binlog.000042` -> 42), and
//! the end position is the event's `log_pos` (below 4 GiB, binlog files are smaller). It grows
//! with every event across file rotations, so it serves as the external version of an
//! Elasticsearch document, and a snapshot taken at position P gets the ordinal of P, lower
//! than that of any change after it. Rows of one rows event get growing ordinals that
//! end at the event's (`rows::row_ordinal`), so each row has an external version of its own.

use datatrace_core::Position;

use crate::snapshot::BinlogPosition;

/// The sequence number of a binlog file (`binlog.000042` -> 42), if its name ends in digits.
pub fn file_sequence(file: &str) -> Option<u64> {
    let digits = file.rsplit('.').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The ordinal of the point `pos` of `file` (see the module docs); 0 for a file name
/// without a sequence number.
pub fn ordinal(file: &str, pos: u64) -> u64 {
    (file_sequence(file).unwrap_or(0) << 32) | (pos & 0xffff_ffff)
}

/// The core [`Position`] of a binlog point: the state as JSON, the ordinal, and the commit
/// time (seconds, from the event header) in milliseconds.
pub fn to_position(p: &BinlogPosition, ts_secs: Option<u32>) -> Position {
    Position {
        state: serde_json::to_value(p).unwrap_or(serde_json::Value::Null),
        ordinal: Some(ordinal(&p.file, p.pos)),
        ts_ms: ts_secs.map(|s| s as i64 * 1000),
    }
}

/// The state of a record's position: where its event is in the binlog, as Debezium's
/// `source` block tells it: `file`, `pos` (where the event starts) and `gtid` (the GTID of its
/// transaction, when the server announced one). Not a point to resume from (that is the
/// checkpoint's [`BinlogPosition`], at the end of a transaction); the key `event` says so.
pub fn event_state(file: &str, pos: u64, gtid: Option<String>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), serde_json::Value::Bool(true));
    m.insert("file".into(), file.into());
    m.insert("pos".into(), pos.into());
    if let Some(g) = gtid {
        m.insert("gtid".into(), g.into());
    }
    serde_json::Value::Object(m)
}

/// Reads a checkpoint state back; `None` when it is not a binlog position (a stream that
/// resumes refuses such a checkpoint: see [`super::checkpoint::StreamCheckpoint::decode`]).
pub fn from_position(p: &Position) -> Option<BinlogPosition> {
    super::checkpoint::StreamCheckpoint::decode("binlog", "whole", p)
        .ok()
        .map(|c| c.at)
}

/// Strips the 4 checksum bytes that MariaDB leaves at the end of the file name of the first
/// (fake) Rotate event: keeps the longest prefix that looks like a binlog name.
pub fn clean_rotate_name(raw: &[u8]) -> String {
    let as_text = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .filter(|s| file_sequence(s).is_some())
            .map(str::to_string)
    };
    if let Some(s) = as_text(raw) {
        return s;
    }
    if raw.len() > 4 {
        if let Some(s) = as_text(&raw[..raw.len() - 4]) {
            return s;
        }
    }
    String::from_utf8_lossy(raw)
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_grow_across_files() {
        assert_eq!(file_sequence("binlog.000042"), Some(42));
        assert_eq!(file_sequence("mysql-bin"), None);
        let a = ordinal("binlog.000001", 4_000_000_000);
        let b = ordinal("binlog.000002", 4);
        assert!(b > a);
        assert_eq!(ordinal("binlog.000002", 4), (2 << 32) | 4);
    }

    #[test]
    fn positions_round_trip() {
        let p = BinlogPosition {
            file: "binlog.000003".into(),
            pos: 1234,
            gtid: Some("0-1-9".into()),
        };
        let cp = to_position(&p, Some(10));
        assert_eq!(cp.ts_ms, Some(10_000));
        assert_eq!(cp.ordinal, Some((3 << 32) | 1234));
        assert_eq!(from_position(&cp), Some(p));
    }

    #[test]
    fn rotate_names_lose_checksum_bytes() {
        assert_eq!(clean_rotate_name(b"binlog.000001"), "binlog.000001");
        assert_eq!(
            clean_rotate_name(b"binlog.000001\x12\x34\xab\xcd"),
            "binlog.000001"
        );
        assert_eq!(
            clean_rotate_name(b"binlog.000001\x12\x34\x35\x36"),
            "binlog.000001"
        );
    }
}

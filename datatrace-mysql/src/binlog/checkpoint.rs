//! The checkpoints a binlog stream resumes from, read back in one place.
//!
//! A stream's checkpoint is a [`BinlogPosition`] `{file, pos, gtid}` at the end of a committed
//! transaction, with the `floors` of a `snapshot+cdc` stream beside it (per table, the binlog
//! ordinal up to which its snapshot holds its changes, see `handoff::Handoff::floors`). A
//! keyless table's snapshot unit ends with the position of the snapshot it read (key
//! `snapshot` of its chunk position). Every read of these goes through [`StreamCheckpoint`]
//! or [`snapshot_position`]: a value that is not what it should be is refused with
//! [`datatrace_core::Error::DamagedCheckpoint`] naming the unit and the key, never read as
//! if there were no checkpoint (which would stream from elsewhere, or skip nothing).

use std::collections::HashMap;

use datatrace_core::{DamagedCheckpoint, Position};
use serde::de::DeserializeOwned;

use crate::snapshot::BinlogPosition;

/// What a stream resumes from (the message of a damaged checkpoint says so).
const EXPECTED: &str = "a binlog position";

/// A binlog stream's checkpoint, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCheckpoint {
    /// Where the stream resumes: the end of the last committed transaction it wrote.
    pub at: BinlogPosition,
    /// Per table (`db.table`), the ordinal up to which its changes are already in the target
    /// (empty but for keyless tables of a `snapshot+cdc` job).
    pub floors: HashMap<String, u64>,
}

impl StreamCheckpoint {
    /// Decodes the resume position `p` of part `part` of the stream unit `unit`: a
    /// [`datatrace_core::Error::DamagedCheckpoint`] naming the unit and the key that is wrong
    /// when it is not a binlog position (another source's state, the position of an event,
    /// a key of the wrong type).
    pub fn decode(
        unit: &str,
        part: &str,
        p: &Position,
    ) -> Result<StreamCheckpoint, datatrace_core::Error> {
        let damaged = |reason: String| damaged(unit, part, p, EXPECTED, reason);
        let serde_json::Value::Object(m) = &p.state else {
            return Err(damaged("it is not an object".into()));
        };
        if m.contains_key("event") {
            return Err(damaged(
                "key `event`: it is the position of an event, not the end of a committed transaction".into(),
            ));
        }
        let at = position_of(m, "").map_err(damaged)?;
        let floors = key::<HashMap<String, u64>>(m, "floors", "")
            .map_err(damaged)?
            .unwrap_or_default();
        Ok(StreamCheckpoint { at, floors })
    }
}

/// The binlog position a keyless table's snapshot was read at, from the resume position `p`
/// of part `part` of its snapshot unit `unit` (key `snapshot`); `None` when it has none (a
/// scan not finished, a table read outside a consistent snapshot). A damaged value is a
/// [`datatrace_core::Error::DamagedCheckpoint`] naming the unit and the key.
pub fn snapshot_position(
    unit: &str,
    part: &str,
    p: &Position,
) -> Result<Option<BinlogPosition>, datatrace_core::Error> {
    let expected = "a MySQL chunk position";
    let damaged = |reason: String| damaged(unit, part, p, expected, reason);
    let serde_json::Value::Object(m) = &p.state else {
        return Err(damaged("it is not an object".into()));
    };
    match m.get("snapshot") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(s)) => {
            position_of(s, "snapshot.").map(Some).map_err(damaged)
        }
        Some(_) => Err(damaged("key `snapshot`: it is not an object".into())),
    }
}

/// `{file, pos, gtid}` of `m`; the error names the key (`prefix` before it).
fn position_of(
    m: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
) -> Result<BinlogPosition, String> {
    let missing = |k: &str| format!("key `{prefix}{k}` is missing");
    Ok(BinlogPosition {
        file: key(m, "file", prefix)?.ok_or_else(|| missing("file"))?,
        pos: key(m, "pos", prefix)?.ok_or_else(|| missing("pos"))?,
        gtid: key(m, "gtid", prefix)?,
    })
}

/// The value of key `k` of `m` as a `T` (`None` when absent or null); the error names the key.
fn key<T: DeserializeOwned>(
    m: &serde_json::Map<String, serde_json::Value>,
    k: &str,
    prefix: &str,
) -> Result<Option<T>, String> {
    match m.get(k) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| format!("key `{prefix}{k}`: {e}")),
    }
}

/// The error of a damaged checkpoint of `unit`.
fn damaged(
    unit: &str,
    part: &str,
    p: &Position,
    expected: &str,
    reason: String,
) -> datatrace_core::Error {
    datatrace_core::Error::DamagedCheckpoint {
        unit: unit.to_string(),
        source: Box::new(DamagedCheckpoint::new(
            format!("the resume position of part {part}"),
            &p.state,
            expected,
            reason,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(state: serde_json::Value) -> Result<StreamCheckpoint, String> {
        StreamCheckpoint::decode("binlog", "whole", &Position::new(state)).map_err(|e| {
            assert!(
                matches!(e, datatrace_core::Error::DamagedCheckpoint { .. }),
                "{e:?}"
            );
            e.to_string()
        })
    }

    #[test]
    fn positions_and_floors_decode() {
        let cp =
            decode(json!({"file": "b.000002", "pos": 120, "gtid": "0-1-5", "floors": {"d.t": 7}}))
                .unwrap();
        assert_eq!(cp.at.file, "b.000002");
        assert_eq!(cp.at.pos, 120);
        assert_eq!(cp.at.gtid.as_deref(), Some("0-1-5"));
        assert_eq!(cp.floors.get("d.t"), Some(&7));
        let cp = decode(json!({"file": "", "pos": 4})).unwrap();
        assert!(cp.floors.is_empty() && cp.at.gtid.is_none());
    }

    #[test]
    fn damaged_values_name_the_unit_and_the_key() {
        for (state, key) in [
            (
                json!({"file": "b.1", "pos": 4, "floors": "x"}),
                "key `floors`",
            ),
            (
                json!({"file": "b.1", "pos": 4, "floors": {"d.t": -1}}),
                "key `floors`",
            ),
            (json!({"file": "b.1", "pos": "4"}), "key `pos`"),
            (json!({"pos": 4}), "key `file` is missing"),
            (json!({"file": "b.1", "pos": 4, "gtid": 3}), "key `gtid`"),
            (
                json!({"event": true, "file": "b.1", "pos": 4}),
                "key `event`",
            ),
            (json!([1]), "not an object"),
            (json!({"slice": 0, "after": [5]}), "key `file` is missing"),
        ] {
            let msg = decode(state.clone()).unwrap_err();
            assert!(
                msg.contains("unit binlog") && msg.contains(key),
                "{state}: {msg}"
            );
            assert!(msg.contains("clear the unit's checkpoint"), "{msg}");
        }
    }

    #[test]
    fn snapshot_positions_decode_or_are_refused() {
        let p = |s| Position::new(s);
        let at = snapshot_position(
            "d.t",
            "scan",
            &p(json!({"last": null, "snapshot": {"file": "b.3", "pos": 9}})),
        );
        assert_eq!(at.unwrap().map(|b| b.pos), Some(9));
        assert_eq!(
            snapshot_position("d.t", "scan", &p(json!({"last": [1]}))).unwrap(),
            None
        );
        for s in [
            json!({"last": null, "snapshot": {"file": 3, "pos": 9}}),
            json!({"last": null, "snapshot": "b.3:9"}),
        ] {
            let e = snapshot_position("d.t", "scan", &p(s)).unwrap_err();
            assert!(
                matches!(e, datatrace_core::Error::DamagedCheckpoint { .. }),
                "{e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("unit d.t") && msg.contains("key `snapshot"),
                "{msg}"
            );
        }
    }
}

//! Debezium's fixed names: the `source` block's schema, the connector name, and binlog
//! ordinals.

use serde_json::{json, Value as Json};

/// What DataTrace writes as `source.version`.
pub(crate) const VERSION: &str = concat!("datatrace-", env!("CARGO_PKG_VERSION"));
/// What DataTrace writes as `source.connector` (the events describe MySQL changes).
pub(crate) const CONNECTOR: &str = "mysql";

/// The Connect schema of the `source` block, as Debezium's MySQL connector writes it, plus
/// DataTrace's `ordinal` (the change's position as one growing number).
pub(crate) fn source_schema() -> Json {
    let f = |ty: &str, optional: bool, field: &str| json!({"type": ty, "optional": optional, "field": field});
    json!({
        "type": "struct",
        "name": "io.debezium.connector.mysql.Source",
        "optional": false,
        "fields": [
            f("string", false, "version"),
            f("string", false, "connector"),
            f("string", false, "name"),
            f("int64", false, "ts_ms"),
            {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
             "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
             "default": "false", "field": "snapshot"},
            f("string", false, "db"),
            f("string", true, "sequence"),
            f("string", true, "table"),
            f("int64", false, "server_id"),
            f("string", true, "gtid"),
            f("string", false, "file"),
            f("int64", false, "pos"),
            f("int32", false, "row"),
            f("int64", true, "thread"),
            f("string", true, "query"),
            f("int64", true, "ordinal"),
        ]
    })
}

/// The ordinal of binlog point `pos` of `file`: `(file sequence number << 32) | pos`, the
/// formula of DataTrace's MySQL binlog source, so that versions derived from Debezium's
/// `file`/`pos` and from DataTrace's own events agree.
pub(crate) fn ordinal(file: &str, pos: u64) -> u64 {
    let seq = file
        .rsplit('.')
        .next()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    (seq << 32) | (pos & 0xffff_ffff)
}

/// The file sequence number and position of an ordinal.
pub(crate) fn ordinal_parts(ordinal: u64) -> (u64, u64) {
    (ordinal >> 32, ordinal & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_grow_across_files() {
        assert_eq!(ordinal("mysql-bin.000003", 154), (3 << 32) | 154);
        assert!(ordinal("binlog.000002", 4) > ordinal("binlog.000001", 4_000_000));
        assert_eq!(ordinal_parts(ordinal("binlog.000042", 77)), (42, 77));
        assert_eq!(ordinal("no-sequence", 9), 9);
    }
}

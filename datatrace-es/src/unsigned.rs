//! Unsigned 64-bit integers on clusters with and without the `unsigned_long` field type.
//!
//! `unsigned_long` holds every `u64` (Elasticsearch 7.10+ with x-pack, OpenSearch 2.8+).
//! Elsewhere (Elasticsearch's OSS builds, such as the testkit's 7.17 node, Elasticsearch before
//! 7.10, OpenSearch before 2.8) no numeric type does: `long` stops at 2^63 - 1 and refuses larger
//! values document by document, mid-copy. So the sink decides before anything is written
//! ([`UnsignedMapping`]):
//!
//! - `auto`: `unsigned_long` where it exists; elsewhere `long` when the column's type keeps it
//!   below 2^63 (MySQL's `TINYINT` .. `INT UNSIGNED`, `BIT(1..63)`), and for a 64-bit column
//!   (`BIGINT UNSIGNED`, `BIT(64)`, or one of unknown width) the index is not created: the
//!   error names the table, the column, the cluster and the two settings that resolve it;
//! - `long`: the user's word that the values stay below 2^63 (one that does not is rejected by
//!   the cluster, that record alone, under the error policy: never changed);
//! - `keyword`: every value exact, as its digits (the document keeps the JSON number).
//!
//! The same holds for `unsigned_long` fields a copy brings along in a mapping of its own (an
//! index copied from OpenSearch, the objects of denormalized documents): under `long` or
//! `keyword` they are mapped so, under `auto` they are refused where the type is missing.

use datatrace_core::Column;
use serde_json::{json, Map, Value as Json};

use crate::client::ClusterInfo;
use crate::config::UnsignedMapping;
use crate::errors::EsError;

const UNSIGNED_LONG: &str = "unsigned_long";

/// How many bits the values of an unsigned column can need, from its MySQL column type
/// (`int(10) unsigned` -> 32, `bit(12)` -> 12); 64 when the type says nothing narrower.
pub fn unsigned_bits(c: &Column) -> u32 {
    let Some(native) = c.native_type.as_deref() else {
        return 64;
    };
    let lower = native.trim().to_ascii_lowercase();
    let base: String = lower
        .chars()
        .take_while(|ch| ch.is_ascii_alphabetic())
        .collect();
    match base.as_str() {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        "bit" => lower
            .split_once('(')
            .and_then(|(_, rest)| rest.split(')').next())
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|n| (1..=64).contains(n))
            .unwrap_or(64),
        _ => 64,
    }
}

/// The mapping of an unsigned integer column (without a mapping of its own).
pub fn uint_mapping(c: &Column, how: UnsignedMapping, info: &ClusterInfo) -> Json {
    match how {
        UnsignedMapping::Long => json!({"type": "long"}),
        UnsignedMapping::Keyword => json!({"type": "keyword"}),
        UnsignedMapping::Auto if info.has_unsigned_long() => json!({"type": UNSIGNED_LONG}),
        UnsignedMapping::Auto if unsigned_bits(c) < 64 => json!({"type": "long"}),
        // Refused by `check` on this cluster.
        UnsignedMapping::Auto => json!({"type": UNSIGNED_LONG}),
    }
}

/// Rewrites the `unsigned_long` fields of a mapping (its `properties`, objects and
/// multi-fields, at any depth) as `long` or `keyword` where the cluster lacks the type and
/// the setting says so.
pub fn adapt(mapping: &mut Map<String, Json>, how: UnsignedMapping, info: &ClusterInfo) {
    if info.has_unsigned_long() {
        return;
    }
    let to = match how {
        UnsignedMapping::Auto => return,
        UnsignedMapping::Long => "long",
        UnsignedMapping::Keyword => "keyword",
    };
    if mapping.get("type").and_then(Json::as_str) == Some(UNSIGNED_LONG) {
        // unsigned_long's own parameters (null_value, meta, ...) do not all apply to `to`.
        mapping.clear();
        mapping.insert("type".into(), Json::String(to.into()));
        return;
    }
    for key in ["properties", "fields"] {
        if let Some(Json::Object(children)) = mapping.get_mut(key) {
            for child in children.values_mut() {
                if let Json::Object(m) = child {
                    adapt(m, how, info);
                }
            }
        }
    }
}

/// The first field of a column's mapping (dotted path below the column) that the cluster
/// cannot hold: an `unsigned_long` where the type is missing.
fn missing_type(mapping: &Map<String, Json>, path: &str) -> Option<String> {
    if mapping.get("type").and_then(Json::as_str) == Some(UNSIGNED_LONG) {
        return Some(path.to_string());
    }
    for key in ["properties", "fields"] {
        if let Some(Json::Object(children)) = mapping.get(key) {
            for (name, child) in children {
                if let Some(found) = child
                    .as_object()
                    .and_then(|m| missing_type(m, &format!("{path}.{name}")))
                {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// Refuses a column whose mapping needs `unsigned_long` on a cluster without it, naming the
/// table, the column (and the field inside it), the cluster and the ways out.
pub fn check(
    table: &str,
    c: &Column,
    mapping: &Map<String, Json>,
    info: &ClusterInfo,
) -> Result<(), EsError> {
    if info.has_unsigned_long() {
        return Ok(());
    }
    let Some(path) = missing_type(mapping, &c.name) else {
        return Ok(());
    };
    let what = match c.native_type.as_deref() {
        Some(t) if !t.starts_with('{') => format!("{} ({t})", c.data_type),
        _ => c.data_type.to_string(),
    };
    let field = if path == c.name {
        String::new()
    } else {
        format!(", field {path}")
    };
    let build = if info.build_flavor.is_empty() {
        String::new()
    } else {
        format!(" (build flavor {})", info.build_flavor)
    };
    Err(EsError::Unmappable {
        table: table.to_string(),
        column: c.name.clone(),
        reason: format!(
            "a {what} column{field} needs the unsigned_long field type, which {info}{build} \
             does not have (Elasticsearch 7.10+ with x-pack and OpenSearch 2.8+ do), and long \
             cannot hold values above 9223372036854775807; nothing was written. Set the \
             target's mapping.unsigned = \"keyword\" to keep every value exactly (as its digits: \
             ranges and sorting then compare text), or mapping.unsigned = \"long\" if the column \
             never holds values above 9223372036854775807 (a larger one is rejected)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Flavor;
    use datatrace_core::DataType;

    fn es_oss() -> ClusterInfo {
        ClusterInfo {
            flavor: Flavor::Elasticsearch,
            version: "7.17.29".into(),
            semver: (7, 17, 29),
            cluster_name: String::new(),
            build_flavor: "oss".into(),
        }
    }

    fn os() -> ClusterInfo {
        ClusterInfo {
            flavor: Flavor::OpenSearch,
            version: "2.19.6".into(),
            semver: (2, 19, 6),
            cluster_name: String::new(),
            build_flavor: String::new(),
        }
    }

    fn col(native: Option<&str>) -> Column {
        let c = Column::new("id", DataType::UInt);
        match native {
            Some(n) => c.native(n),
            None => c,
        }
    }

    #[test]
    fn widths_come_from_the_mysql_type() {
        assert_eq!(unsigned_bits(&col(Some("tinyint(3) unsigned"))), 8);
        assert_eq!(unsigned_bits(&col(Some("SMALLINT UNSIGNED"))), 16);
        assert_eq!(unsigned_bits(&col(Some("mediumint(8) unsigned"))), 24);
        assert_eq!(unsigned_bits(&col(Some("int(10) unsigned"))), 32);
        assert_eq!(unsigned_bits(&col(Some("integer unsigned"))), 32);
        assert_eq!(unsigned_bits(&col(Some("bigint(20) unsigned"))), 64);
        assert_eq!(unsigned_bits(&col(Some("bit(12)"))), 12);
        assert_eq!(unsigned_bits(&col(Some("bit(64)"))), 64);
        assert_eq!(unsigned_bits(&col(Some("bit"))), 64);
        assert_eq!(unsigned_bits(&col(Some("{\"type\":\"long\"}"))), 64);
        assert_eq!(unsigned_bits(&col(None)), 64);
    }

    #[test]
    fn auto_is_exact_or_refused() {
        let how = UnsignedMapping::Auto;
        let big = col(Some("bigint(20) unsigned"));
        let small = col(Some("int(10) unsigned"));
        assert_eq!(uint_mapping(&big, how, &os())["type"], "unsigned_long");
        assert_eq!(uint_mapping(&small, how, &os())["type"], "unsigned_long");
        assert_eq!(uint_mapping(&small, how, &es_oss())["type"], "long");
        let m = uint_mapping(&big, how, &es_oss());
        let err = check("shop.orders", &big, m.as_object().unwrap(), &es_oss()).unwrap_err();
        let text = err.to_string();
        for part in [
            "shop.orders",
            "column id",
            "uint (bigint(20) unsigned)",
            "Elasticsearch 7.17.29 (build flavor oss)",
            "mapping.unsigned = \"keyword\"",
            "mapping.unsigned = \"long\"",
            "nothing was written",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        assert!(check("t", &big, m.as_object().unwrap(), &os()).is_ok());
    }

    #[test]
    fn explicit_choices_hold_everywhere() {
        let big = col(None);
        for info in [os(), es_oss()] {
            assert_eq!(
                uint_mapping(&big, UnsignedMapping::Keyword, &info)["type"],
                "keyword"
            );
            assert_eq!(
                uint_mapping(&big, UnsignedMapping::Long, &info)["type"],
                "long"
            );
        }
    }

    #[test]
    fn copied_mappings_are_adapted_or_refused_at_any_depth() {
        let original = json!({"type": "object", "properties": {
            "n": {"type": "unsigned_long", "null_value": 0},
            "deep": {"properties": {"u": {"type": "unsigned_long"}}},
            "s": {"type": "keyword", "fields": {"u": {"type": "unsigned_long"}}}
        }});
        let c = Column::new("doc", DataType::Json).native(original.to_string());
        let m = original.as_object().unwrap();
        let err = check("idx", &c, m, &es_oss()).unwrap_err().to_string();
        assert!(
            err.contains("column doc: a json column, field doc.deep.u"),
            "{err}"
        );
        assert!(check("idx", &c, m, &os()).is_ok());

        let mut kept = m.clone();
        adapt(&mut kept, UnsignedMapping::Keyword, &os());
        assert_eq!(&kept, m, "a cluster with unsigned_long keeps it");
        let mut auto = m.clone();
        adapt(&mut auto, UnsignedMapping::Auto, &es_oss());
        assert_eq!(&auto, m, "auto changes nothing, check refuses");

        let mut long = m.clone();
        adapt(&mut long, UnsignedMapping::Long, &es_oss());
        assert_eq!(long["properties"]["n"], json!({"type": "long"}));
        assert_eq!(
            long["properties"]["deep"]["properties"]["u"]["type"],
            "long"
        );
        assert_eq!(long["properties"]["s"]["fields"]["u"]["type"], "long");
        assert!(check("idx", &c, &long, &es_oss()).is_ok());
        let mut kw = m.clone();
        adapt(&mut kw, UnsignedMapping::Keyword, &es_oss());
        assert_eq!(kw["properties"]["n"], json!({"type": "keyword"}));
    }
}

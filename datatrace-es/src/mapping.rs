//! Mappings: from a source [`Schema`] to an index mapping (for index creation), and from an
//! index mapping back to a [`Schema`] (for reading an index into a table).
//!
//! Column type -> mapping (the sink; `mapping.*` settings choose between alternatives):
//!
//! | DataType | mapping |
//! |---|---|
//! | Bool | `boolean` |
//! | Int | `long` |
//! | UInt | `unsigned_long`; where the cluster lacks it `long` for columns narrower than 64 bits, and a 64-bit column is refused unless `unsigned` says `long` or `keyword` (see [`crate::unsigned`]) |
//! | Float | `double` |
//! | Decimal(p, s) | `scaled_float` with `scaling_factor` 10^s when p <= 15, else `keyword` (`decimal`: auto, scaled_float, keyword, double) |
//! | String | `text` + `keyword` subfield (`string`: text_keyword, keyword, text) |
//! | Bytes | `binary` |
//! | Date | `date`, format `strict_date` |
//! | Time | `keyword` |
//! | DateTime, Timestamp | `date`, format `strict_date_optional_time\|\|epoch_millis` |
//! | Json | `object` or `flattened` / `flat_object` (`json`: object, flattened) |
//!
//! A column whose `native_type` is itself a mapping (a schema read from another index) keeps
//! that mapping exactly. The column list with the neutral types goes into the mapping's
//! `_meta.datatrace.columns`, so reading the index back restores column order and types
//! (DATETIME vs TIMESTAMP, DECIMAL precision, TIME) that the mapping alone cannot tell.
//!
//! The way back, from a mapping to a schema, is [`crate::inferred`].

use datatrace_core::{Column, DataType, Schema};
use serde_json::{json, Map, Value as Json};

use crate::client::ClusterInfo;
use crate::config::{DecimalMapping, JsonMapping, MappingConfig, StringMapping};
use crate::errors::EsError;
use crate::types::DecimalAs;
use crate::unsigned;

/// Column names the sink never writes as fields: the document id.
pub const ID_COLUMN: &str = "_id";
/// A column holding a record's `_routing` (written in the bulk action line, never as a
/// field); records without it, or with NULL in it, are routed by their id.
pub const ROUTING_COLUMN: &str = "_routing";
/// A JSON object column whose keys are written at the top level of the document (the raw
/// `_source` of a raw read).
pub const SOURCE_COLUMN: &str = "_source";
/// A JSON object column whose keys are written at the top level of the document (fields a
/// typed read found outside the mapping).
pub const EXTRA_COLUMN: &str = "_extra";

/// The mapping of a column given as a mapping in `native_type`, if it is one.
fn native_mapping(c: &Column) -> Option<Map<String, Json>> {
    let t = c.native_type.as_deref()?;
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Json>(t) {
        Ok(Json::Object(m)) if m.contains_key("type") || m.contains_key("properties") => Some(m),
        _ => None,
    }
}

/// How the sink writes a decimal column.
pub fn decimal_as(c: &Column, cfg: &MappingConfig) -> DecimalAs {
    if let Some(m) = native_mapping(c) {
        return match m.get("type").and_then(|t| t.as_str()) {
            Some("keyword" | "text" | "wildcard" | "constant_keyword") => DecimalAs::String,
            _ => DecimalAs::Number,
        };
    }
    match decimal_mapping(c.data_type, cfg) {
        DecimalMapping::Keyword => DecimalAs::String,
        _ => DecimalAs::Number,
    }
}

fn decimal_mapping(t: DataType, cfg: &MappingConfig) -> DecimalMapping {
    match (cfg.decimal, t) {
        (DecimalMapping::Auto, DataType::Decimal { precision, .. }) => {
            if (1..=15).contains(&precision) {
                DecimalMapping::ScaledFloat
            } else {
                DecimalMapping::Keyword
            }
        }
        (d, _) => d,
    }
}

/// The mapping of one column. A column the cluster cannot hold as configured (a 64-bit
/// unsigned one without `unsigned_long`) gets a mapping [`schema_to_mapping`] refuses; see
/// [`check_column`].
pub fn column_mapping(c: &Column, cfg: &MappingConfig, info: &ClusterInfo) -> Json {
    if let Some(mut m) = native_mapping(c) {
        unsigned::adapt(&mut m, cfg.unsigned, info);
        return Json::Object(m);
    }
    let date_time = json!({"type": "date", "format": "strict_date_optional_time||epoch_millis"});
    match c.data_type {
        DataType::Bool => json!({"type": "boolean"}),
        DataType::Int => json!({"type": "long"}),
        DataType::UInt => unsigned::uint_mapping(c, cfg.unsigned, info),
        DataType::Float => json!({"type": "double"}),
        DataType::Decimal { scale, .. } => match decimal_mapping(c.data_type, cfg) {
            DecimalMapping::Keyword | DecimalMapping::Auto => json!({"type": "keyword"}),
            DecimalMapping::Double => json!({"type": "double"}),
            DecimalMapping::ScaledFloat => {
                json!({"type": "scaled_float", "scaling_factor": 10f64.powi(scale.min(15) as i32)})
            }
        },
        DataType::String => match cfg.string {
            StringMapping::TextKeyword => {
                json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
            }
            StringMapping::Keyword => json!({"type": "keyword"}),
            StringMapping::Text => json!({"type": "text"}),
        },
        DataType::Bytes => json!({"type": "binary"}),
        DataType::Date => json!({"type": "date", "format": "strict_date"}),
        DataType::Time => json!({"type": "keyword"}),
        DataType::DateTime | DataType::Timestamp => date_time,
        DataType::Json => match cfg.json {
            JsonMapping::Object => json!({"type": "object"}),
            // Without a flattened type (Elasticsearch 7 without x-pack) the JSON is kept in
            // `_source` but not indexed, rather than exploding into dynamic fields.
            JsonMapping::Flattened => match info.flattened_type() {
                Some(t) => json!({"type": t}),
                None => json!({"type": "object", "enabled": false}),
            },
        },
    }
}

/// Whether the cluster can hold column `c` of `table` as `cfg` maps it: an error naming the
/// table, the column, the cluster and the settings that help when it cannot (a 64-bit
/// unsigned column, or a copied `unsigned_long` field, where the type is missing).
pub fn check_column(
    table: &str,
    c: &Column,
    cfg: &MappingConfig,
    info: &ClusterInfo,
) -> Result<(), EsError> {
    match column_mapping(c, cfg, info) {
        Json::Object(m) => unsigned::check(table, c, &m, info),
        _ => Ok(()),
    }
}

/// The `mappings` body for an index holding rows of `schema`, with composite ids joined by
/// the default separator (see [`schema_to_mapping_with_ids`]).
pub fn schema_to_mapping(
    schema: &Schema,
    cfg: &MappingConfig,
    info: &ClusterInfo,
) -> Result<Json, EsError> {
    schema_to_mapping_with_ids(schema, cfg, info, datatrace_core::doc_id::DEFAULT_SEPARATOR)
}

/// The `mappings` body for an index holding rows of `schema` whose document ids join
/// composite keys with `id_separator`; refused, before anything is written, when a column
/// has no mapping on this cluster as configured ([`check_column`]). Besides the fields,
/// `_meta.datatrace` records the columns (`columns`: name, neutral type, nullable, and the
/// source's native type), the source table (`table`), and, when the rows have a key of
/// their own, its columns (`key`) and the separator (`id_separator`), so that a reader can
/// decode document ids back into key columns ([`datatrace_core::doc_id`]). A raw copy's
/// mapping keeps the source index's own `_meta`.
pub fn schema_to_mapping_with_ids(
    schema: &Schema,
    cfg: &MappingConfig,
    info: &ClusterInfo,
    id_separator: &str,
) -> Result<Json, EsError> {
    let table = schema.qualified_name();
    let mut props = Map::new();
    let mut meta_cols = Vec::new();
    let mut base: Option<Map<String, Json>> = None;
    for c in schema.columns() {
        match c.name.as_str() {
            ID_COLUMN | EXTRA_COLUMN | ROUTING_COLUMN => continue,
            SOURCE_COLUMN if c.data_type == DataType::Json => {
                // A raw read: the whole mapping of the source index travels here.
                base = native_mapping(c);
                if let Some(b) = base.as_mut() {
                    unsigned::adapt(b, cfg.unsigned, info);
                    unsigned::check(&table, c, b, info)?;
                }
                continue;
            }
            _ => {}
        }
        let mapping = column_mapping(c, cfg, info);
        if let Json::Object(m) = &mapping {
            unsigned::check(&table, c, m, info)?;
        }
        props.insert(c.name.clone(), mapping);
        let mut mc = json!({"name": c.name, "data_type": c.data_type, "nullable": c.nullable});
        if let Some(n) = c.native_type.as_deref().filter(|n| !n.starts_with('{')) {
            mc["native_type"] = Json::String(n.to_string());
        }
        meta_cols.push(mc);
    }
    let raw = base.is_some();
    let mut mapping = base.unwrap_or_default();
    if !raw || !meta_cols.is_empty() {
        mapping.remove("_meta");
    }
    let merged = mapping
        .entry("properties")
        .or_insert_with(|| Json::Object(Map::new()));
    if let Json::Object(m) = merged {
        for (k, v) in props {
            m.entry(k).or_insert(v);
        }
    }
    if !meta_cols.is_empty() {
        let mut meta = json!({"columns": meta_cols, "table": schema.qualified_name()});
        let key = schema.primary_key_names();
        if !key.is_empty() && !key.contains(&ID_COLUMN) {
            meta["key"] = json!(key);
            meta["id_separator"] = json!(id_separator);
        }
        mapping.insert("_meta".into(), json!({ "datatrace": meta }));
    }
    if let Some(d) = &cfg.dynamic {
        mapping.insert("dynamic".into(), Json::String(d.clone()));
    }
    Ok(Json::Object(mapping))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Flavor;
    use crate::config::SourceConfig;
    use crate::inferred::mapping_to_schema;

    fn os() -> ClusterInfo {
        ClusterInfo {
            flavor: Flavor::OpenSearch,
            version: "2.11.0".into(),
            semver: (2, 11, 0),
            cluster_name: String::new(),
            build_flavor: String::new(),
        }
    }

    fn schema() -> Schema {
        Schema::new(
            "orders",
            vec![
                Column::new("id", DataType::UInt).not_null(),
                Column::new(
                    "price",
                    DataType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                Column::new(
                    "big",
                    DataType::Decimal {
                        precision: 30,
                        scale: 4,
                    },
                ),
                Column::new("at", DataType::DateTime),
                Column::new("day", DataType::Date),
                Column::new("doc", DataType::Json),
                Column::new("name", DataType::String),
                Column::new("t", DataType::Time),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id"])
        .unwrap()
    }

    #[test]
    fn schema_to_mapping_follows_the_table() {
        let m = schema_to_mapping(&schema(), &MappingConfig::default(), &os()).unwrap();
        let p = &m["properties"];
        assert_eq!(p["id"], json!({"type": "unsigned_long"}));
        assert_eq!(
            p["price"],
            json!({"type": "scaled_float", "scaling_factor": 100.0})
        );
        assert_eq!(p["big"], json!({"type": "keyword"}));
        assert_eq!(p["day"]["format"], "strict_date");
        assert_eq!(p["doc"], json!({"type": "object"}));
        assert_eq!(p["name"]["fields"]["keyword"]["type"], "keyword");
        assert_eq!(m["_meta"]["datatrace"]["columns"][0]["name"], "id");
        let cfg = MappingConfig {
            json: JsonMapping::Flattened,
            decimal: DecimalMapping::Keyword,
            ..Default::default()
        };
        let m = schema_to_mapping(&schema(), &cfg, &os()).unwrap();
        assert_eq!(m["properties"]["doc"]["type"], "flat_object");
        assert_eq!(m["properties"]["price"]["type"], "keyword");
    }

    #[test]
    fn mapping_round_trips_types_through_meta() {
        let m = schema_to_mapping(&schema(), &MappingConfig::default(), &os()).unwrap();
        let answer = json!({"orders": {"mappings": m}});
        let inferred = mapping_to_schema("orders", &answer, &SourceConfig::new("orders")).unwrap();
        let s = inferred.schema;
        let names: Vec<_> = s.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["_id", "id", "price", "big", "at", "day", "doc", "name", "t", "_extra"]
        );
        assert_eq!(s.column("at").unwrap().data_type, DataType::DateTime);
        assert_eq!(s.column("t").unwrap().data_type, DataType::Time);
        assert_eq!(s.primary_key_names(), ["_id"]);
    }

    #[test]
    fn plain_mappings_infer_types_and_flatten_on_request() {
        let answer = json!({"i": {"mappings": {"properties": {
            "n": {"type": "long"}, "u": {"type": "unsigned_long"},
            "s": {"type": "scaled_float", "scaling_factor": 1000},
            "o": {"properties": {"x": {"type": "keyword"}, "y": {"properties": {"z": {"type": "date"}}}}},
            "nest": {"type": "nested", "properties": {"a": {"type": "long"}}},
            "al": {"type": "alias", "path": "n"}
        }}}});
        let s = mapping_to_schema("i", &answer, &SourceConfig::new("i"))
            .unwrap()
            .schema;
        assert_eq!(
            s.column("s").unwrap().data_type,
            DataType::Decimal {
                precision: 0,
                scale: 3
            }
        );
        assert_eq!(s.column("o").unwrap().data_type, DataType::Json);
        assert_eq!(s.column("nest").unwrap().data_type, DataType::Json);
        assert!(s.column("al").is_none());
        let cfg = SourceConfig {
            flatten_objects: true,
            ..SourceConfig::new("i")
        };
        let inf = mapping_to_schema("i", &answer, &cfg).unwrap();
        assert_eq!(
            inf.schema.column("o.y.z").unwrap().data_type,
            DataType::Timestamp
        );
        assert!(inf.objects.contains("o.y"));
        assert_eq!(inf.schema.column("nest").unwrap().data_type, DataType::Json);
        let raw = SourceConfig {
            raw: true,
            ..SourceConfig::new("i")
        };
        let s = mapping_to_schema("i", &answer, &raw).unwrap().schema;
        assert_eq!(s.len(), 2);
        let back = schema_to_mapping(&s, &MappingConfig::default(), &os()).unwrap();
        assert_eq!(back["properties"]["u"]["type"], "unsigned_long");
    }
}

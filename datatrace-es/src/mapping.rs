//! Mappings: from a source [`Schema`] to an index mapping (for index creation), and from an
//! index mapping back to a [`Schema`] (for reading an index into a table).
//!
//! Column type -> mapping (the sink; `mapping.*` settings choose between alternatives):
//!
//! | DataType | mapping |
//! |---|---|
//! | Bool | `boolean` |
//! | Int | `long` |
//! | UInt | `unsigned_long` (`long` where the cluster lacks it) |
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
//! Mapping -> column type (the source):
//!
//! | mapping | DataType |
//! |---|---|
//! | keyword, constant_keyword, wildcard, text, match_only_text, search_as_you_type, ip, version | String |
//! | long, integer, short, byte | Int |
//! | unsigned_long | UInt |
//! | double, float, half_float | Float |
//! | scaled_float | Decimal (scale from `scaling_factor`) |
//! | boolean | Bool |
//! | binary | Bytes |
//! | date, date_nanos | Timestamp (Date when the format is date-only) |
//! | object, nested, flattened, flat_object, geo_*, ranges, anything else | Json |
//! | alias | (no column: not in `_source`) |

use datatrace_core::{Column, DataType, Schema};
use serde_json::{json, Map, Value as Json};

use crate::client::ClusterInfo;
use crate::config::{DecimalMapping, JsonMapping, MappingConfig, SourceConfig, StringMapping};
use crate::errors::EsError;
use crate::types::DecimalAs;

/// Column names the sink never writes as fields: the document id.
pub const ID_COLUMN: &str = "_id";
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

/// The mapping of one column.
pub fn column_mapping(c: &Column, cfg: &MappingConfig, info: &ClusterInfo) -> Json {
    if let Some(m) = native_mapping(c) {
        return Json::Object(m);
    }
    let date_time = json!({"type": "date", "format": "strict_date_optional_time||epoch_millis"});
    match c.data_type {
        DataType::Bool => json!({"type": "boolean"}),
        DataType::Int => json!({"type": "long"}),
        DataType::UInt if info.has_unsigned_long() => json!({"type": "unsigned_long"}),
        DataType::UInt => json!({"type": "long"}),
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
            JsonMapping::Flattened => json!({"type": info.flattened_type()}),
        },
    }
}

/// The `mappings` body for an index holding rows of `schema`.
pub fn schema_to_mapping(schema: &Schema, cfg: &MappingConfig, info: &ClusterInfo) -> Json {
    let mut props = Map::new();
    let mut meta_cols = Vec::new();
    let mut base: Option<Map<String, Json>> = None;
    for c in schema.columns() {
        match c.name.as_str() {
            ID_COLUMN | EXTRA_COLUMN => continue,
            SOURCE_COLUMN if c.data_type == DataType::Json => {
                // A raw read: the whole mapping of the source index travels here.
                base = native_mapping(c);
                continue;
            }
            _ => {}
        }
        props.insert(c.name.clone(), column_mapping(c, cfg, info));
        meta_cols.push(json!({"name": c.name, "data_type": c.data_type, "nullable": c.nullable}));
    }
    let mut mapping = base.unwrap_or_default();
    mapping.remove("_meta");
    let merged = mapping
        .entry("properties")
        .or_insert_with(|| Json::Object(Map::new()));
    if let Json::Object(m) = merged {
        for (k, v) in props {
            m.entry(k).or_insert(v);
        }
    }
    if !meta_cols.is_empty() {
        mapping.insert(
            "_meta".into(),
            json!({"datatrace": {"columns": meta_cols, "table": schema.qualified_name()}}),
        );
    }
    if let Some(d) = &cfg.dynamic {
        mapping.insert("dynamic".into(), Json::String(d.clone()));
    }
    Json::Object(mapping)
}

/// The neutral type of a field mapping; `None` for fields that are not in `_source`.
pub fn field_type(m: &Map<String, Json>) -> Option<DataType> {
    let ty = match m.get("type").and_then(|t| t.as_str()) {
        None => return Some(DataType::Json), // an object with properties
        Some(t) => t,
    };
    Some(match ty {
        "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text"
        | "search_as_you_type" | "ip" | "version" => DataType::String,
        "long" | "integer" | "short" | "byte" => DataType::Int,
        "unsigned_long" => DataType::UInt,
        "double" | "float" | "half_float" => DataType::Float,
        "scaled_float" => {
            let f = m
                .get("scaling_factor")
                .and_then(|f| f.as_f64())
                .unwrap_or(1.0);
            let scale = f.log10().round().clamp(0.0, 30.0) as u8;
            DataType::Decimal {
                precision: 0,
                scale,
            }
        }
        "boolean" => DataType::Bool,
        "binary" => DataType::Bytes,
        "date" | "date_nanos" => {
            let fmt = m.get("format").and_then(|f| f.as_str()).unwrap_or("");
            if matches!(fmt, "strict_date" | "date" | "yyyy-MM-dd") {
                DataType::Date
            } else {
                DataType::Timestamp
            }
        }
        "alias" => return None,
        _ => DataType::Json,
    })
}

/// What a typed read needs to know about an index: its schema and, with `flatten_objects`,
/// which dotted paths are objects to descend into.
#[derive(Debug, Clone)]
pub struct InferredSchema {
    /// The schema: the id column (primary key), the fields, and the extra column if any.
    pub schema: Schema,
    /// Dotted paths of objects that were flattened into columns.
    pub objects: std::collections::HashSet<String>,
}

/// Infers the schema of `unit` from the answer of `GET index/_mapping` (several indices for
/// a pattern or alias: their fields are merged; a field mapped differently becomes Json).
pub fn mapping_to_schema(
    unit: &str,
    answer: &Json,
    cfg: &SourceConfig,
) -> Result<InferredSchema, EsError> {
    let indices = answer.as_object().ok_or_else(|| EsError::Mapping {
        index: unit.into(),
        reason: "the mapping answer is not an object".into(),
    })?;
    let mut fields: Vec<(String, DataType, Map<String, Json>)> = Vec::new();
    let mut objects = std::collections::HashSet::new();
    let mut meta: Option<Vec<Column>> = None;
    let mut whole: Option<Map<String, Json>> = None;
    for (_, idx) in indices {
        let Some(m) = idx.get("mappings").and_then(|m| m.as_object()) else {
            continue;
        };
        if whole.is_none() {
            whole = Some(m.clone());
        }
        if meta.is_none() {
            meta = m
                .get("_meta")
                .and_then(|x| x.pointer("/datatrace/columns"))
                .and_then(|c| serde_json::from_value::<Vec<Column>>(c.clone()).ok());
        }
        let props = m.get("properties").and_then(|p| p.as_object());
        collect(props, "", cfg.flatten_objects, &mut fields, &mut objects);
    }
    if indices.is_empty() {
        return Err(EsError::IndexNotFound { index: unit.into() });
    }
    let mut columns = vec![Column::new(cfg.id_column.clone(), DataType::String)
        .not_null()
        .native("{\"type\":\"keyword\"}")];
    if cfg.raw {
        let mut c = Column::new(SOURCE_COLUMN, DataType::Json);
        if let Some(w) = whole {
            c = c.native(Json::Object(w).to_string());
        }
        columns.push(c);
    } else {
        // Known columns first, in their original order and with their original types.
        let mut used = std::collections::HashSet::new();
        for mc in meta.unwrap_or_default() {
            if let Some((_, _, m)) = fields.iter().find(|(n, _, _)| *n == mc.name) {
                used.insert(mc.name.clone());
                let native = Json::Object(m.clone()).to_string();
                columns.push(Column::new(mc.name, mc.data_type).native(native));
            }
        }
        for (name, ty, m) in &fields {
            if !used.contains(name) && *name != cfg.id_column {
                columns.push(
                    Column::new(name.clone(), *ty).native(Json::Object(m.clone()).to_string()),
                );
            }
        }
        if let Some(extra) = &cfg.extra_column {
            columns.push(Column::new(extra.clone(), DataType::Json));
        }
    }
    let schema = Schema::new(unit, columns)
        .with_primary_key(&[cfg.id_column.as_str()])
        .map_err(|e| EsError::Mapping {
            index: unit.into(),
            reason: e.to_string(),
        })?;
    Ok(InferredSchema { schema, objects })
}

fn collect(
    props: Option<&Map<String, Json>>,
    prefix: &str,
    flatten: bool,
    out: &mut Vec<(String, DataType, Map<String, Json>)>,
    objects: &mut std::collections::HashSet<String>,
) {
    let Some(props) = props else { return };
    for (name, m) in props {
        let Some(m) = m.as_object() else { continue };
        let full = format!("{prefix}{name}");
        let is_plain_object = m.get("properties").is_some()
            && m.get("type")
                .and_then(|t| t.as_str())
                .is_none_or(|t| t == "object");
        if flatten && is_plain_object {
            objects.insert(full.clone());
            let sub = m.get("properties").and_then(|p| p.as_object());
            collect(sub, &format!("{full}."), flatten, out, objects);
            continue;
        }
        let Some(ty) = field_type(m) else { continue };
        match out.iter_mut().find(|(n, _, _)| *n == full) {
            Some(existing) if existing.1 != ty => existing.1 = DataType::Json,
            Some(_) => {}
            None => out.push((full, ty, m.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Flavor;

    fn os() -> ClusterInfo {
        ClusterInfo {
            flavor: Flavor::OpenSearch,
            version: "2.11.0".into(),
            semver: (2, 11, 0),
            cluster_name: String::new(),
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
        let m = schema_to_mapping(&schema(), &MappingConfig::default(), &os());
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
        let m = schema_to_mapping(&schema(), &cfg, &os());
        assert_eq!(m["properties"]["doc"]["type"], "flat_object");
        assert_eq!(m["properties"]["price"]["type"], "keyword");
    }

    #[test]
    fn mapping_round_trips_types_through_meta() {
        let m = schema_to_mapping(&schema(), &MappingConfig::default(), &os());
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
        let back = schema_to_mapping(&s, &MappingConfig::default(), &os());
        assert_eq!(back["properties"]["u"]["type"], "unsigned_long");
    }
}

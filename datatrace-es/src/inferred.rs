//! Schemas read back from index mappings (the ES source): each field's neutral type, the
//! columns recorded by the sink in `_meta.datatrace`, and how document ids decode into key
//! columns.
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
use serde_json::{Map, Value as Json};

use crate::config::SourceConfig;
use crate::errors::EsError;
use crate::mapping::{ID_COLUMN, SOURCE_COLUMN};

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
    /// The schema: the id column (primary key) unless switched off, the fields, and the
    /// extra column if any.
    pub schema: Schema,
    /// Dotted paths of objects that were flattened into columns.
    pub objects: std::collections::HashSet<String>,
    /// Without an id column: how document ids decode into the key columns.
    pub id_key: Option<IdKey>,
}

/// The key columns a document id decodes into ([`datatrace_core::doc_id`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IdKey {
    /// Positions of the key columns in the schema, in key order.
    pub columns: Vec<usize>,
    /// Their types.
    pub types: Vec<DataType>,
    /// The separator of composite ids.
    pub separator: String,
}

/// What `_meta.datatrace` of a mapping written by the sink says.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Meta {
    #[serde(default)]
    columns: Option<Vec<Column>>,
    #[serde(default)]
    key: Option<Vec<String>>,
    #[serde(default)]
    id_separator: Option<String>,
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
    if indices.is_empty() {
        return Err(EsError::IndexNotFound { index: unit.into() });
    }
    let merged = Merged::read(indices, cfg.flatten_objects);
    // A raw read is `_id` + `_source` whatever the settings.
    let id_column = match (&cfg.id_column, cfg.raw) {
        (Some(c), _) => Some(c.clone()),
        (None, true) => Some(ID_COLUMN.to_string()),
        (None, false) => None,
    };
    let columns = merged.columns(id_column.as_deref(), cfg);
    let (schema, id_key) = keyed(
        unit,
        Schema::new(unit, columns),
        id_column.as_deref(),
        merged.meta_key,
    )?;
    Ok(InferredSchema {
        schema,
        objects: merged.objects,
        id_key,
    })
}

/// What the mappings of the indices behind a name say together.
#[derive(Default)]
struct Merged {
    /// Every field (dotted path), its type and its mapping, in mapping order.
    fields: Vec<(String, DataType, Map<String, Json>)>,
    /// Dotted paths of objects flattened into columns.
    objects: std::collections::HashSet<String>,
    /// The columns the sink recorded in `_meta.datatrace` (the first index that has them).
    meta: Option<Vec<Column>>,
    /// The key columns and id separator recorded there.
    meta_key: Option<(Vec<String>, String)>,
    /// The first index's whole mapping (the native type of a raw `_source` column).
    whole: Option<Map<String, Json>>,
}

impl Merged {
    fn read(indices: &Map<String, Json>, flatten: bool) -> Merged {
        let mut m = Merged::default();
        for idx in indices.values() {
            let Some(mapping) = idx.get("mappings").and_then(|m| m.as_object()) else {
                continue;
            };
            if m.whole.is_none() {
                m.whole = Some(mapping.clone());
            }
            if m.meta.is_none() {
                m.read_meta(mapping);
            }
            let props = mapping.get("properties").and_then(|p| p.as_object());
            collect(props, "", flatten, &mut m.fields, &mut m.objects);
        }
        m
    }

    fn read_meta(&mut self, mapping: &Map<String, Json>) {
        let dt: Meta = mapping
            .get("_meta")
            .and_then(|x| x.get("datatrace"))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        self.meta = dt.columns;
        if let Some(k) = dt.key.filter(|k| !k.is_empty()) {
            let sep = dt
                .id_separator
                .unwrap_or_else(|| datatrace_core::doc_id::DEFAULT_SEPARATOR.into());
            self.meta_key = Some((k, sep));
        }
    }

    /// The columns: the id column if any, then the raw `_source`, or the recorded columns
    /// in their original order and types followed by the other fields and the extra column.
    fn columns(&self, id_column: Option<&str>, cfg: &SourceConfig) -> Vec<Column> {
        let mut columns = Vec::new();
        if let Some(id) = id_column {
            columns.push(
                Column::new(id, DataType::String)
                    .not_null()
                    .native("{\"type\":\"keyword\"}"),
            );
        }
        if cfg.raw {
            let mut c = Column::new(SOURCE_COLUMN, DataType::Json);
            if let Some(w) = &self.whole {
                c = c.native(Json::Object(w.clone()).to_string());
            }
            columns.push(c);
            return columns;
        }
        let mut used = std::collections::HashSet::new();
        for mc in self.meta.clone().unwrap_or_default() {
            if let Some((_, _, m)) = self.fields.iter().find(|(n, _, _)| *n == mc.name) {
                used.insert(mc.name.clone());
                // The source's own column type when it recorded one (a MySQL table: the
                // copy back gets the same types), else the field's mapping.
                let native = match mc.native_type {
                    Some(n) if id_column.is_none() => n,
                    _ => Json::Object(m.clone()).to_string(),
                };
                let mut col = Column::new(mc.name, mc.data_type).native(native);
                col.nullable = mc.nullable;
                columns.push(col);
            }
        }
        for (name, ty, m) in &self.fields {
            if !used.contains(name) && Some(name.as_str()) != id_column {
                columns.push(
                    Column::new(name.clone(), *ty).native(Json::Object(m.clone()).to_string()),
                );
            }
        }
        if let Some(extra) = &cfg.extra_column {
            columns.push(Column::new(extra.clone(), DataType::Json));
        }
        columns
    }
}

/// The schema with its primary key: the id column, or the key recorded in the mapping
/// (then document ids decode into it), or none.
fn keyed(
    unit: &str,
    schema: Schema,
    id_column: Option<&str>,
    meta_key: Option<(Vec<String>, String)>,
) -> Result<(Schema, Option<IdKey>), EsError> {
    let mapping_error = |e: datatrace_core::schema::UnknownColumn| EsError::Mapping {
        index: unit.into(),
        reason: e.to_string(),
    };
    match (id_column, meta_key) {
        (Some(id), _) => Ok((schema.with_primary_key(&[id]).map_err(mapping_error)?, None)),
        (None, Some((key, separator))) if key.iter().all(|k| schema.index_of(k).is_some()) => {
            let schema = schema.with_primary_key(&key).map_err(mapping_error)?;
            let columns = schema.primary_key().to_vec();
            let types = columns
                .iter()
                .map(|&i| schema.columns()[i].data_type)
                .collect();
            let key = IdKey {
                columns,
                types,
                separator,
            };
            Ok((schema, Some(key)))
        }
        (None, _) => {
            tracing::warn!(index = unit, "id_column is off and the mapping names no key (_meta.datatrace.key): the rows have no key");
            Ok((schema, None))
        }
    }
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
    use serde_json::json;

    /// The answer of `GET index/_mapping` for one index with `properties` and `_meta`.
    fn answer(properties: Json, meta: Option<Json>) -> Json {
        let mut mappings = json!({ "properties": properties });
        if let Some(m) = meta {
            mappings["_meta"] = json!({ "datatrace": m });
        }
        json!({ "i": { "mappings": mappings } })
    }

    fn no_id() -> SourceConfig {
        SourceConfig {
            id_column: None,
            extra_column: None,
            ..SourceConfig::new("i")
        }
    }

    fn props() -> Json {
        json!({
            "v": {"type": "text"},
            "b": {"type": "long"},
            "a": {"type": "keyword"},
            "d": {"type": "date", "format": "strict_date"}
        })
    }

    #[test]
    fn a_recorded_key_gives_the_key_columns_ids_decode_into() {
        let meta = json!({"key": ["a", "b", "d"], "id_separator": "|"});
        let got = mapping_to_schema("i", &answer(props(), Some(meta)), &no_id()).unwrap();
        let names: Vec<&str> = got.schema.primary_key_names();
        assert_eq!(names, ["a", "b", "d"]);
        let k = got.id_key.expect("an id key");
        let cols = got.schema.columns();
        let of = |n: &str| got.schema.index_of(n).unwrap();
        assert_eq!(k.columns, [of("a"), of("b"), of("d")]);
        assert_eq!(k.types, [DataType::String, DataType::Int, DataType::Date]);
        assert_eq!(k.separator, "|");
        assert!(cols.iter().all(|c| c.name != ID_COLUMN));
    }

    #[test]
    fn without_a_recorded_separator_the_default_one_is_used() {
        let meta = json!({"key": ["b", "a"]});
        let got = mapping_to_schema("i", &answer(props(), Some(meta)), &no_id()).unwrap();
        let k = got.id_key.expect("an id key");
        assert_eq!(k.separator, datatrace_core::doc_id::DEFAULT_SEPARATOR);
        assert_eq!(k.types, [DataType::Int, DataType::String]);
        assert_eq!(got.schema.primary_key_names(), ["b", "a"]);
    }

    #[test]
    fn an_id_column_is_the_key_and_nothing_is_decoded() {
        let meta = json!({"key": ["a", "b"]});
        let cfg = SourceConfig::new("i");
        let got = mapping_to_schema("i", &answer(props(), Some(meta)), &cfg).unwrap();
        assert_eq!(got.id_key, None);
        assert_eq!(got.schema.primary_key_names(), [ID_COLUMN]);
        assert_eq!(got.schema.columns()[0].name, ID_COLUMN);
    }

    #[test]
    fn no_key_when_the_mapping_names_none_or_an_unknown_column() {
        for meta in [
            None,
            Some(json!({"key": []})),
            Some(json!({"key": ["a", "gone"]})),
            Some(json!({"key": "a"})),
        ] {
            let got = mapping_to_schema("i", &answer(props(), meta.clone()), &no_id()).unwrap();
            assert_eq!(got.id_key, None, "{meta:?}");
            assert!(got.schema.primary_key().is_empty(), "{meta:?}");
        }
    }

    #[test]
    fn keyed_follows_the_recorded_order_and_drops_a_key_it_cannot_find() {
        let schema = Schema::new(
            "i",
            vec![
                Column::new("x", DataType::Int),
                Column::new("y", DataType::String),
            ],
        );
        let (s, k) = keyed(
            "i",
            schema.clone(),
            None,
            Some((vec!["y".into(), "x".into()], "~".into())),
        )
        .unwrap();
        assert_eq!(s.primary_key(), [1, 0]);
        let k = k.unwrap();
        assert_eq!(k.columns, [1, 0]);
        assert_eq!(k.types, [DataType::String, DataType::Int]);
        assert_eq!(k.separator, "~");
        let (s, k) = keyed("i", schema, None, Some((vec!["z".into()], "_".into()))).unwrap();
        assert!(k.is_none() && s.primary_key().is_empty());
    }
}

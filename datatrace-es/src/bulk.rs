//! The `_bulk` wire format: NDJSON bodies written straight into byte buffers, and the
//! item-by-item answer sorted into per-record outcomes.

use datatrace_core::{Outcome, Schema, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::MappingConfig;
use crate::errors::describe_error;
use crate::mapping::{decimal_as, EXTRA_COLUMN, ID_COLUMN, ROUTING_COLUMN, SOURCE_COLUMN};
use crate::types::{write_json_text, write_str, write_value, DecimalAs};

/// The bulk action of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOp {
    /// `index`.
    Index,
    /// `create`.
    Create,
    /// `update` with `doc`.
    Update,
    /// `update` with `doc` and `doc_as_upsert`.
    Upsert,
    /// `delete`.
    Delete,
}

impl ItemOp {
    /// The action name in the action line.
    pub fn name(&self) -> &'static str {
        match self {
            ItemOp::Index => "index",
            ItemOp::Create => "create",
            ItemOp::Update | ItemOp::Upsert => "update",
            ItemOp::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
enum ColKind {
    /// Not a field (the document id).
    Skip,
    /// A JSON object whose keys go to the top level.
    Merge,
    /// A field, with the way decimals are written.
    Field(DecimalAs),
    /// A JSON column: a document, or the exact JSON text of a store that keeps JSON as text
    /// (MariaDB), parsed and written as JSON.
    Json,
}

/// How the columns of one schema are written: the pre-escaped `"name":` of each field and
/// its kind. Built once per schema and reused for every record.
#[derive(Debug, Clone)]
pub struct DocPlan {
    keys: Vec<Vec<u8>>,
    kinds: Vec<ColKind>,
    has_merge: bool,
    routing: Option<usize>,
}

impl DocPlan {
    /// The plan for `schema`.
    pub fn new(schema: &Schema, mapping: &MappingConfig) -> DocPlan {
        let mut keys = Vec::with_capacity(schema.len());
        let mut kinds = Vec::with_capacity(schema.len());
        let mut has_merge = false;
        let mut routing = None;
        for (i, c) in schema.columns().iter().enumerate() {
            let mut k = Vec::with_capacity(c.name.len() + 3);
            write_str(&mut k, &c.name);
            k.push(b':');
            keys.push(k);
            let kind = match c.name.as_str() {
                ID_COLUMN => ColKind::Skip,
                ROUTING_COLUMN => {
                    routing = Some(i);
                    ColKind::Skip
                }
                SOURCE_COLUMN | EXTRA_COLUMN if c.data_type == datatrace_core::DataType::Json => {
                    has_merge = true;
                    ColKind::Merge
                }
                _ if c.data_type == datatrace_core::DataType::Json => ColKind::Json,
                _ => ColKind::Field(decimal_as(c, mapping)),
            };
            kinds.push(kind);
        }
        DocPlan {
            keys,
            kinds,
            has_merge,
            routing,
        }
    }

    /// The `_routing` of a row: the value of its [`ROUTING_COLUMN`], if the schema has one
    /// and it is not NULL.
    pub fn routing(&self, values: &[Value]) -> Option<String> {
        match values.get(self.routing?)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Appends the document of a row as one JSON object. `Err` names a column whose value
    /// cannot be written (JSON text that is not a JSON document Elasticsearch can hold); the
    /// caller cuts what was appended.
    pub fn write_doc(
        &self,
        buf: &mut Vec<u8>,
        schema: &Schema,
        values: &[Value],
        nulls: bool,
    ) -> Result<(), String> {
        buf.push(b'{');
        let mut first = true;
        for ((key, kind), v) in self.keys.iter().zip(&self.kinds).zip(values) {
            match kind {
                ColKind::Skip => {}
                ColKind::Json => {
                    if !nulls && v.is_null() {
                        continue;
                    }
                    if !first {
                        buf.push(b',');
                    }
                    first = false;
                    buf.extend_from_slice(key);
                    match v {
                        // JSON kept as text: written as it is (numbers with all their digits).
                        Value::String(text) => write_json_text(buf, text).map_err(|e| {
                            let name = String::from_utf8_lossy(key);
                            format!(
                                "column {}: its JSON text cannot be written as a document: {e}",
                                name.trim_end_matches(':').trim_matches('"')
                            )
                        })?,
                        other => write_value(buf, other, DecimalAs::String),
                    }
                }
                ColKind::Field(d) => {
                    if !nulls && v.is_null() {
                        continue;
                    }
                    if !first {
                        buf.push(b',');
                    }
                    first = false;
                    buf.extend_from_slice(key);
                    write_value(buf, v, *d);
                }
                ColKind::Merge => match v {
                    Value::Json(Json::Object(m)) => {
                        for (k, x) in m {
                            if self.has_merge && schema.index_of(k).is_some() {
                                continue; // a column of the same name wins
                            }
                            if !first {
                                buf.push(b',');
                            }
                            first = false;
                            write_str(buf, k);
                            buf.push(b':');
                            let _ = serde_json::to_writer(&mut *buf, x);
                        }
                    }
                    Value::Null => {}
                    other => {
                        if !first {
                            buf.push(b',');
                        }
                        first = false;
                        buf.extend_from_slice(key);
                        write_value(buf, other, DecimalAs::String);
                    }
                },
            }
        }
        buf.push(b'}');
        Ok(())
    }
}

/// Appends an action line: `{"index":{"_index":"i","_id":"1"}}\n`, with a routing and an
/// external version when given.
pub fn write_action(
    buf: &mut Vec<u8>,
    op: ItemOp,
    index: &str,
    id: Option<&str>,
    routing: Option<&str>,
    version: Option<u64>,
) {
    buf.extend_from_slice(b"{\"");
    buf.extend_from_slice(op.name().as_bytes());
    buf.extend_from_slice(b"\":{\"_index\":");
    write_str(buf, index);
    if let Some(id) = id {
        buf.extend_from_slice(b",\"_id\":");
        write_str(buf, id);
    }
    if let Some(r) = routing {
        buf.extend_from_slice(b",\"routing\":");
        write_str(buf, r);
    }
    if let Some(v) = version {
        buf.extend_from_slice(b",\"version\":");
        buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        buf.extend_from_slice(b",\"version_type\":\"external\"");
    }
    buf.extend_from_slice(b"}}\n");
}

/// One answered item: its status and, for failures, the error object.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemBody {
    /// The HTTP status of this item.
    pub status: u16,
    /// The error object of a failed item.
    #[serde(default)]
    pub error: Option<Json>,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    index: Option<ItemBody>,
    #[serde(default)]
    create: Option<ItemBody>,
    #[serde(default)]
    update: Option<ItemBody>,
    #[serde(default)]
    delete: Option<ItemBody>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    items: Vec<RawItem>,
}

/// Parses a bulk answer into its items, in request order.
pub fn parse_items(body: &[u8]) -> Result<Vec<ItemBody>, String> {
    let r: RawResponse =
        serde_json::from_slice(body).map_err(|e| format!("bulk answer is not valid: {e}"))?;
    r.items
        .into_iter()
        .map(|i| {
            i.index
                .or(i.create)
                .or(i.update)
                .or(i.delete)
                .ok_or_else(|| "bulk answer item without an action".to_string())
        })
        .collect()
}

/// The error type of an item (`version_conflict_engine_exception`).
fn error_type(item: &ItemBody) -> &str {
    item.error
        .as_ref()
        .and_then(|e| e.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
}

/// Sorts an answered item into an outcome for its record.
///
/// - 2xx: written; a 404 on `delete`: written (already gone).
/// - 409 version conflict with external versioning (a newer version is there) or on
///   `create` (the document exists, e.g. written by an earlier attempt): written.
/// - 429, 502, 503, 504: retryable, alone.
/// - anything else (mapping errors, ...): rejected with the reason, naming index and id.
pub fn classify(item: &ItemBody, op: ItemOp, external: bool, index: &str, id: &str) -> Outcome {
    let s = item.status;
    if (200..300).contains(&s) {
        return Outcome::Written;
    }
    if s == 404 && op == ItemOp::Delete {
        return Outcome::Written;
    }
    if s == 409
        && (external || op == ItemOp::Create)
        && error_type(item) == "version_conflict_engine_exception"
    {
        return Outcome::Written;
    }
    let reason = item
        .error
        .as_ref()
        .map(describe_error)
        .unwrap_or_else(|| "no reason given".into());
    let msg = format!("index {index}, document {id}: HTTP {s}: {reason}");
    if crate::errors::is_retryable_status(s) {
        Outcome::Retryable(msg.into())
    } else {
        Outcome::Rejected(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datatrace_core::{Column, DataType};
    use serde_json::json;

    #[test]
    fn documents_and_actions_are_valid_ndjson() {
        let schema = Schema::new(
            "t",
            vec![
                Column::new("_id", DataType::String),
                Column::new("a", DataType::Int),
                Column::new(
                    "d",
                    DataType::Decimal {
                        precision: 40,
                        scale: 2,
                    },
                ),
                Column::new("n", DataType::String),
                Column::new("_extra", DataType::Json),
            ],
        );
        let plan = DocPlan::new(&schema, &MappingConfig::default());
        let values = vec![
            Value::from("x"),
            Value::Int(1),
            Value::Decimal("1.50".parse().unwrap()),
            Value::Null,
            Value::Json(json!({"z": [1, {"q": null}], "a": 99})),
        ];
        let mut buf = Vec::new();
        write_action(&mut buf, ItemOp::Index, "idx", Some("x\"1"), None, Some(7));
        plan.write_doc(&mut buf, &schema, &values, true).unwrap();
        buf.push(b'\n');
        let text = String::from_utf8(buf.clone()).unwrap();
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            json!({"index": {"_index": "idx", "_id": "x\"1", "version": 7, "version_type": "external"}})
        );
        assert_eq!(
            lines[1],
            json!({"a": 1, "d": "1.50", "n": null, "z": [1, {"q": null}]})
        );
        buf.clear();
        plan.write_doc(&mut buf, &schema, &values, false).unwrap();
        assert!(!String::from_utf8(buf).unwrap().contains("\"n\""));
    }

    #[test]
    fn items_are_sorted_into_outcomes() {
        let body = br#"{"took":1,"errors":true,"items":[
            {"index":{"_id":"1","status":201,"result":"created"}},
            {"index":{"_id":"2","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [a]"}}},
            {"create":{"_id":"3","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"delete":{"_id":"4","status":404,"result":"not_found"}},
            {"index":{"_id":"5","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#;
        let items = parse_items(body).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(
            classify(&items[0], ItemOp::Index, false, "i", "1"),
            Outcome::Written
        );
        match classify(&items[1], ItemOp::Index, false, "i", "2") {
            Outcome::Rejected(m) => assert!(
                m.contains("index i, document 2") && m.contains("mapper_parsing"),
                "{m}"
            ),
            o => panic!("{o:?}"),
        }
        assert_eq!(
            classify(&items[2], ItemOp::Create, false, "i", "3"),
            Outcome::Written
        );
        assert!(matches!(
            classify(&items[2], ItemOp::Index, false, "i", "3"),
            Outcome::Rejected(_)
        ));
        assert_eq!(
            classify(&items[2], ItemOp::Index, true, "i", "3"),
            Outcome::Written
        );
        assert_eq!(
            classify(&items[3], ItemOp::Delete, false, "i", "4"),
            Outcome::Written
        );
        assert!(matches!(
            classify(&items[4], ItemOp::Index, false, "i", "5"),
            Outcome::Retryable(_)
        ));
        assert!(parse_items(b"not json").is_err());
    }
}

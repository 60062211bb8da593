//! The form both sides are compared in: every row becomes a JSON object (field name ->
//! normalized value), and two objects are compared field by field, nested fields as paths.
//!
//! - Elasticsearch documents are compared as the sink writes them: the source row goes
//!   through the job's transforms and the sink's `Value` -> JSON conversion
//!   (`datatrace_es::bulk::DocPlan`), the target's `_source` as stored.
//! - MySQL rows are compared by value: integers as numbers, decimals as their digits
//!   without trailing fractional zeros (`12.50` = `12.5`), floats as numbers, bytes as hex,
//!   dates and times as text; a `TIMESTAMP` compares as its UTC date-time, which is how it
//!   is stored in a `DATETIME` column created from it.
//! - Numbers compare by value (`12.5` = `12.50`), integers exactly; a field that is `null`
//!   on one side and absent on the other is equal.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use datatrace_core::Value;
use serde_json::{Map, Value as Json};

use super::report::FieldDiff;

/// A row as compared: field name -> normalized value.
pub type Doc = Map<String, Json>;

/// How a target column's values compare, beyond equal JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// A single-precision column (MySQL `FLOAT`): numbers compare as the `f32` the column
    /// holds, so a double written into it is equal to what it stores.
    Float32,
    /// JSON kept as text (MariaDB): texts compare byte for byte; different texts of the
    /// same JSON are a difference of their own (`JSON-equal, text differs`), and a parsed
    /// document on the other side compares as JSON.
    JsonText,
    /// JSON (a parsed document, or text on the other side): compared as JSON.
    Json,
}

/// The rules of a target's columns, by field name (columns without one compare exactly).
pub type Rules = std::collections::HashMap<String, FieldRule>;

/// The note of a JSON text that differs from the source's only in how it is written.
pub const JSON_TEXT_NOTE: &str = "JSON-equal, text differs";

fn as_json(v: &Json) -> Option<Json> {
    match v {
        Json::String(s) => serde_json::from_str(s).ok(),
        other => Some(other.clone()),
    }
}

/// `source` and `target` compared field by field under `rules` (see [`FieldRule`]); the
/// other fields as [`diff_docs`] does.
pub fn diff_docs_with(source: &Doc, target: &Doc, rules: &Rules) -> Vec<FieldDiff> {
    if rules.is_empty() {
        return diff_docs(source, target);
    }
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = source.keys().chain(target.keys()).collect();
    for k in keys {
        let (a, b) = (source.get(k), target.get(k));
        let diff = |note: Option<&str>| FieldDiff {
            field: k.clone(),
            source: a.cloned(),
            target: b.cloned(),
            note: note.map(str::to_owned),
        };
        match (rules.get(k.as_str()), a, b) {
            (Some(FieldRule::Float32), Some(Json::Number(x)), Some(Json::Number(y))) => {
                let f = |n: &serde_json::Number| n.as_f64().map(|v| v as f32);
                if f(x) != f(y) {
                    out.push(diff(None));
                }
            }
            (Some(FieldRule::JsonText), Some(Json::String(x)), Some(Json::String(y))) => {
                if x != y {
                    match (
                        as_json(&Json::String(x.clone())),
                        as_json(&Json::String(y.clone())),
                    ) {
                        (Some(p), Some(q)) if json_eq(&p, &q) => {
                            out.push(diff(Some(JSON_TEXT_NOTE)))
                        }
                        // Different documents: where they differ, as paths.
                        (Some(p), Some(q)) => diff_at(k.clone(), Some(&p), Some(&q), &mut out),
                        _ => out.push(diff(None)),
                    }
                }
            }
            (Some(FieldRule::JsonText | FieldRule::Json), Some(x), Some(y)) => {
                match (as_json(x), as_json(y)) {
                    (Some(p), Some(q)) if json_eq(&p, &q) => {}
                    (Some(p), Some(q)) => diff_at(k.clone(), Some(&p), Some(&q), &mut out),
                    _ => out.push(diff(None)),
                }
            }
            _ => diff_at(k.clone(), a, b, &mut out),
        }
    }
    out
}

/// A decimal's digits without trailing fractional zeros (`-0.0` is `0`).
pub fn normalize_decimal(text: &str) -> String {
    let t = text.trim();
    let mut s = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        t.to_owned()
    };
    if s == "-0" || s.is_empty() || s == "-" {
        s = "0".into();
    }
    s
}

/// A value in the compared form.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.to_string())),
        Value::Decimal(d) => Json::String(normalize_decimal(d.as_str())),
        Value::Timestamp(ts) => match ts.to_utc() {
            Some(dt) => Json::String(dt.to_string()),
            None => Json::String(ts.to_string()),
        },
        Value::Json(j) => j.clone(),
        other => Json::String(other.to_string()),
    }
}

/// A row's values by column name.
pub fn row_doc(names: impl Iterator<Item = String>, values: &[Value]) -> Doc {
    names
        .zip(values)
        .map(|(n, v)| (n, value_to_json(v)))
        .collect()
}

/// Whether two JSON values are equal, numbers by value.
pub fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
                return p == q;
            }
            if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
                return p == q;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) => p == q,
                _ => x == y,
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| opt_eq(x.get(k), y.get(k)))
        }
        _ => a == b,
    }
}

fn opt_eq(a: Option<&Json>, b: Option<&Json>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => json_eq(x, y),
        (None, None) | (None, Some(Json::Null)) | (Some(Json::Null), None) => true,
        _ => false,
    }
}

/// The fields in which `source` and `target` differ, nested objects and arrays descended
/// into (`a.b[2].c`), in field order.
pub fn diff_docs(source: &Doc, target: &Doc) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = source.keys().chain(target.keys()).collect();
    for k in keys {
        diff_at(k.clone(), source.get(k), target.get(k), &mut out);
    }
    out
}

fn diff_at(path: String, a: Option<&Json>, b: Option<&Json>, out: &mut Vec<FieldDiff>) {
    if opt_eq(a, b) {
        return;
    }
    match (a, b) {
        (Some(Json::Object(x)), Some(Json::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_at(format!("{path}.{k}"), x.get(k), y.get(k), out);
            }
        }
        (Some(Json::Array(x)), Some(Json::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                diff_at(format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        _ => out.push(FieldDiff {
            field: path,
            source: a.cloned(),
            target: b.cloned(),
            note: None,
        }),
    }
}

/// Key values for people: `42`, `7,eu`.
pub fn key_display(key: &[Value]) -> String {
    key.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Orders keys as their values (integers numerically), for stable reports.
pub fn cmp_keys(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = cmp_value(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn cmp_value(a: &Value, b: &Value) -> Ordering {
    match (as_int(a), as_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(j: Json) -> Doc {
        j.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn decimals_and_numbers_compare_by_value() {
        assert_eq!(normalize_decimal("12.500"), "12.5");
        assert_eq!(normalize_decimal("-0.00"), "0");
        assert_eq!(normalize_decimal("100"), "100");
        assert!(json_eq(&json!(12.5), &json!(12.50)));
        assert!(!json_eq(&json!(1), &json!(2)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(u64::MAX), &json!(u64::MAX - 1)));
    }

    #[test]
    fn nested_differences_are_paths() {
        let a = doc(json!({"id": 1, "o": {"a": {"b": [1, 2, {"c": "x"}]}}, "n": null}));
        let b = doc(json!({"id": 1, "o": {"a": {"b": [1, 2, {"c": "y"}]}}}));
        let d = diff_docs(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "o.a.b[2].c");
        assert_eq!(d[0].source, Some(json!("x")));
        assert_eq!(d[0].target, Some(json!("y")));
        let c = doc(json!({"id": 1, "extra": true}));
        let d = diff_docs(&doc(json!({"id": 1})), &c);
        assert_eq!(d[0].field, "extra");
        assert_eq!(d[0].source, None);
    }

    #[test]
    fn keys_order_numerically() {
        let mut keys = [
            vec![Value::Int(10)],
            vec![Value::Int(9)],
            vec![Value::from("a")],
        ];
        keys.sort_by(|a, b| cmp_keys(a, b));
        assert_eq!(key_display(&keys[0]), "9");
        assert_eq!(key_display(&keys[2]), "a");
    }
}

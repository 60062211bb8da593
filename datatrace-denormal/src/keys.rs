//! Keys: a hashable form of key values ([`KeyBuf`]) for grouping rows and deduplicating
//! roots, and the text of document ids and routing values.

use std::fmt::Write as _;

use datatrace_core::Value;

/// The values of a key in a form that hashes and compares exactly: integers by numeric
/// value (so `Int(5)` and `UInt(5)`, read from a signed and an unsigned column, are the same
/// key), everything else by variant and content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// The key of `values`.
    pub fn of<'a>(values: impl IntoIterator<Item = &'a Value>) -> KeyBuf {
        let mut b = Vec::with_capacity(16);
        for v in values {
            encode(&mut b, v);
        }
        KeyBuf(b)
    }

    /// Whether any value of the key is NULL (such a key matches nothing in SQL).
    pub fn has_null(values: &[Value]) -> bool {
        values.iter().any(Value::is_null)
    }
}

fn encode(b: &mut Vec<u8>, v: &Value) {
    let int = match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        _ => None,
    };
    if let Some(i) = int {
        b.push(1);
        b.extend_from_slice(&i.to_be_bytes());
        return;
    }
    match v {
        Value::Null => b.push(0),
        Value::String(s) => {
            b.push(2);
            b.extend_from_slice(&(s.len() as u64).to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(x) => {
            b.push(3);
            b.extend_from_slice(&(x.len() as u64).to_be_bytes());
            b.extend_from_slice(x);
        }
        other => {
            // Dates, decimals, floats, booleans, JSON: their typed serialization.
            let text = serde_json::to_string(other).unwrap_or_default();
            b.push(4);
            b.extend_from_slice(&(text.len() as u64).to_be_bytes());
            b.extend_from_slice(text.as_bytes());
        }
    }
}

/// Appends the key's values joined by `separator`, for messages (document ids go through
/// `datatrace_core::doc_id`).
pub fn push_key_string(out: &mut String, key: &[Value], separator: &str) {
    for (i, v) in key.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        let _ = write!(out, "{v}");
    }
}

/// The key's values joined by `separator`.
pub fn key_string(key: &[Value], separator: &str) -> String {
    let mut s = String::new();
    push_key_string(&mut s, key, separator);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormal_integers_compare_by_value_and_strings_exactly() {
        assert_eq!(KeyBuf::of(&[Value::Int(5)]), KeyBuf::of(&[Value::UInt(5)]));
        assert_ne!(
            KeyBuf::of(&[Value::Int(-1)]),
            KeyBuf::of(&[Value::UInt(u64::MAX)])
        );
        assert_ne!(
            KeyBuf::of(&[Value::from("a"), Value::from("bc")]),
            KeyBuf::of(&[Value::from("ab"), Value::from("c")])
        );
        assert_ne!(
            KeyBuf::of(&[Value::from("5")]),
            KeyBuf::of(&[Value::Int(5)])
        );
        assert_eq!(key_string(&[Value::Int(7), Value::from("eu")], "_"), "7_eu");
    }
}

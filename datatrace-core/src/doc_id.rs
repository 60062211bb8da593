//! Document ids (and message keys) from primary keys: the one encoding every connector uses
//! to turn a row's key into a single string, and back.
//!
//! The Elasticsearch sink names documents with it, the Elasticsearch source decodes it back
//! into key columns, `datatrace check` maps documents to rows with it, and connectors that
//! need one string per key (Kafka message keys) use it too. The rules:
//!
//! - **One key column**: the value's plain text, unchanged from earlier versions so that
//!   existing indices stay valid: `42`, `18446744073709551615`, `héllo`, `2024-02-29`,
//!   `2024-02-29T01:02:03.000004`, `-838:59:59`, `12.50` (a decimal's digits as stored),
//!   `0x00ff` (bytes), `true` / `false`. Two texts only get a `\` in front: the empty text
//!   (whose id is `\`, as an index refuses empty ids) and a text starting with `\`
//!   (`\x` becomes `\\x`), so that no two values share an id.
//! - **Several key columns**: each part's text with `\` written as `\\` and the first
//!   character of the separator written as `\` + that character, the parts joined by the
//!   separator (default `_`): `(7, 'eu')` is `7_eu`, `('a_b', 'c')` is `a\_b_c` and
//!   `('a', 'b_c')` is `a_b\_c`. Keys whose text has neither character get the same ids as
//!   before this encoding existed.
//! - A key of one column named `_id` ([`ID_COLUMN`]) holds ids read from an index (an
//!   Elasticsearch source's id column): [`crate::Record::doc_id`] uses it as it is.
//! - A key part may not be NULL (primary keys never are; a configured `key` must name
//!   NOT NULL columns): [`encode`] refuses it rather than give two rows one id.
//!
//! The encoding is **injective** for a given key shape (column count and types): two
//! different keys never share an id, whatever their text contains, and [`decode`] gives the
//! key back from the id and the column types. The separator may be any non-empty text
//! without `\`.
//!
//! ```
//! use datatrace_core::doc_id::{decode, encode};
//! use datatrace_core::{DataType, Value};
//!
//! let a = encode(&[Value::from("a_b"), Value::from("c")], "_").unwrap();
//! let b = encode(&[Value::from("a"), Value::from("b_c")], "_").unwrap();
//! assert_eq!((a.as_str(), b.as_str()), (r"a\_b_c", r"a_b\_c"));
//! assert_eq!(encode(&[Value::Int(7), Value::from("eu")], "_").unwrap(), "7_eu");
//! assert_eq!(
//!     decode(&a, &[DataType::String, DataType::String], "_").unwrap(),
//!     vec![Value::from("a_b"), Value::from("c")]
//! );
//! assert_eq!(decode("42", &[DataType::Int], "_").unwrap(), vec![Value::Int(42)]);
//! ```

use std::fmt::Write as _;

use crate::schema::DataType;
use crate::value::Value;

/// The escape character of composite ids.
pub const ESCAPE: char = '\\';

/// The name of the column that holds document ids read from an index.
pub const ID_COLUMN: &str = "_id";

/// The default separator of composite ids.
pub const DEFAULT_SEPARATOR: &str = "_";

/// Why a key has no id, or an id gives no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    /// The separator is empty or contains `\`.
    #[error("id separator {0:?}: expected a non-empty text without '\\'")]
    Separator(String),
    /// A key part is NULL.
    #[error("key part {part} is NULL: a key column must never be NULL to name a document")]
    NullPart {
        /// Its position in the key (0-based).
        part: usize,
    },
    /// The record has no key.
    #[error("no key: the rows have no primary key (name key columns with the `key` setting)")]
    NoKey,
    /// The id does not have as many parts as the key has columns.
    #[error("id {id:?} has {found} part(s), the key has {expected} column(s)")]
    Parts {
        /// The id.
        id: String,
        /// Parts found.
        found: usize,
        /// Key columns.
        expected: usize,
    },
    /// A part's text is not a value of its column's type.
    #[error("id {id:?}: part {part} {text:?} is not a {data_type} value")]
    Part {
        /// The id.
        id: String,
        /// The part (0-based).
        part: usize,
        /// Its text.
        text: String,
        /// The column type.
        data_type: DataType,
    },
    /// An escape at the end of the id, or before a character that is never escaped.
    #[error("id {0:?}: a '\\' that escapes nothing (not an id of this encoding)")]
    Escape(String),
}

/// Checks a separator: non-empty, without `\`.
pub fn check_separator(separator: &str) -> Result<(), DocIdError> {
    if separator.is_empty() || separator.contains(ESCAPE) {
        return Err(DocIdError::Separator(separator.to_string()));
    }
    Ok(())
}

/// Appends the plain text of one key value (the single-column id).
pub fn write_part(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Json(j) => {
            let _ = write!(out, "{j}");
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// The id of a key (its values in key order), see the module docs.
pub fn encode(key: &[Value], separator: &str) -> Result<String, DocIdError> {
    encode_iter(key.iter(), separator)
}

/// [`encode`] over borrowed values (`record.key()`).
pub fn encode_iter<'a>(
    key: impl ExactSizeIterator<Item = &'a Value>,
    separator: &str,
) -> Result<String, DocIdError> {
    check_separator(separator)?;
    let n = key.len();
    if n == 0 {
        return Err(DocIdError::NoKey);
    }
    let mut out = String::new();
    if n == 1 {
        for v in key {
            if v.is_null() {
                return Err(DocIdError::NullPart { part: 0 });
            }
            write_part(&mut out, v);
        }
        if out.is_empty() || out.starts_with(ESCAPE) {
            out.insert(0, ESCAPE);
        }
        return Ok(out);
    }
    let special = separator.chars().next().unwrap_or(ESCAPE);
    let mut part = String::new();
    for (i, v) in key.enumerate() {
        if v.is_null() {
            return Err(DocIdError::NullPart { part: i });
        }
        if i > 0 {
            out.push_str(separator);
        }
        part.clear();
        write_part(&mut part, v);
        for c in part.chars() {
            if c == ESCAPE || c == special {
                out.push(ESCAPE);
            }
            out.push(c);
        }
    }
    Ok(out)
}

/// The texts of the parts of an id of `n` key columns.
pub fn split(id: &str, n: usize, separator: &str) -> Result<Vec<String>, DocIdError> {
    check_separator(separator)?;
    if n == 0 {
        return Err(DocIdError::NoKey);
    }
    if n == 1 {
        return Ok(vec![id.strip_prefix(ESCAPE).unwrap_or(id).to_string()]);
    }
    let special = separator.chars().next().unwrap_or(ESCAPE);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut rest = id;
    while let Some(c) = rest.chars().next() {
        if c == ESCAPE {
            let mut it = rest[1..].chars();
            match it.next() {
                Some(e) if e == ESCAPE || e == special => {
                    current.push(e);
                    rest = &rest[1 + e.len_utf8()..];
                }
                _ => return Err(DocIdError::Escape(id.to_string())),
            }
        } else if rest.starts_with(separator) {
            parts.push(std::mem::take(&mut current));
            rest = &rest[separator.len()..];
        } else {
            current.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    parts.push(current);
    if parts.len() != n {
        return Err(DocIdError::Parts {
            id: id.to_string(),
            found: parts.len(),
            expected: n,
        });
    }
    Ok(parts)
}

/// The key of an id, given the types of the key columns (see the module docs).
pub fn decode(id: &str, types: &[DataType], separator: &str) -> Result<Vec<Value>, DocIdError> {
    let parts = split(id, types.len(), separator)?;
    parts
        .into_iter()
        .zip(types)
        .enumerate()
        .map(|(i, (text, &ty))| {
            parse_part(&text, ty).ok_or_else(|| DocIdError::Part {
                id: id.to_string(),
                part: i,
                text,
                data_type: ty,
            })
        })
        .collect()
}

/// The value of one part's text for a column type (the inverse of [`write_part`]).
pub fn parse_part(text: &str, ty: DataType) -> Option<Value> {
    Some(match ty {
        DataType::String => Value::String(text.to_string()),
        // TINYINT(1) columns read 0/1 as booleans and other values as integers.
        DataType::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::Int(other.parse().ok()?),
        },
        DataType::Int => Value::Int(text.parse().ok()?),
        DataType::UInt => Value::UInt(text.parse().ok()?),
        DataType::Float => Value::Float(text.parse().ok()?),
        DataType::Decimal { .. } => Value::Decimal(text.parse().ok()?),
        DataType::Bytes => {
            let hex = text.strip_prefix("0x")?.as_bytes();
            if hex.len() % 2 != 0 {
                return None;
            }
            let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            let mut out = Vec::with_capacity(hex.len() / 2);
            for pair in hex.chunks(2) {
                out.push(nib(pair[0])? << 4 | nib(pair[1])?);
            }
            Value::Bytes(out.into())
        }
        DataType::Date => Value::Date(text.parse().ok()?),
        DataType::Time => Value::Time(text.parse().ok()?),
        DataType::DateTime => Value::DateTime(text.parse().ok()?),
        DataType::Timestamp => Value::Timestamp(text.parse().ok()?),
        DataType::Json => Value::Json(serde_json::from_str(text).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    #[test]
    fn single_keys_keep_their_plain_text() {
        assert_eq!(encode(&[Value::Int(-5)], "_").unwrap(), "-5");
        assert_eq!(encode(&[s(r"a_b\c")], "_").unwrap(), r"a_b\c");
        // Never empty, and a leading escape is escaped.
        assert_eq!(encode(&[s("")], "_").unwrap(), r"\");
        assert_eq!(encode(&[s(r"\x")], "_").unwrap(), r"\\x");
        assert_eq!(decode(r"\", &[DataType::String], "_").unwrap(), vec![s("")]);
        assert_eq!(
            decode(r"\\x", &[DataType::String], "_").unwrap(),
            vec![s(r"\x")]
        );
        assert_eq!(
            encode(&[Value::UInt(u64::MAX)], "|").unwrap(),
            u64::MAX.to_string()
        );
        assert_eq!(
            encode(&[Value::Bytes(vec![0u8, 255].into())], "_").unwrap(),
            "0x00ff"
        );
        assert_eq!(
            decode("0x00ff", &[DataType::Bytes], "_").unwrap(),
            vec![Value::Bytes(vec![0u8, 255].into())]
        );
        assert_eq!(
            decode(r"a_b\c", &[DataType::String], "_").unwrap(),
            vec![s(r"a_b\c")]
        );
    }

    #[test]
    fn composite_keys_escape_the_separator_and_the_escape() {
        let cases = [
            vec![s("a_b"), s("c")],
            vec![s("a"), s("b_c")],
            vec![s("a\\"), s("_c")],
            vec![s("a\\_"), s("c")],
            vec![s(""), s("")],
            vec![s("_"), s("")],
            vec![s(""), s("_")],
            vec![s("x "), s(" y")],
        ];
        let mut seen = std::collections::HashSet::new();
        for key in &cases {
            let id = encode(key, "_").unwrap();
            assert!(seen.insert(id.clone()), "{id} twice");
            let back = decode(&id, &[DataType::String, DataType::String], "_").unwrap();
            assert_eq!(&back, key, "{id}");
        }
        assert_eq!(encode(&[Value::Int(7), s("eu")], "_").unwrap(), "7_eu");
        assert_eq!(encode(&[s("a::b"), s("c")], "::").unwrap(), r"a\:\:b::c");
        assert_eq!(
            decode(r"a\:\:b::c", &[DataType::String, DataType::String], "::").unwrap(),
            vec![s("a::b"), s("c")]
        );
    }

    #[test]
    fn typed_parts_decode_back() {
        let key = vec![
            Value::DateTime("2024-02-29T01:02:03.123".parse().unwrap()),
            Value::Decimal("-12.50".parse().unwrap()),
            s("déjà_vu"),
            Value::UInt(u64::MAX),
            Value::Time("-838:59:59".parse().unwrap()),
            Value::Float(-0.0),
        ];
        let types = [
            DataType::DateTime,
            DataType::Decimal {
                precision: 10,
                scale: 2,
            },
            DataType::String,
            DataType::UInt,
            DataType::Time,
            DataType::Float,
        ];
        let id = encode(&key, "_").unwrap();
        let back = decode(&id, &types, "_").unwrap();
        assert_eq!(back[..5], key[..5]);
        assert!(matches!(back[5], Value::Float(f) if f == 0.0 && f.is_sign_negative()));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(
            encode(&[Value::Int(1), Value::Null], "_"),
            Err(DocIdError::NullPart { part: 1 })
        );
        assert!(encode(&[Value::Int(1)], "").is_err());
        assert!(encode(&[Value::Int(1)], "\\").is_err());
        assert!(matches!(
            decode("1_2_3", &[DataType::Int, DataType::Int], "_"),
            Err(DocIdError::Parts { found: 3, .. })
        ));
        assert!(matches!(
            decode(r"1\x_2", &[DataType::Int, DataType::Int], "_"),
            Err(DocIdError::Escape(_))
        ));
        assert!(matches!(
            decode("a_2", &[DataType::Int, DataType::Int], "_"),
            Err(DocIdError::Part { part: 0, .. })
        ));
    }

    /// Random keys over a small alphabet full of separators and escapes: no two distinct
    /// keys share an id, and every id decodes to its key.
    #[test]
    fn random_composite_keys_are_injective() {
        let alphabet = ['a', '_', '\\', '|', ':', ' ', 'é'];
        let mut rng = fastrand::Rng::with_seed(14);
        for sep in ["_", "|", "::", "_\\_".trim_matches('\\'), "ab"] {
            if check_separator(sep).is_err() {
                continue;
            }
            let mut ids = std::collections::HashMap::new();
            for _ in 0..20_000 {
                let n = rng.usize(1..4);
                let key: Vec<Value> = (0..n)
                    .map(|_| {
                        let len = rng.usize(0..4);
                        s(&(0..len)
                            .map(|_| alphabet[rng.usize(..alphabet.len())])
                            .collect::<String>())
                    })
                    .collect();
                let id = encode(&key, sep).unwrap();
                let types = vec![DataType::String; n];
                assert_eq!(decode(&id, &types, sep).unwrap(), key, "{id:?} sep {sep:?}");
                if let Some(other) = ids.insert((n, id.clone()), key.clone()) {
                    assert_eq!(other, key, "{id:?} for two keys (sep {sep:?})");
                }
            }
        }
    }
}

//! [`Value`]: the canonical cell that every connector reads into and writes from.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::decimal::Decimal;
use crate::temporal::{Date, DateTime, Time, Timestamp};

/// One cell of a row or one field of a document, in a store-neutral form.
///
/// Conversions between the stores go through `Value`, and every one that loses information is
/// listed in the type-mapping tables of the README. Serialized (for dead letters and
/// checkpoints) as `{"type": "...", "value": ...}`, with bytes in hex and dates as ISO text,
/// so that a record read back is equal to the one written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    /// SQL `NULL`, JSON `null`, or a missing field.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (keeps `BIGINT UNSIGNED` values above `i64::MAX`).
    #[serde(rename = "uint")]
    UInt(u64),
    /// A binary floating-point number.
    Float(f64),
    /// An exact decimal number.
    Decimal(Decimal),
    /// Text (always valid UTF-8; connectors convert other charsets).
    String(String),
    /// Raw bytes.
    Bytes(#[serde(with = "hex_bytes")] Bytes),
    /// A calendar date.
    Date(Date),
    /// A signed duration / time of day (MySQL `TIME`).
    Time(Time),
    /// A date and time without a zone (MySQL `DATETIME`).
    #[serde(rename = "datetime")]
    DateTime(DateTime),
    /// An instant in UTC (MySQL `TIMESTAMP`).
    Timestamp(Timestamp),
    /// A JSON document (MySQL `JSON`, nested Elasticsearch objects and arrays).
    Json(serde_json::Value),
}

impl Value {
    /// A short lower-case name of the variant, used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::DateTime(_) => "datetime",
            Value::Timestamp(_) => "timestamp",
            Value::Json(_) => "json",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A cheap estimate of the bytes this value occupies on the wire, used for byte rate
    /// limits, bulk request sizing and the MB/s in reports.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Null => 1,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => 8,
            Value::Decimal(d) => d.as_str().len(),
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Date(_) => 4,
            Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_) => 8,
            Value::Json(j) => json_size(j),
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The value as `u64`, when it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }
}

fn json_size(j: &serde_json::Value) -> usize {
    match j {
        serde_json::Value::Null | serde_json::Value::Bool(_) => 4,
        serde_json::Value::Number(_) => 8,
        serde_json::Value::String(s) => s.len() + 2,
        serde_json::Value::Array(a) => 2 + a.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        serde_json::Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// Plain text for people: strings unquoted, bytes in hex, dates in ISO 8601.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("0x")?;
                for byte in b.iter() {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Date(d) => write!(f, "{d}"),
            Value::Time(t) => write!(f, "{t}"),
            Value::DateTime(d) => write!(f, "{d}"),
            Value::Timestamp(t) => write!(f, "{t}"),
            Value::Json(j) => write!(f, "{j}"),
        }
    }
}

macro_rules! from_impls {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self { Value::$v(x.into()) }
        }
    )*};
}
from_impls!(bool => Bool, i8 => Int, i16 => Int, i32 => Int, i64 => Int, u8 => UInt, u16 => UInt,
    u32 => UInt, u64 => UInt, f32 => Float, f64 => Float, String => String, &str => String,
    Decimal => Decimal, Bytes => Bytes, Vec<u8> => Bytes, Date => Date, Time => Time,
    DateTime => DateTime, Timestamp => Timestamp, serde_json::Value => Json);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(x: Option<T>) -> Self {
        x.map_or(Value::Null, Into::into)
    }
}

mod hex_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for &byte in b.iter() {
            out.push(HEX[(byte >> 4) as usize] as char);
            out.push(HEX[(byte & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let nib = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(serde::de::Error::custom("bytes: expected hex digits")),
        };
        let t = text.as_bytes();
        if t.len() % 2 != 0 {
            return Err(serde::de::Error::custom("bytes: odd number of hex digits"));
        }
        let mut out = Vec::with_capacity(t.len() / 2);
        for pair in t.chunks(2) {
            out.push(nib(pair[0])? << 4 | nib(pair[1])?);
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trips_every_variant() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(-0.125),
            Value::Decimal("-99999999999999999999.123456789".parse().unwrap()),
            Value::String("héllo 🎉".into()),
            Value::Bytes(Bytes::from_static(&[0, 1, 0xfe, 0xff])),
            Value::Date("2024-02-29".parse().unwrap()),
            Value::Time("-838:59:59".parse().unwrap()),
            Value::DateTime("2024-02-29T01:02:03.000004".parse().unwrap()),
            Value::Timestamp("2038-01-19T03:14:07.999999Z".parse().unwrap()),
            Value::Json(serde_json::json!({"a": [1, null, {"b": "c"}]})),
        ];
        let text = serde_json::to_string(&values).unwrap();
        let back: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(values, back);
        assert!(
            text.contains(r#"{"type":"bytes","value":"0001feff"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{"type":"uint","value":18446744073709551615}"#),
            "{text}"
        );
    }

    #[test]
    fn display_is_plain() {
        assert_eq!(
            Value::Bytes(Bytes::from_static(b"\x01\xab")).to_string(),
            "0x01ab"
        );
        assert_eq!(Value::from("x").to_string(), "x");
        assert_eq!(Value::from(None::<i32>).to_string(), "NULL");
    }
}

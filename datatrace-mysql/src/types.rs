//! The exact mapping between MySQL values and [`Value`], both ways.
//!
//! Reads use the binary protocol (prepared statements): integers arrive as 64-bit numbers
//! (unsigned kept unsigned), FLOAT as its 4 bytes (the text protocol would round it to 6
//! digits), DECIMAL as its exact text, dates and times as their fields. Writes render SQL
//! literals (see [`write_literal`]): exact text for decimals and dates, shortest round-trip
//! text for floats, hex for bytes, quotes doubled for strings (sessions run with
//! `NO_BACKSLASH_ESCAPES`). The full table is in the crate README.

use std::fmt::Write as _;

use bytes::Bytes;
use datatrace_core::{DataType, Date, DateTime, Decimal, Time, Timestamp, Value};
use mysql_async::Value as My;

/// How values of one MySQL column are read, from `information_schema.COLUMNS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// TINYINT..BIGINT.
    Int {
        /// UNSIGNED.
        unsigned: bool,
    },
    /// TINYINT(1) / BOOLEAN: 0 and 1 read as booleans, other values as integers.
    Bool,
    /// DECIMAL / NUMERIC.
    Decimal {
        /// Declared precision.
        precision: u8,
        /// Declared scale.
        scale: u8,
    },
    /// FLOAT (single precision).
    Float,
    /// DOUBLE / REAL.
    Double,
    /// BIT(n).
    Bit(u8),
    /// CHAR, VARCHAR, TEXT family (any character set, read as UTF-8).
    Text,
    /// ENUM (its label).
    Enum,
    /// SET (its labels joined by commas).
    Set,
    /// BINARY, VARBINARY, BLOB family.
    Binary,
    /// DATE.
    Date,
    /// TIME.
    Time,
    /// DATETIME.
    DateTime,
    /// TIMESTAMP.
    Timestamp,
    /// YEAR.
    Year,
    /// MySQL's JSON type (binary on the server): read as a parsed document (`Value::Json`).
    Json,
    /// MariaDB's JSON: LONGTEXT with a `json_valid` check, kept as text by the server. Read
    /// as its exact text (`Value::String`, the column's type stays `DataType::Json`), so a
    /// copy into MariaDB is byte for byte (spacing, key order, number spelling, escapes).
    JsonText,
    /// GEOMETRY and its subtypes: MySQL's internal format (4-byte SRID + WKB) as bytes.
    Geometry,
}

impl ColumnKind {
    /// The kind of a column from its `DATA_TYPE` and `COLUMN_TYPE`; `None` for a type this
    /// connector does not know.
    pub fn parse(data_type: &str, column_type: &str) -> Option<ColumnKind> {
        let ct = column_type.to_ascii_lowercase();
        let unsigned = ct.contains("unsigned");
        Some(match data_type.to_ascii_lowercase().as_str() {
            "tinyint" if ct.starts_with("tinyint(1)") && !unsigned => ColumnKind::Bool,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
                ColumnKind::Int { unsigned }
            }
            "decimal" | "numeric" => {
                let (p, s) = paren_numbers(&ct);
                ColumnKind::Decimal {
                    precision: p.unwrap_or(10) as u8,
                    scale: s.unwrap_or(0) as u8,
                }
            }
            "float" => ColumnKind::Float,
            "double" | "real" | "double precision" => ColumnKind::Double,
            "bit" => ColumnKind::Bit(paren_numbers(&ct).0.unwrap_or(1).clamp(1, 64) as u8),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                ColumnKind::Text
            }
            "enum" => ColumnKind::Enum,
            "set" => ColumnKind::Set,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                ColumnKind::Binary
            }
            "date" => ColumnKind::Date,
            "time" => ColumnKind::Time,
            "datetime" => ColumnKind::DateTime,
            "timestamp" => ColumnKind::Timestamp,
            "year" => ColumnKind::Year,
            "json" => ColumnKind::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => ColumnKind::Geometry,
            // MariaDB's INET4/INET6/UUID and other textual types read as text.
            "inet4" | "inet6" | "uuid" => ColumnKind::Text,
            _ => return None,
        })
    }

    /// The neutral type of the column's values.
    pub fn data_type(&self) -> DataType {
        match *self {
            ColumnKind::Int { unsigned: false } | ColumnKind::Year => DataType::Int,
            ColumnKind::Int { unsigned: true } => DataType::UInt,
            ColumnKind::Bool | ColumnKind::Bit(1) => DataType::Bool,
            ColumnKind::Bit(_) => DataType::UInt,
            ColumnKind::Decimal { precision, scale } => DataType::Decimal { precision, scale },
            ColumnKind::Float | ColumnKind::Double => DataType::Float,
            ColumnKind::Text | ColumnKind::Enum | ColumnKind::Set => DataType::String,
            ColumnKind::Binary | ColumnKind::Geometry => DataType::Bytes,
            ColumnKind::Date => DataType::Date,
            ColumnKind::Time => DataType::Time,
            ColumnKind::DateTime => DataType::DateTime,
            ColumnKind::Timestamp => DataType::Timestamp,
            ColumnKind::Json | ColumnKind::JsonText => DataType::Json,
        }
    }

    /// Whether the column holds calendar dates that may be zero (`0000-00-00`).
    pub fn is_date_like(&self) -> bool {
        matches!(
            self,
            ColumnKind::Date | ColumnKind::DateTime | ColumnKind::Timestamp
        )
    }
}

/// `decimal(10,2)` -> `(Some(10), Some(2))`.
fn paren_numbers(ct: &str) -> (Option<u32>, Option<u32>) {
    let Some(inner) = ct.split_once('(').and_then(|(_, r)| r.split_once(')')) else {
        return (None, None);
    };
    let mut it = inner.0.split(',').map(|s| s.trim().parse::<u32>().ok());
    (it.next().flatten(), it.next().flatten())
}

/// Why a MySQL value could not become a [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// A zero date (or one with a zero month or day); holds its text, e.g. `0000-00-00`.
    ZeroDate(String),
    /// Anything else, described.
    Invalid(String),
}

fn invalid(kind: ColumnKind, v: &My) -> DecodeError {
    DecodeError::Invalid(format!("unexpected {v:?} for a {kind:?} column"))
}

fn text(kind: ColumnKind, b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b)
        .map_err(|_| DecodeError::Invalid(format!("{kind:?} value is not valid UTF-8")))
}

/// Reads one MySQL value of a column of `kind` (binary or text protocol) into a [`Value`].
pub fn decode(kind: ColumnKind, v: My) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    if matches!(v, My::NULL) {
        return Ok(Value::Null);
    }
    match kind {
        K::Int { .. } | K::Year | K::Bool => decode_integer(kind, v),
        K::Decimal { .. } | K::Float | K::Double => decode_number(kind, v),
        K::Bit(n) => decode_bit(n, v),
        K::Text | K::Enum | K::Set | K::Binary | K::Geometry | K::Json | K::JsonText => {
            decode_bytes(kind, v)
        }
        K::Date | K::DateTime | K::Timestamp | K::Time => decode_temporal(kind, v),
    }
}

/// A value of an integer column (`Int`, `Year`, `Bool`).
fn decode_integer(kind: ColumnKind, v: My) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    Ok(match (kind, v) {
        (K::Int { unsigned: false } | K::Year, My::Int(i)) => Value::Int(i),
        (K::Int { unsigned: false } | K::Year, My::UInt(u)) => Value::Int(
            i64::try_from(u).map_err(|_| DecodeError::Invalid(format!("{u} above i64")))?,
        ),
        (K::Int { unsigned: true }, My::UInt(u)) => Value::UInt(u),
        (K::Int { unsigned: true }, My::Int(i)) => Value::UInt(
            u64::try_from(i)
                .map_err(|_| DecodeError::Invalid(format!("{i} in an unsigned column")))?,
        ),
        (K::Bool, My::Int(i)) => bool_or_int(i),
        (K::Bool, My::UInt(u)) => bool_or_int(u as i64),
        (K::Int { .. } | K::Year, My::Bytes(b)) => {
            let t = text(kind, &b)?;
            if kind == (K::Int { unsigned: true }) {
                Value::UInt(
                    t.parse()
                        .map_err(|_| invalid(kind, &My::Bytes(b.clone())))?,
                )
            } else {
                Value::Int(
                    t.parse()
                        .map_err(|_| invalid(kind, &My::Bytes(b.clone())))?,
                )
            }
        }
        (K::Bool, My::Bytes(b)) => bool_or_int(
            text(kind, &b)?
                .parse()
                .map_err(|_| invalid(kind, &My::Bytes(b.clone())))?,
        ),
        (kind, v) => return Err(invalid(kind, &v)),
    })
}

/// A value of a `Decimal`, `Float` or `Double` column.
fn decode_number(kind: ColumnKind, v: My) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    Ok(match (kind, v) {
        (K::Decimal { .. }, My::Bytes(b)) => Value::Decimal(
            text(kind, &b)?
                .parse::<Decimal>()
                .map_err(|e| DecodeError::Invalid(e.to_string()))?,
        ),
        (K::Float, My::Float(f)) => Value::Float(f as f64),
        (K::Float | K::Double, My::Double(d)) => Value::Float(d),
        (K::Double, My::Float(f)) => Value::Float(f as f64),
        (K::Float | K::Double, My::Bytes(b)) => Value::Float(
            text(kind, &b)?
                .parse()
                .map_err(|_| invalid(kind, &My::Bytes(b.clone())))?,
        ),
        (kind, v) => return Err(invalid(kind, &v)),
    })
}

/// A value of a `BIT(n)` column: a boolean for `BIT(1)`, an unsigned integer otherwise.
fn decode_bit(n: u8, v: My) -> Result<Value, DecodeError> {
    Ok(match v {
        My::Bytes(b) => {
            let mut u: u64 = 0;
            for &byte in b.iter() {
                u = (u << 8) | byte as u64;
            }
            if n == 1 {
                Value::Bool(u != 0)
            } else {
                Value::UInt(u)
            }
        }
        My::Int(i) if n == 1 => Value::Bool(i != 0),
        My::Int(i) => Value::UInt(i as u64),
        My::UInt(u) => Value::UInt(u),
        v => return Err(invalid(ColumnKind::Bit(n), &v)),
    })
}

/// A value of a byte-valued column: text (`Text`, `Enum`, `Set`), bytes (`Binary`,
/// `Geometry`), a JSON document (`Json`) or JSON text (`JsonText`).
fn decode_bytes(kind: ColumnKind, v: My) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    Ok(match (kind, v) {
        (K::Text | K::Enum | K::Set, My::Bytes(b)) => Value::String(
            String::from_utf8(b)
                .map_err(|_| DecodeError::Invalid("text is not valid UTF-8".into()))?,
        ),
        (K::Binary | K::Geometry, My::Bytes(b)) => Value::Bytes(Bytes::from(b)),
        (K::JsonText, My::Bytes(b)) => Value::String(
            String::from_utf8(b)
                .map_err(|_| DecodeError::Invalid("JSON text is not valid UTF-8".into()))?,
        ),
        (K::Json, My::Bytes(b)) => Value::Json(
            serde_json::from_slice(&b)
                .map_err(|e| DecodeError::Invalid(format!("invalid JSON: {e}")))?,
        ),
        (kind, v) => return Err(invalid(kind, &v)),
    })
}

/// A value of a `Date`, `DateTime`, `Timestamp` or `Time` column; zero dates are refused
/// as [`DecodeError::ZeroDate`].
fn decode_temporal(kind: ColumnKind, v: My) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    Ok(match (kind, v) {
        (K::Date, My::Date(y, m, d, ..)) => {
            if m == 0 || d == 0 {
                return Err(DecodeError::ZeroDate(format!("{y:04}-{m:02}-{d:02}")));
            }
            Value::Date(Date::new(y, m, d).map_err(|e| DecodeError::Invalid(e.to_string()))?)
        }
        (K::DateTime | K::Timestamp, My::Date(y, m, d, h, mi, s, us)) => {
            if m == 0 || d == 0 {
                return Err(DecodeError::ZeroDate(format!(
                    "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}"
                )));
            }
            let date = Date::new(y, m, d).map_err(|e| DecodeError::Invalid(e.to_string()))?;
            let dt = DateTime::new(date, h, mi, s, us)
                .map_err(|e| DecodeError::Invalid(e.to_string()))?;
            if kind == K::Timestamp {
                Value::Timestamp(Timestamp::from_unix_micros(dt.as_unix_micros()))
            } else {
                Value::DateTime(dt)
            }
        }
        (K::Time, My::Time(neg, days, h, m, s, us)) => Value::Time(
            Time::new(neg, days * 24 + h as u32, m, s, us)
                .map_err(|e| DecodeError::Invalid(e.to_string()))?,
        ),
        (K::Date | K::DateTime | K::Timestamp | K::Time, My::Bytes(b)) => {
            decode_temporal_text(kind, text(kind, &b)?)?
        }
        (kind, v) => return Err(invalid(kind, &v)),
    })
}

fn bool_or_int(i: i64) -> Value {
    match i {
        0 => Value::Bool(false),
        1 => Value::Bool(true),
        other => Value::Int(other),
    }
}

/// Dates and times in their text form (text protocol).
fn decode_temporal_text(kind: ColumnKind, t: &str) -> Result<Value, DecodeError> {
    let bad = |e: datatrace_core::temporal::TemporalError| DecodeError::Invalid(e.to_string());
    let zero = t.len() >= 10 && (&t[5..7] == "00" || &t[8..10] == "00");
    if kind.is_date_like() && zero {
        return Err(DecodeError::ZeroDate(t.to_string()));
    }
    Ok(match kind {
        ColumnKind::Date => Value::Date(t.parse().map_err(bad)?),
        ColumnKind::DateTime => Value::DateTime(t.parse().map_err(bad)?),
        ColumnKind::Timestamp => {
            let dt: DateTime = t.parse().map_err(bad)?;
            Value::Timestamp(Timestamp::from_unix_micros(dt.as_unix_micros()))
        }
        _ => Value::Time(t.parse().map_err(bad)?),
    })
}

/// A value as a prepared-statement parameter (used for chunk bounds and resume keys).
pub fn to_param(v: &Value) -> My {
    match v {
        Value::Null => My::NULL,
        Value::Bool(b) => My::Int(*b as i64),
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float(f) => My::Double(*f),
        Value::Decimal(d) => My::Bytes(d.as_str().as_bytes().to_vec()),
        Value::String(s) => My::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => My::Bytes(b.to_vec()),
        Value::Date(d) => My::Date(d.year(), d.month(), d.day(), 0, 0, 0, 0),
        Value::DateTime(dt) => datetime_param(dt),
        Value::Timestamp(ts) => match ts.to_utc() {
            Some(dt) => datetime_param(&dt),
            None => My::NULL,
        },
        Value::Time(t) => {
            let (h, m, s, us) = t.parts();
            My::Time(t.is_negative(), (h / 24) as u32, (h % 24) as u8, m, s, us)
        }
        Value::Json(j) => My::Bytes(j.to_string().into_bytes()),
    }
}

fn datetime_param(dt: &DateTime) -> My {
    let d = dt.date();
    let (h, m, s, us) = dt.time_parts();
    My::Date(d.year(), d.month(), d.day(), h, m, s, us)
}

/// A value that has no SQL literal (NaN, infinite floats, timestamps outside years 0..9999).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// Appends `v` as an SQL literal to `out`. Exact for every variant; strings are quoted with
/// `'` doubled, which is complete escaping under `NO_BACKSLASH_ESCAPES` (set on every
/// session by [`crate::MySqlConnection`]); bytes are hex literals, so any byte is safe.
pub fn write_literal(out: &mut String, v: &Value) -> Result<(), EncodeError> {
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(EncodeError(format!("{f} has no MySQL representation")));
            }
            // Shortest text that parses back to the same double, as a DOUBLE literal.
            let _ = write!(out, "{f:e}");
        }
        Value::Decimal(d) => out.push_str(d.as_str()),
        Value::String(s) => quote_str(out, s),
        Value::Bytes(b) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.reserve(b.len() * 2 + 3);
            out.push_str("X'");
            for &byte in b.iter() {
                out.push(HEX[(byte >> 4) as usize] as char);
                out.push(HEX[(byte & 15) as usize] as char);
            }
            out.push('\'');
        }
        Value::Date(d) => {
            let _ = write!(out, "'{d}'");
        }
        Value::Time(t) => {
            let (h, m, s, us) = t.parts();
            let sign = if t.is_negative() { "-" } else { "" };
            let _ = write!(out, "'{sign}{h}:{m:02}:{s:02}.{us:06}'");
        }
        Value::DateTime(dt) => write_datetime(out, dt),
        Value::Timestamp(ts) => match ts.to_utc() {
            Some(dt) => write_datetime(out, &dt),
            None => {
                return Err(EncodeError(format!(
                    "timestamp {ts} is outside years 0..9999"
                )))
            }
        },
        Value::Json(j) => quote_str(out, &j.to_string()),
    }
    Ok(())
}

fn write_datetime(out: &mut String, dt: &DateTime) {
    let (h, m, s, us) = dt.time_parts();
    let _ = write!(out, "'{} {h:02}:{m:02}:{s:02}.{us:06}'", dt.date());
}

/// `'text'` with every `'` doubled.
pub fn quote_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('\'');
    for (i, part) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> String {
        let mut s = String::new();
        write_literal(&mut s, &v).unwrap();
        s
    }

    #[test]
    fn parses_kinds() {
        assert_eq!(
            ColumnKind::parse("bigint", "bigint(20) unsigned"),
            Some(ColumnKind::Int { unsigned: true })
        );
        assert_eq!(
            ColumnKind::parse("tinyint", "tinyint(1)"),
            Some(ColumnKind::Bool)
        );
        assert_eq!(
            ColumnKind::parse("tinyint", "tinyint(4)"),
            Some(ColumnKind::Int { unsigned: false })
        );
        assert_eq!(
            ColumnKind::parse("decimal", "decimal(65,30)"),
            Some(ColumnKind::Decimal {
                precision: 65,
                scale: 30
            })
        );
        assert_eq!(
            ColumnKind::parse("bit", "bit(12)"),
            Some(ColumnKind::Bit(12))
        );
        assert_eq!(
            ColumnKind::parse("point", "point"),
            Some(ColumnKind::Geometry)
        );
        assert_eq!(ColumnKind::parse("vector", "vector(3)"), None);
    }

    #[test]
    fn decodes_binary_protocol_values() {
        let k = ColumnKind::Int { unsigned: true };
        assert_eq!(decode(k, My::UInt(u64::MAX)), Ok(Value::UInt(u64::MAX)));
        assert_eq!(decode(k, My::Int(5)), Ok(Value::UInt(5)));
        assert_eq!(decode(ColumnKind::Bool, My::Int(1)), Ok(Value::Bool(true)));
        assert_eq!(decode(ColumnKind::Bool, My::Int(-5)), Ok(Value::Int(-5)));
        assert_eq!(
            decode(ColumnKind::Bit(12), My::Bytes(vec![0x0f, 0xff])),
            Ok(Value::UInt(4095))
        );
        assert_eq!(
            decode(ColumnKind::Float, My::Float(1.1f32)),
            Ok(Value::Float(1.1f32 as f64))
        );
        let t = decode(ColumnKind::Time, My::Time(true, 34, 22, 59, 59, 5)).unwrap();
        assert_eq!(t.to_string(), "-838:59:59.000005");
        assert_eq!(
            decode(ColumnKind::Date, My::Date(0, 0, 0, 0, 0, 0, 0)),
            Err(DecodeError::ZeroDate("0000-00-00".into()))
        );
        let ts = decode(ColumnKind::Timestamp, My::Date(1970, 1, 1, 0, 0, 1, 5)).unwrap();
        assert_eq!(ts, Value::Timestamp(Timestamp::from_unix_micros(1_000_005)));
        assert_eq!(
            decode(
                ColumnKind::Decimal {
                    precision: 65,
                    scale: 30
                },
                My::Bytes(b"-1.500".to_vec())
            ),
            Ok(Value::Decimal("-1.500".parse().unwrap()))
        );
        assert!(decode(ColumnKind::Text, My::Bytes(vec![0xff])).is_err());
    }

    #[test]
    fn literals_are_exact_and_escaped() {
        assert_eq!(lit(Value::from("it's")), "'it''s'");
        assert_eq!(lit(Value::from("a\\b")), "'a\\b'");
        assert_eq!(
            lit(Value::Bytes(Bytes::from_static(b"\0'\xff"))),
            "X'0027ff'"
        );
        assert_eq!(lit(Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(lit(Value::Float(0.1)), "1e-1");
        assert_eq!("1e-1".parse::<f64>().unwrap(), 0.1);
        assert_eq!(
            lit(Value::Float(f32::MAX as f64)).parse::<f64>().unwrap(),
            f32::MAX as f64
        );
        assert_eq!(
            lit(Value::Time("-838:59:59".parse().unwrap())),
            "'-838:59:59.000000'"
        );
        assert_eq!(
            lit(Value::Timestamp(
                "2024-01-01T00:00:00.5+01:00".parse().unwrap()
            )),
            "'2023-12-31 23:00:00.500000'"
        );
        assert_eq!(
            lit(Value::Json(serde_json::json!({"a": "'"}))),
            r#"'{"a":"''"}'"#
        );
        let mut s = String::new();
        assert!(write_literal(&mut s, &Value::Float(f64::NAN)).is_err());
    }
}

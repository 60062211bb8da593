//! One column in Debezium's JSON form: its Kafka Connect schema (type, logical name,
//! parameters) and its values, both ways.
//!
//! | DataTrace type | Connect type | logical name | JSON value |
//! |---|---|---|---|
//! | bool | boolean | | `true` |
//! | int | int64 | | `-42` |
//! | uint | bytes | `org.apache.kafka.connect.data.Decimal` (scale 0) | base64 of the unscaled big-endian two's complement |
//! | float | double | | `1.5` |
//! | decimal(p,s) | bytes | `org.apache.kafka.connect.data.Decimal` (scale s) | as above |
//! | decimal of unknown scale | struct | `io.debezium.data.VariableScaleDecimal` | `{"scale":2,"value":"base64"}` |
//! | string | string | | `"text"` |
//! | bytes | bytes | | base64 |
//! | date | int32 | `io.debezium.time.Date` | days since 1970-01-01 |
//! | time | int64 | `io.debezium.time.MicroTime` | microseconds (signed) |
//! | datetime | int64 | `io.debezium.time.MicroTimestamp` | microseconds since the epoch, no zone |
//! | timestamp | string | `io.debezium.time.ZonedTimestamp` | `2024-01-02T03:04:05.123456Z` |
//! | json | string | `io.debezium.data.Json` | the document as text |
//!
//! These are Debezium's MySQL connector's encodings with `decimal.handling.mode=precise`,
//! `bigint.unsigned.handling.mode=precise`, `time.precision.mode=adaptive_time_microseconds`
//! and `binary.handling.mode=bytes`. Decoding also takes the other encodings Debezium and Kafka
//! Connect produce (millisecond and nanosecond times, `org.apache.kafka.connect.data.*`
//! temporal types, decimals as strings or doubles, `io.debezium.data.Bits`, enums and sets).
//! Every column schema also carries `datatrace.type` (the DataTrace type) and, when known,
//! Debezium's `__debezium.source.column.type` (the source's native type), so DataTrace reads
//! its own events back into exactly the values it wrote.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use datatrace_core::{Column, DataType, Date, DateTime, Decimal, Time, Timestamp, Value};
use num_bigint::BigInt;
use serde_json::{json, Map, Value as Json};

/// Debezium's logical type names.
pub(crate) mod names {
    pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
    pub const VARIABLE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";
    pub const DATE: &str = "io.debezium.time.Date";
    pub const TIME: &str = "io.debezium.time.Time";
    pub const MICRO_TIME: &str = "io.debezium.time.MicroTime";
    pub const NANO_TIME: &str = "io.debezium.time.NanoTime";
    pub const TIMESTAMP: &str = "io.debezium.time.Timestamp";
    pub const MICRO_TIMESTAMP: &str = "io.debezium.time.MicroTimestamp";
    pub const NANO_TIMESTAMP: &str = "io.debezium.time.NanoTimestamp";
    pub const ZONED_TIMESTAMP: &str = "io.debezium.time.ZonedTimestamp";
    pub const JSON: &str = "io.debezium.data.Json";
    pub const BITS: &str = "io.debezium.data.Bits";
    pub const CONNECT_DATE: &str = "org.apache.kafka.connect.data.Date";
    pub const CONNECT_TIME: &str = "org.apache.kafka.connect.data.Time";
    pub const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
}

/// The parameter naming the DataTrace type of a column.
pub(crate) const TYPE_PARAM: &str = "datatrace.type";
/// Debezium's parameter naming the source column's type (`column.propagate.source.type`).
pub(crate) const NATIVE_PARAM: &str = "__debezium.source.column.type";

/// The Connect schema of one column (`field` set to its name).
pub(crate) fn column_schema(col: &Column) -> Json {
    let mut params = Map::new();
    params.insert(TYPE_PARAM.into(), Json::from(col.data_type.to_string()));
    if let Some(native) = &col.native_type {
        params.insert(NATIVE_PARAM.into(), Json::from(native.as_str()));
    }
    let (ty, name): (&str, Option<&str>) = match col.data_type {
        DataType::Bool => ("boolean", None),
        DataType::Int => ("int64", None),
        DataType::UInt => {
            params.insert("scale".into(), "0".into());
            params.insert("connect.decimal.precision".into(), "20".into());
            ("bytes", Some(names::DECIMAL))
        }
        DataType::Float => ("double", None),
        DataType::Decimal { precision, scale } if precision > 0 => {
            params.insert("scale".into(), scale.to_string().into());
            params.insert(
                "connect.decimal.precision".into(),
                precision.to_string().into(),
            );
            ("bytes", Some(names::DECIMAL))
        }
        DataType::Decimal { .. } => {
            let mut s = json!({
                "type": "struct",
                "name": names::VARIABLE_DECIMAL,
                "optional": col.nullable,
                "field": col.name,
                "fields": [
                    {"type": "int32", "optional": false, "field": "scale"},
                    {"type": "bytes", "optional": false, "field": "value"}
                ],
            });
            s["parameters"] = Json::Object(params);
            return s;
        }
        DataType::String => ("string", None),
        DataType::Bytes => ("bytes", None),
        DataType::Date => ("int32", Some(names::DATE)),
        DataType::Time => ("int64", Some(names::MICRO_TIME)),
        DataType::DateTime => ("int64", Some(names::MICRO_TIMESTAMP)),
        DataType::Timestamp => ("string", Some(names::ZONED_TIMESTAMP)),
        DataType::Json => ("string", Some(names::JSON)),
    };
    let mut s = Map::new();
    s.insert("type".into(), ty.into());
    s.insert("optional".into(), col.nullable.into());
    if let Some(name) = name {
        s.insert("name".into(), name.into());
        s.insert("version".into(), 1.into());
    }
    s.insert("parameters".into(), Json::Object(params));
    s.insert("field".into(), Json::from(col.name.as_str()));
    Json::Object(s)
}

/// A value that does not fit its column's encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

fn ferr(msg: impl Into<String>) -> FieldError {
    FieldError(msg.into())
}

/// Encodes a value of a column of type `ty` (nulls are `null` whatever the type); a value
/// of another type than its column's is refused, naming both.
pub(crate) fn encode(ty: &DataType, v: &Value) -> Result<Json, FieldError> {
    Ok(match (ty, v) {
        (_, Value::Null) => Json::Null,
        (DataType::UInt, Value::Int(_) | Value::UInt(_)) => {
            let u = v.as_u64().ok_or_else(|| mismatch(ty, v))?;
            Json::from(B64.encode(BigInt::from(u).to_signed_bytes_be()))
        }
        (DataType::Decimal { precision, scale }, _) if *precision > 0 => {
            let d = as_decimal(v).ok_or_else(|| mismatch(ty, v))?;
            Json::from(B64.encode(unscaled(&d, *scale as usize)?.to_signed_bytes_be()))
        }
        (DataType::Decimal { .. }, _) => {
            let d = as_decimal(v).ok_or_else(|| mismatch(ty, v))?;
            let scale = d.scale();
            json!({"scale": scale, "value": B64.encode(unscaled(&d, scale)?.to_signed_bytes_be())})
        }
        (DataType::Bool, Value::Bool(b)) => Json::Bool(*b),
        (DataType::Int, Value::Int(_) | Value::UInt(_)) => {
            Json::from(v.as_i64().ok_or_else(|| mismatch(ty, v))?)
        }
        (DataType::Float, Value::Float(f)) => {
            if !f.is_finite() {
                return Err(ferr(format!(
                    "{f} is not a finite number and has no JSON form"
                )));
            }
            Json::from(*f)
        }
        (DataType::String, Value::String(s)) => Json::from(s.as_str()),
        (DataType::Bytes, Value::Bytes(b)) => Json::from(B64.encode(b)),
        (DataType::Date, Value::Date(d)) => Json::from(d.days_since_epoch()),
        (DataType::Time, Value::Time(t)) => Json::from(t.as_micros()),
        (DataType::DateTime, Value::DateTime(dt)) => Json::from(dt.as_unix_micros()),
        (DataType::Timestamp, Value::Timestamp(ts)) => Json::from(ts.to_string()),
        (DataType::Json, Value::Json(j)) => Json::from(j.to_string()),
        _ => return Err(mismatch(ty, v)),
    })
}

fn mismatch(ty: &DataType, v: &Value) -> FieldError {
    ferr(format!(
        "a {} value in a column of type {ty} (value {v})",
        v.type_name()
    ))
}

fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Decimal(d) => Some(d.clone()),
        Value::Int(i) => i.to_string().parse().ok(),
        Value::UInt(u) => u.to_string().parse().ok(),
        _ => None,
    }
}

/// The unscaled integer of `d` at `scale` digits after the point; refuses to drop digits.
fn unscaled(d: &Decimal, scale: usize) -> Result<BigInt, FieldError> {
    let text = d.as_str();
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let kept = frac.trim_end_matches('0');
    if kept.len() > scale {
        return Err(ferr(format!(
            "decimal {text} has more than {scale} digits after the point, the column's scale"
        )));
    }
    let mut digits = String::with_capacity(int.len() + scale + 1);
    if neg {
        digits.push('-');
    }
    digits.push_str(int);
    digits.push_str(&frac[..frac.len().min(scale)]);
    for _ in frac.len()..scale {
        digits.push('0');
    }
    BigInt::parse_bytes(digits.as_bytes(), 10).ok_or_else(|| ferr(format!("bad decimal {text}")))
}

/// The decimal text of `unscaled / 10^scale`, with exactly `scale` digits after the point.
fn scaled_text(unscaled: &BigInt, scale: usize) -> String {
    let raw = unscaled.to_string();
    let (neg, digits) = match raw.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, raw.as_str()),
    };
    let mut out = String::with_capacity(digits.len() + scale + 3);
    if neg {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(digits);
        return out;
    }
    if digits.len() <= scale {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let (i, f) = digits.split_at(digits.len() - scale);
        out.push_str(i);
        out.push('.');
        out.push_str(f);
    }
    out
}

/// How a field schema asks for its values to be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldType {
    /// The DataTrace type the values become.
    pub data_type: DataType,
    /// The encoding on the wire.
    pub wire: Wire,
}

/// The wire encodings decoding knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Plain,
    DecimalBytes(u32),
    VariableDecimal,
    UIntBytes,
    Base64,
    /// `io.debezium.data.Bits`: base64 of the bits in little-endian byte order (MySQL's own
    /// order, which DataTrace's bytes keep, is big-endian).
    BitsLittleEndian,
    Days,
    Millis,
    Micros,
    Nanos,
    TimeMillis,
    TimeMicros,
    TimeNanos,
    Zoned,
    JsonText,
}

/// Reads a Connect field schema (`{"type":..,"name":..,"parameters":{..},"field":..}`) into the
/// column it describes and the way its values are encoded.
pub(crate) fn field_type(schema: &Json) -> Result<(Column, FieldType), FieldError> {
    let name = schema["field"]
        .as_str()
        .ok_or_else(|| ferr(format!("a field schema without a field name: {schema}")))?;
    let ty = schema["type"].as_str().unwrap_or("");
    let logical = schema["name"].as_str().unwrap_or("");
    let params = &schema["parameters"];
    let hint = params[TYPE_PARAM].as_str();
    let scale = params["scale"]
        .as_str()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(0);
    let precision = params["connect.decimal.precision"]
        .as_str()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(0);
    let (data_type, wire) = match (ty, logical) {
        ("bytes", names::DECIMAL) if hint == Some("uint") => (DataType::UInt, Wire::UIntBytes),
        ("bytes", names::DECIMAL) => (
            DataType::Decimal {
                precision: u8::try_from(precision).unwrap_or(0),
                scale: u8::try_from(scale).unwrap_or(0),
            },
            Wire::DecimalBytes(scale),
        ),
        ("struct", names::VARIABLE_DECIMAL) => (
            DataType::Decimal {
                precision: 0,
                scale: 0,
            },
            Wire::VariableDecimal,
        ),
        ("int32", names::DATE | names::CONNECT_DATE) => (DataType::Date, Wire::Days),
        ("int32", names::TIME | names::CONNECT_TIME) => (DataType::Time, Wire::TimeMillis),
        ("int64", names::MICRO_TIME) => (DataType::Time, Wire::TimeMicros),
        ("int64", names::NANO_TIME) => (DataType::Time, Wire::TimeNanos),
        ("int64", names::TIMESTAMP | names::CONNECT_TIMESTAMP) => {
            (DataType::DateTime, Wire::Millis)
        }
        ("int64", names::MICRO_TIMESTAMP) => (DataType::DateTime, Wire::Micros),
        ("int64", names::NANO_TIMESTAMP) => (DataType::DateTime, Wire::Nanos),
        ("string", names::ZONED_TIMESTAMP) => (DataType::Timestamp, Wire::Zoned),
        ("string", names::JSON) => (DataType::Json, Wire::JsonText),
        ("bytes", names::BITS) => (DataType::Bytes, Wire::BitsLittleEndian),
        ("bytes", _) => (DataType::Bytes, Wire::Base64),
        ("boolean", _) => (DataType::Bool, Wire::Plain),
        ("int8" | "int16" | "int32" | "int64", _) => (DataType::Int, Wire::Plain),
        ("float" | "float32" | "double" | "float64", _) => (DataType::Float, Wire::Plain),
        ("string", _) => match hint {
            // decimal.handling.mode=string from DataTrace's own hint
            Some(h) if h.starts_with("decimal") => (
                DataType::Decimal {
                    precision: 0,
                    scale: 0,
                },
                Wire::Plain,
            ),
            _ => (DataType::String, Wire::Plain),
        },
        ("struct" | "array" | "map", _) => (DataType::Json, Wire::Plain),
        (other, _) => {
            return Err(ferr(format!(
                "field {name}: unknown Connect type {other:?} (logical name {logical:?})"
            )))
        }
    };
    let mut col = Column::new(name, data_type);
    col.nullable = schema["optional"].as_bool().unwrap_or(true);
    col.native_type = params[NATIVE_PARAM].as_str().map(str::to_string);
    Ok((col, FieldType { data_type, wire }))
}

/// Decodes one JSON value of a field of type `ft`.
pub(crate) fn decode(ft: &FieldType, v: &Json) -> Result<Value, FieldError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let bad = || {
        ferr(format!(
            "{v} is not a valid {} value ({:?} encoding)",
            ft.data_type, ft.wire
        ))
    };
    let int = || v.as_i64().ok_or_else(bad);
    Ok(match ft.wire {
        Wire::DecimalBytes(scale) => {
            let n = bigint_b64(v).ok_or_else(bad)?;
            Value::Decimal(scaled_text(&n, scale as usize).parse().map_err(|_| bad())?)
        }
        Wire::UIntBytes => {
            let n = bigint_b64(v).ok_or_else(bad)?;
            Value::UInt(u64::try_from(n).map_err(|_| bad())?)
        }
        Wire::VariableDecimal => {
            let scale = v["scale"].as_u64().ok_or_else(bad)?;
            let n = bigint_b64(&v["value"]).ok_or_else(bad)?;
            let scale = usize::try_from(scale)
                .ok()
                .filter(|s| *s <= 1000)
                .ok_or_else(bad)?;
            Value::Decimal(scaled_text(&n, scale).parse().map_err(|_| bad())?)
        }
        Wire::Base64 => Value::Bytes(Bytes::from(
            B64.decode(v.as_str().ok_or_else(bad)?).map_err(|_| bad())?,
        )),
        Wire::BitsLittleEndian => {
            let mut bytes = B64.decode(v.as_str().ok_or_else(bad)?).map_err(|_| bad())?;
            bytes.reverse();
            Value::Bytes(Bytes::from(bytes))
        }
        Wire::Days => Value::Date(Date::from_days_since_epoch(int()?).ok_or_else(bad)?),
        Wire::Millis => Value::DateTime(
            DateTime::from_unix_micros(int()?.checked_mul(1000).ok_or_else(bad)?)
                .ok_or_else(bad)?,
        ),
        Wire::Micros => Value::DateTime(DateTime::from_unix_micros(int()?).ok_or_else(bad)?),
        Wire::Nanos => Value::DateTime(DateTime::from_unix_micros(int()? / 1000).ok_or_else(bad)?),
        Wire::TimeMillis => {
            Value::Time(Time::from_micros(int()?.checked_mul(1000).ok_or_else(bad)?))
        }
        Wire::TimeMicros => Value::Time(Time::from_micros(int()?)),
        Wire::TimeNanos => Value::Time(Time::from_micros(int()? / 1000)),
        Wire::Zoned => Value::Timestamp(
            v.as_str()
                .ok_or_else(bad)?
                .parse::<Timestamp>()
                .map_err(|e| ferr(e.to_string()))?,
        ),
        Wire::JsonText => Value::Json(
            serde_json::from_str(v.as_str().ok_or_else(bad)?)
                .map_err(|e| ferr(format!("io.debezium.data.Json value is not JSON: {e}")))?,
        ),
        Wire::Plain => plain(&ft.data_type, v).ok_or_else(bad)?,
    })
}

fn bigint_b64(v: &Json) -> Option<BigInt> {
    let raw = B64.decode(v.as_str()?).ok()?;
    if raw.is_empty() {
        return Some(BigInt::from(0));
    }
    Some(BigInt::from_signed_bytes_be(&raw))
}

fn plain(ty: &DataType, v: &Json) -> Option<Value> {
    Some(match ty {
        DataType::Bool => Value::Bool(v.as_bool()?),
        DataType::Int => match v.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::UInt(v.as_u64()?),
        },
        DataType::Float => Value::Float(v.as_f64()?),
        DataType::Decimal { .. } => Value::Decimal(match v {
            Json::String(s) => s.parse().ok()?,
            Json::Number(n) => n.to_string().parse().ok()?,
            _ => return None,
        }),
        DataType::String => Value::String(v.as_str()?.to_string()),
        DataType::Json => Value::Json(v.clone()),
        _ => return None,
    })
}

/// Decodes a JSON value of an event that carries no schema (`schemas.enable=false`): by its
/// JSON shape alone (see the README's table of what that loses).
pub(crate) fn infer(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => n
                .to_string()
                .parse::<Decimal>()
                .map(Value::Decimal)
                .unwrap_or_else(|_| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Value::String(s.clone()),
        other => Value::Json(other.clone()),
    }
}

#[cfg(test)]
#[path = "field_tests.rs"]
mod tests;

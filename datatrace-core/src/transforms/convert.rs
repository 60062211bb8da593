//! Value conversions: [`cast_value`] (the cast matrix), type names in configs, and JSON
//! literals.
//!
//! # The cast matrix
//!
//! `NULL` (and JSON `null`) casts to `NULL` for every target. A value already of the target
//! kind is kept (a decimal is fitted to the target's precision and scale). Otherwise:
//!
//! | target | accepted sources |
//! |---|---|
//! | `bool` | int/uint/decimal `0` or `1`; strings `true`, `false` (any case), `1`, `0` |
//! | `int`, `uint` | integers in range; floats and decimals without a fraction (`2.00` yes, `1.50` no); strings of digits; `bool` as 0/1 |
//! | `float` | integers up to 2^53 in magnitude (exactly); decimals (to the nearest float); numeric strings (finite) |
//! | `decimal(p,s)` | integers; finite floats (their shortest exact text, `0.1` -> `0.1`); decimal strings. With `p > 0`, the value must fit: at most `s` digits after the point (padded with zeros to `s`) and `p - s` before |
//! | `string` | anything: its text (`Display`); bytes must be UTF-8 and are decoded; JSON becomes its serialized text (`"x"` keeps its quotes) |
//! | `bytes` | strings (their UTF-8 bytes) |
//! | `date` | `YYYY-MM-DD` strings; datetimes and timestamps (UTC) at exactly midnight |
//! | `time` | `[-]HH:MM:SS[.ffffff]` strings |
//! | `datetime` | `YYYY-MM-DD[T ]HH:MM:SS[.ffffff]` or `YYYY-MM-DD` strings; dates (midnight); timestamps (as UTC) |
//! | `timestamp` | RFC 3339 strings (`Z` or `+HH:MM`); datetime or date strings and values (read as UTC) |
//! | `json` | strings are parsed as JSON text; bool and numbers become JSON scalars; a decimal becomes a JSON number when that is exact, else a JSON string; dates and times their ISO text |
//!
//! A JSON value that is a scalar casts like the corresponding value (a JSON string like a
//! string). Everything else is an error that names the value and the target type, e.g.
//! `"abc" is not a decimal` or `float 1.5 is not an exact int`.

use std::fmt;

use bytes::Bytes;

use crate::decimal::Decimal;
use crate::schema::DataType;
use crate::temporal::{Date, DateTime, Time, Timestamp};
use crate::value::Value;

/// Why a value could not be cast; the message names the value and the target type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CastError(pub String);

/// A value for messages: strings quoted (and shortened), others as `type text`.
pub(crate) fn describe(v: &Value) -> String {
    const MAX: usize = 64;
    match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) if s.chars().count() > MAX => {
            let cut: String = s.chars().take(MAX).collect();
            format!("{cut:?}...")
        }
        Value::String(s) => format!("{s:?}"),
        other => {
            let text = other.to_string();
            if text.chars().count() > MAX {
                let cut: String = text.chars().take(MAX).collect();
                format!("{} {cut}...", other.type_name())
            } else {
                format!("{} {text}", other.type_name())
            }
        }
    }
}

/// `an int`, `a decimal`, ...: the target kind for messages.
fn a(to: DataType) -> &'static str {
    match to {
        DataType::Bool => "a bool",
        DataType::Int => "an int",
        DataType::UInt => "a uint",
        DataType::Float => "a float",
        DataType::Decimal { .. } => "a decimal",
        DataType::String => "a string",
        DataType::Bytes => "bytes",
        DataType::Date => "a date",
        DataType::Time => "a time",
        DataType::DateTime => "a datetime",
        DataType::Timestamp => "a timestamp",
        DataType::Json => "valid JSON",
    }
}

fn not_a(v: &Value, to: DataType) -> CastError {
    CastError(format!("{} is not {}", describe(v), a(to)))
}

fn not_exact(v: &Value, to: DataType) -> CastError {
    CastError(format!("{} is not an exact {}", describe(v), TypeName(to)))
}

fn out_of_range(v: &Value, to: DataType) -> CastError {
    CastError(format!(
        "{} is out of range for {}",
        describe(v),
        TypeName(to)
    ))
}

fn cannot(v: &Value, to: DataType) -> CastError {
    CastError(format!("cannot cast {} to {}", describe(v), TypeName(to)))
}

/// Whether `v` already is of kind `to` (nulls match every type).
pub(crate) fn matches_type(v: &Value, to: DataType) -> bool {
    matches!(
        (v, to),
        (Value::Null, _)
            | (Value::Bool(_), DataType::Bool)
            | (Value::Int(_), DataType::Int)
            | (Value::UInt(_), DataType::UInt)
            | (Value::Float(_), DataType::Float)
            | (Value::String(_), DataType::String)
            | (Value::Bytes(_), DataType::Bytes)
            | (Value::Date(_), DataType::Date)
            | (Value::Time(_), DataType::Time)
            | (Value::DateTime(_), DataType::DateTime)
            | (Value::Timestamp(_), DataType::Timestamp)
            | (Value::Json(_), DataType::Json)
    )
}

/// The type a column holding `v` would naturally have (`None` for `NULL`). Decimals get
/// their own digit count and scale.
pub(crate) fn natural_type(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => DataType::Bool,
        Value::Int(_) => DataType::Int,
        Value::UInt(_) => DataType::UInt,
        Value::Float(_) => DataType::Float,
        Value::Decimal(d) => {
            let digits = d.as_str().bytes().filter(u8::is_ascii_digit).count();
            DataType::Decimal {
                precision: digits.clamp(1, 65) as u8,
                scale: d.scale().min(30) as u8,
            }
        }
        Value::String(_) => DataType::String,
        Value::Bytes(_) => DataType::Bytes,
        Value::Date(_) => DataType::Date,
        Value::Time(_) => DataType::Time,
        Value::DateTime(_) => DataType::DateTime,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::Json(_) => DataType::Json,
    })
}

/// A JSON literal from a config as a value of its natural kind: `null`, bool, `Int` (or
/// `UInt` above `i64::MAX`), `Float`, `String`; arrays and objects stay `Json`.
pub fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        other => Value::Json(other.clone()),
    }
}

/// A config literal interpreted as a value of type `to` (`"2024-01-01"` for a date column);
/// JSON columns take the literal as it is.
pub fn literal_as(j: &serde_json::Value, to: DataType) -> Result<Value, CastError> {
    match to {
        DataType::Json if !j.is_null() => Ok(Value::Json(j.clone())),
        _ => cast_value(&json_to_value(j), to),
    }
}

/// Parses a type name as configs write it: `bool`, `int`, `uint`, `float`, `decimal`,
/// `decimal(p,s)`, `string`, `bytes`, `date`, `time`, `datetime`, `timestamp`, `json`
/// (case-insensitive; a few common aliases such as `integer`, `bigint`, `double`, `text`).
pub fn parse_data_type(text: &str) -> Result<DataType, String> {
    let t = text.trim().to_ascii_lowercase();
    let simple = match t.as_str() {
        "bool" | "boolean" => Some(DataType::Bool),
        "int" | "integer" | "bigint" | "long" | "i64" => Some(DataType::Int),
        "uint" | "unsigned" | "u64" => Some(DataType::UInt),
        "float" | "double" | "f64" => Some(DataType::Float),
        "decimal" | "numeric" => Some(DataType::Decimal {
            precision: 0,
            scale: 0,
        }),
        "string" | "text" | "str" => Some(DataType::String),
        "bytes" | "binary" | "blob" => Some(DataType::Bytes),
        "date" => Some(DataType::Date),
        "time" => Some(DataType::Time),
        "datetime" => Some(DataType::DateTime),
        "timestamp" => Some(DataType::Timestamp),
        "json" => Some(DataType::Json),
        _ => None,
    };
    if let Some(dt) = simple {
        return Ok(dt);
    }
    let bad = || {
        format!(
            "unknown type {text:?}: expected bool, int, uint, float, decimal, decimal(p,s), \
             string, bytes, date, time, datetime, timestamp or json"
        )
    };
    let args = t
        .strip_prefix("decimal(")
        .or_else(|| t.strip_prefix("numeric("))
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (p, s) = args.split_once(',').unwrap_or((args, "0"));
    let p: u8 = p.trim().parse().map_err(|_| bad())?;
    let s: u8 = s.trim().parse().map_err(|_| bad())?;
    if p == 0 || p > 65 || s > p {
        return Err(format!(
            "invalid type {text:?}: decimal precision must be 1..=65 and scale at most the precision"
        ));
    }
    Ok(DataType::Decimal {
        precision: p,
        scale: s,
    })
}

/// Converts `value` to type `to` following the [cast matrix](self): exact or an error that
/// names the value and the type. `NULL` stays `NULL`.
///
/// ```
/// use datatrace_core::transforms::cast_value;
/// use datatrace_core::{DataType, Value};
///
/// assert_eq!(cast_value(&Value::from("42"), DataType::Int).unwrap(), Value::Int(42));
/// let e = cast_value(&Value::Float(1.5), DataType::Int).unwrap_err();
/// assert_eq!(e.to_string(), "float 1.5 is not an exact int");
/// ```
pub fn cast_value(value: &Value, to: DataType) -> Result<Value, CastError> {
    if let Value::Json(j) = value {
        if to != DataType::Json {
            return match j {
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => match to {
                    DataType::String => Ok(Value::String(j.to_string())),
                    _ => Err(cannot(value, to)),
                },
                serde_json::Value::String(_) if to == DataType::String => {
                    Ok(Value::String(j.to_string()))
                }
                scalar => cast_value(&json_to_value(scalar), to),
            };
        }
    }
    if let (Value::Decimal(d), DataType::Decimal { precision, scale }) = (value, to) {
        return fit_decimal(d, precision, scale, value, to).map(Value::Decimal);
    }
    if matches_type(value, to) {
        return Ok(value.clone());
    }
    match to {
        DataType::Bool => to_bool(value, to),
        DataType::Int => to_i128(value, to).and_then(|i| {
            i64::try_from(i)
                .map(Value::Int)
                .map_err(|_| out_of_range(value, to))
        }),
        DataType::UInt => to_i128(value, to).and_then(|i| {
            u64::try_from(i)
                .map(Value::UInt)
                .map_err(|_| out_of_range(value, to))
        }),
        DataType::Float => to_float(value, to),
        DataType::Decimal { precision, scale } => {
            let d = to_decimal(value, to)?;
            fit_decimal(&d, precision, scale, value, to).map(Value::Decimal)
        }
        DataType::String => match value {
            Value::Bytes(b) => std::str::from_utf8(b)
                .map(|s| Value::String(s.to_string()))
                .map_err(|_| CastError(format!("{} is not UTF-8 text", describe(value)))),
            other => Ok(Value::String(other.to_string())),
        },
        DataType::Bytes => match value {
            Value::String(s) => Ok(Value::Bytes(Bytes::from(s.clone().into_bytes()))),
            _ => Err(cannot(value, to)),
        },
        DataType::Date => to_date(value, to),
        DataType::Time => match value {
            Value::String(s) => s
                .parse::<Time>()
                .map(Value::Time)
                .map_err(|_| not_a(value, to)),
            _ => Err(cannot(value, to)),
        },
        DataType::DateTime => to_datetime(value, to).map(Value::DateTime),
        DataType::Timestamp => to_timestamp(value, to),
        DataType::Json => to_json(value, to),
    }
}

fn to_bool(value: &Value, to: DataType) -> Result<Value, CastError> {
    let b = match value {
        Value::Int(0) | Value::UInt(0) => false,
        Value::Int(1) | Value::UInt(1) => true,
        Value::Decimal(d) => match d.normalized().as_str() {
            "0" => false,
            "1" => true,
            _ => return Err(not_a(value, to)),
        },
        Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => false,
        Value::Int(_) | Value::UInt(_) | Value::String(_) => return Err(not_a(value, to)),
        _ => return Err(cannot(value, to)),
    };
    Ok(Value::Bool(b))
}

/// An integer from any exact source, range-checked by the caller.
fn to_i128(value: &Value, to: DataType) -> Result<i128, CastError> {
    match value {
        Value::Int(i) => Ok(*i as i128),
        Value::UInt(u) => Ok(*u as i128),
        Value::Bool(b) => Ok(*b as i128),
        Value::Float(f) => {
            if !f.is_finite() || f.fract() != 0.0 {
                Err(not_exact(value, to))
            } else if f.abs() >= 1.8e19 {
                Err(out_of_range(value, to))
            } else {
                Ok(*f as i128)
            }
        }
        Value::Decimal(d) => {
            let n = d.normalized();
            if n.as_str().contains('.') {
                return Err(not_exact(value, to));
            }
            n.as_str()
                .parse::<i128>()
                .map_err(|_| out_of_range(value, to))
        }
        Value::String(s) => {
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_a(value, to));
            }
            s.parse::<i128>().map_err(|_| out_of_range(value, to))
        }
        _ => Err(cannot(value, to)),
    }
}

/// 2^53: integers up to this magnitude are exact in an `f64`.
const EXACT_FLOAT_INT: u64 = 1 << 53;

fn to_float(value: &Value, to: DataType) -> Result<Value, CastError> {
    let f = match value {
        Value::Int(i) if i.unsigned_abs() <= EXACT_FLOAT_INT => *i as f64,
        Value::UInt(u) if *u <= EXACT_FLOAT_INT => *u as f64,
        Value::Int(_) | Value::UInt(_) => return Err(not_exact(value, to)),
        Value::Decimal(d) => d.to_f64(),
        Value::String(s) => s.parse::<f64>().map_err(|_| not_a(value, to))?,
        _ => return Err(cannot(value, to)),
    };
    if f.is_finite() {
        Ok(Value::Float(f))
    } else {
        Err(not_a(value, to))
    }
}

fn to_decimal(value: &Value, to: DataType) -> Result<Decimal, CastError> {
    let text = match value {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) if f.is_finite() => f.to_string(),
        Value::Float(_) => return Err(not_a(value, to)),
        Value::String(s) => return s.parse().map_err(|_| not_a(value, to)),
        _ => return Err(cannot(value, to)),
    };
    text.parse().map_err(|_| not_a(value, to))
}

/// The decimal with exactly `scale` digits after the point, if it fits `decimal(p,s)`
/// without losing a digit; unchanged when the precision is unknown (0).
fn fit_decimal(
    d: &Decimal,
    precision: u8,
    scale: u8,
    value: &Value,
    to: DataType,
) -> Result<Decimal, CastError> {
    if precision == 0 {
        return Ok(d.clone());
    }
    let n = d.normalized();
    let text = n.as_str();
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int_digits = if int == "0" { 0 } else { int.len() };
    if frac.len() > scale as usize || int_digits > precision.saturating_sub(scale) as usize {
        return Err(CastError(format!(
            "{} does not fit {}",
            describe(value),
            TypeName(to)
        )));
    }
    let mut out = String::with_capacity(body.len() + scale as usize + 2);
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if scale > 0 {
        out.push('.');
        out.push_str(frac);
        out.extend(std::iter::repeat_n('0', scale as usize - frac.len()));
    }
    out.parse().map_err(|_| not_a(value, to))
}

fn midnight(d: Date) -> Option<DateTime> {
    DateTime::new(d, 0, 0, 0, 0).ok()
}

fn to_date(value: &Value, to: DataType) -> Result<Value, CastError> {
    let dt = match value {
        Value::String(s) => {
            return s
                .parse::<Date>()
                .map(Value::Date)
                .map_err(|_| not_a(value, to))
        }
        Value::DateTime(dt) => *dt,
        Value::Timestamp(ts) => ts.to_utc().ok_or_else(|| out_of_range(value, to))?,
        _ => return Err(cannot(value, to)),
    };
    if dt.time_parts() != (0, 0, 0, 0) {
        return Err(not_exact(value, to));
    }
    Ok(Value::Date(dt.date()))
}

fn to_datetime(value: &Value, to: DataType) -> Result<DateTime, CastError> {
    match value {
        Value::String(s) => s
            .parse::<DateTime>()
            .ok()
            .or_else(|| s.parse::<Date>().ok().and_then(midnight))
            .ok_or_else(|| not_a(value, to)),
        Value::Date(d) => midnight(*d).ok_or_else(|| out_of_range(value, to)),
        Value::Timestamp(ts) => ts.to_utc().ok_or_else(|| out_of_range(value, to)),
        _ => Err(cannot(value, to)),
    }
}

fn to_timestamp(value: &Value, to: DataType) -> Result<Value, CastError> {
    let dt = match value {
        Value::String(s) => match s.parse::<Timestamp>() {
            Ok(ts) => return Ok(Value::Timestamp(ts)),
            Err(_) => to_datetime(value, to)?,
        },
        Value::DateTime(dt) => *dt,
        Value::Date(d) => midnight(*d).ok_or_else(|| out_of_range(value, to))?,
        _ => return Err(cannot(value, to)),
    };
    Ok(Value::Timestamp(Timestamp::from_unix_micros(
        dt.as_unix_micros(),
    )))
}

fn to_json(value: &Value, to: DataType) -> Result<Value, CastError> {
    use serde_json::Value as J;
    let j = match value {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| CastError(format!("{} is not valid JSON: {e}", describe(value))))?,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| not_a(value, to))?,
        Value::Decimal(d) => decimal_to_json(d),
        Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_) => {
            J::String(value.to_string())
        }
        _ => return Err(cannot(value, to)),
    };
    Ok(Value::Json(j))
}

/// A JSON number when it represents the decimal exactly, else the decimal's text.
fn decimal_to_json(d: &Decimal) -> serde_json::Value {
    let n = d.normalized();
    let text = n.as_str();
    if let Ok(i) = text.parse::<i64>() {
        return i.into();
    }
    if let Ok(u) = text.parse::<u64>() {
        return u.into();
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() && f.to_string() == text {
            if let Some(num) = serde_json::Number::from_f64(f) {
                return serde_json::Value::Number(num);
            }
        }
    }
    serde_json::Value::String(d.to_string())
}

/// Display helper so callers can write `{}` for a data type in messages.
pub(crate) struct TypeName(pub DataType);

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DataType::Decimal {
                precision: 0,
                scale: 0,
            } => f.write_str("decimal"),
            other => write!(f, "{other}"),
        }
    }
}

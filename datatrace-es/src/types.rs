//! [`Value`] <-> JSON: how cells are written into documents and read back from hits.
//!
//! Writing goes straight from a [`Value`] to JSON bytes in a reused buffer (no
//! `serde_json::Value` tree per document):
//!
//! | Value | JSON |
//! |---|---|
//! | Null | `null` (or the field is left out, see `write_nulls`) |
//! | Bool, Int, UInt, Float | a JSON number/boolean, `u64` exact; NaN and infinities as `null` |
//! | Decimal | its exact digits as a number (scaled_float/double mappings) or a string (keyword) |
//! | String | a string |
//! | Bytes | base64 (the `binary` type) |
//! | Date | `"2024-02-29"` |
//! | Time | `"-838:59:59"` (keyword) |
//! | DateTime | `"2024-02-29T01:02:03.000004"` (no zone: Elasticsearch reads it as UTC) |
//! | Timestamp | `"2024-02-29T01:02:03.000004Z"` |
//! | Json | the JSON as is |
//!
//! Reading converts each top-level field by its mapped type ([`json_to_value`]); a value that
//! does not fit its type (an array in a `long` field, an object where a keyword is mapped)
//! keeps its JSON as [`Value::Json`], so nothing is lost. Numbers are read as serde_json does
//! by default: integers exact within `i64`/`u64`, other numbers as `f64` (integers beyond
//! `u64` and decimals with more than ~15 significant digits written as JSON numbers are
//! the only loss; keyword-mapped decimals are exact).

use std::io::Write as _;

use base64::Engine as _;
use datatrace_core::{DataType, Date, DateTime, Decimal, Time, Timestamp, Value};
use serde_json::Value as Json;

/// How a decimal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalAs {
    /// As a JSON number with the exact digits.
    Number,
    /// As a JSON string.
    String,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of the word is a control character, `"` or `\\` (bit tricks: a byte
/// below 0x20, or equal to one of the two).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGHS != 0
}

#[inline]
fn byte_needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The position of the next byte at or after `i` that needs escaping.
#[inline]
fn next_escape(bytes: &[u8], mut i: usize) -> Option<usize> {
    let n = bytes.len();
    loop {
        while i + 8 <= n {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            if word_needs_escape(u64::from_le_bytes(w)) {
                break;
            }
            i += 8;
        }
        let end = (i + 8).min(n);
        while i < end {
            if byte_needs_escape(bytes[i]) {
                return Some(i);
            }
            i += 1;
        }
        if i >= n {
            return None;
        }
    }
}

/// Appends `s` as a JSON string (quoted and escaped).
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        buf.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends the JSON text of a store that keeps JSON as text (MariaDB), exactly as written
/// but for the whitespace between tokens (a bulk body is one document per line): numbers
/// keep every digit and their spelling, keys their order and escapes. `Err` when the text
/// is not JSON.
pub fn write_json_text(buf: &mut Vec<u8>, text: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| e.to_string())?;
    buf.reserve(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            buf.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            if b == b'"' {
                in_string = true;
            }
            buf.push(b);
        }
    }
    Ok(())
}

/// Appends a value as JSON.
pub fn write_value(buf: &mut Vec<u8>, v: &Value, decimal: DecimalAs) {
    match v {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::Int(i) => buf.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => buf.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) => write_f64(buf, *f),
        Value::Decimal(d) => write_decimal(buf, d, decimal),
        Value::String(s) => write_str(buf, s),
        Value::Bytes(b) => {
            buf.push(b'"');
            let start = buf.len();
            let n = base64::encoded_len(b.len(), true).unwrap_or(0);
            buf.resize(start + n, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut buf[start..])
                .unwrap_or(0);
            buf.truncate(start + written);
            buf.push(b'"');
        }
        Value::Date(d) => {
            let _ = write!(buf, "\"{d}\"");
        }
        Value::Time(t) => {
            let _ = write!(buf, "\"{t}\"");
        }
        Value::DateTime(d) => {
            let _ = write!(buf, "\"{d}\"");
        }
        Value::Timestamp(t) => match t.to_utc() {
            Some(dt) => {
                let _ = write!(buf, "\"{dt}Z\"");
            }
            // Outside years 0..=9999: epoch milliseconds, which `date` also accepts.
            None => buf.extend_from_slice(
                itoa::Buffer::new()
                    .format(t.as_unix_micros().div_euclid(1000))
                    .as_bytes(),
            ),
        },
        Value::Json(j) => {
            let _ = serde_json::to_writer(&mut *buf, j);
        }
    }
}

fn write_f64(buf: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *buf, &f);
    } else {
        buf.extend_from_slice(b"null");
    }
}

/// A value as a JSON tree, the same JSON [`write_value`] writes, for values nested inside
/// objects (the related rows of denormalized documents). One difference: a decimal written
/// as a number stays a JSON number only where that number holds it exactly (a `serde_json`
/// number is an `i64`, `u64` or `f64`); other decimals become strings of their exact
/// digits, which numeric fields accept.
pub fn value_to_json(v: &Value, decimal: DecimalAs) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Decimal(d) => decimal_to_json(d, decimal),
        Value::String(s) => Json::String(s.clone()),
        Value::Json(j) => j.clone(),
        other => {
            // Bytes, dates and times: the text write_value writes.
            let mut buf = Vec::new();
            write_value(&mut buf, other, decimal);
            serde_json::from_slice(&buf).unwrap_or(Json::Null)
        }
    }
}

fn decimal_to_json(d: &Decimal, how: DecimalAs) -> Json {
    if how == DecimalAs::Number {
        let exact = d.normalized();
        if !exact.as_str().contains('.') {
            if let Ok(i) = exact.as_str().parse::<i64>() {
                return Json::from(i);
            }
        }
        if let Some(n) = serde_json::Number::from_f64(d.to_f64()) {
            let back = n.to_string().parse::<Decimal>().map(|x| x.normalized());
            if back.is_ok_and(|b| b.as_str() == exact.as_str()) {
                return Json::Number(n);
            }
        }
    }
    Json::String(d.as_str().to_string())
}

fn write_decimal(buf: &mut Vec<u8>, d: &Decimal, how: DecimalAs) {
    match how {
        DecimalAs::String => write_str(buf, d.as_str()),
        DecimalAs::Number => {
            let s = d.as_str();
            let body = s.strip_prefix('-').unwrap_or(s).as_bytes();
            // JSON forbids leading zeros ("007"); normalise only then.
            if body.len() > 1 && body[0] == b'0' && body[1].is_ascii_digit() {
                buf.extend_from_slice(d.normalized().as_str().as_bytes());
            } else {
                buf.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// The text of a JSON number with all its digits and no exponent (`1e21` becomes
/// `1000000000000000000000`), for exact decimals.
pub fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    n.as_f64().map(|f| f.to_string()).unwrap_or_default()
}

/// The exact decimal a JSON number's text stands for, exponent expanded (`1.5E+3` is
/// `1500`, `-12e-3` is `-0.012`); `None` for text that is not a JSON number or whose
/// exponent is beyond any decimal column (|exponent| > 400).
pub fn decimal_from_number_text(text: &str) -> Option<Decimal> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    if !(-400..=400).contains(&exp) {
        return None;
    }
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (mantissa.contains('.') && frac.is_empty()) {
        return None;
    }
    // digits * 10^(exp - frac.len())
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exp as i64; // position of the point in `digits`
    let mut out = String::with_capacity(digits.len() + exp.unsigned_abs() as usize + 3);
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
    out.parse().ok()
}

/// A number field of a hit read straight from its JSON text, so that no digit goes through a
/// binary float it does not need to: `DOUBLE` as the nearest double (exact for every text
/// a double was written as), `DECIMAL` digit for digit, integers exact in their range.
/// `None` when the text is not a JSON number of that type (the caller then converts the
/// parsed JSON as [`json_to_value`] does).
pub fn number_from_text(text: &str, ty: DataType) -> Option<Value> {
    let first = *text.as_bytes().first()?;
    if !(first == b'-' || first.is_ascii_digit()) {
        return None;
    }
    match ty {
        DataType::Float => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float),
        DataType::Decimal { .. } => decimal_from_number_text(text).map(Value::Decimal),
        DataType::Int => text.parse::<i64>().ok().map(Value::Int).or_else(|| {
            // 5.0, 1e3: integral numbers written as floats.
            let d = decimal_from_number_text(text)?.normalized();
            d.as_str().parse::<i64>().ok().map(Value::Int)
        }),
        DataType::UInt => text.parse::<u64>().ok().map(Value::UInt).or_else(|| {
            let d = decimal_from_number_text(text)?.normalized();
            d.as_str().parse::<u64>().ok().map(Value::UInt)
        }),
        _ => None,
    }
}

/// Converts a field of a hit to the [`Value`] of its column type; values that do not fit
/// stay JSON (see the module docs).
pub fn json_to_value(v: Json, ty: DataType) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let converted = match (&v, ty) {
        (_, DataType::Json) => return Value::Json(v),
        (Json::Bool(b), DataType::Bool) => Some(Value::Bool(*b)),
        (Json::String(s), DataType::Bool) => match s.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (Json::Number(n), DataType::Int) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| integral_f64(n).map(|f| Value::Int(f as i64))),
        (Json::String(s), DataType::Int) => s.trim().parse().ok().map(Value::Int),
        (Json::Number(n), DataType::UInt) => n.as_u64().map(Value::UInt),
        (Json::String(s), DataType::UInt) => s.trim().parse().ok().map(Value::UInt),
        (Json::Number(n), DataType::Float) => n.as_f64().map(Value::Float),
        (Json::String(s), DataType::Float) => s.trim().parse().ok().map(Value::Float),
        (Json::Number(n), DataType::Decimal { .. }) => decimal_from_number_text(&n.to_string())
            .or_else(|| number_text(n).parse().ok())
            .map(Value::Decimal),
        (Json::String(s), DataType::Decimal { .. }) => s.trim().parse().ok().map(Value::Decimal),
        (Json::String(_), DataType::String) => match v {
            Json::String(s) => return Value::String(s),
            _ => None,
        },
        (Json::Number(n), DataType::String) => Some(Value::String(n.to_string())),
        (Json::Bool(b), DataType::String) => Some(Value::String(b.to_string())),
        (Json::String(s), DataType::Bytes) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .ok()
            .map(|b| Value::Bytes(b.into())),
        (Json::String(s), DataType::Date) => s.parse::<Date>().ok().map(Value::Date),
        (Json::String(s), DataType::Time) => s.parse::<Time>().ok().map(Value::Time),
        (Json::String(s), DataType::DateTime) => parse_datetime(s).map(Value::DateTime),
        (Json::String(s), DataType::Timestamp) => parse_timestamp(s).map(Value::Timestamp),
        (Json::Number(n), DataType::Timestamp) => n
            .as_i64()
            .map(|ms| Value::Timestamp(Timestamp::from_unix_micros(ms.saturating_mul(1000)))),
        _ => None,
    };
    converted.unwrap_or(Value::Json(v))
}

fn integral_f64(n: &serde_json::Number) -> Option<f64> {
    n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
}

/// Parses the date texts Elasticsearch's default `strict_date_optional_time` accepts as an
/// instant: `2024-02-29`, `2024-02-29T10:00`, `...T10:00:00[.fffffffff]` with `Z`, an
/// offset or nothing (UTC). Fractions beyond microseconds are cut.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if s.len() == 10 {
        let d: Date = s.parse().ok()?;
        return Some(Timestamp::from_unix_micros(
            d.days_since_epoch() * 86_400_000_000,
        ));
    }
    let (body, offset) = split_offset(s);
    let body = normalize_time_part(body)?;
    let dt: DateTime = body.parse().ok()?;
    let t = match offset {
        None => Timestamp::from_unix_micros(dt.as_unix_micros()),
        Some(o) => format!("{body}{o}").parse().ok()?,
    };
    Some(t)
}

/// Parses a date-time without zone; with a zone, the UTC date-time of that instant.
pub fn parse_datetime(s: &str) -> Option<DateTime> {
    if let Ok(d) = s.parse::<DateTime>() {
        return Some(d);
    }
    parse_timestamp(s).and_then(|t| t.to_utc())
}

/// Splits `Z` / `+HH:MM` off the end.
fn split_offset(s: &str) -> (&str, Option<&str>) {
    if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return (b, Some("Z"));
    }
    if s.len() > 16 && s.is_char_boundary(s.len() - 6) {
        let (b, o) = s.split_at(s.len() - 6);
        if (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' {
            return (b, Some(o));
        }
    }
    (s, None)
}

/// `2024-01-01T10:00` -> `...T10:00:00`; fractions cut to 6 digits.
fn normalize_time_part(body: &str) -> Option<String> {
    if body.len() == 16 {
        return Some(format!("{body}:00"));
    }
    match body.split_once('.') {
        Some((head, frac)) if frac.len() > 6 => Some(format!("{head}.{}", frac.get(..6)?)),
        _ => Some(body.to_string()),
    }
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;

//! Comparing two [`Value`]s for [`super::Filter`]: numbers exactly across kinds, text by
//! bytes, dates and times by value, SQL-like with `NULL`.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::schema::DataType;
use crate::value::Value;

use super::convert::{cast_value, json_to_value};

/// The outcome of comparing two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// One side is `NULL` (or a float NaN): no comparison matches.
    Unknown,
    /// An ordering.
    Ord(Ordering),
    /// Comparable for equality only (JSON arrays and objects), and equal or not.
    Eq(bool),
}

/// Compares `a` with `b`, or `Err` when they are of kinds that cannot be compared.
pub(crate) fn compare(a: &Value, b: &Value) -> Result<Cmp, ()> {
    let a = unwrap_json(a);
    let b = unwrap_json(b);
    let (a, b) = (a.as_ref(), b.as_ref());
    if a.is_null() || b.is_null() {
        return Ok(Cmp::Unknown);
    }
    if let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) {
        return Ok(x.cmp(&y).map_or(Cmp::Unknown, Cmp::Ord));
    }
    let ord = match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y)) => x.cmp(y),
        (Value::Json(x), Value::Json(y)) => return Ok(Cmp::Eq(x == y)),
        (Value::String(s), t) if is_temporal(t) => {
            let parsed = parse_like(s, t)?;
            return compare(&parsed, t);
        }
        (t, Value::String(s)) if is_temporal(t) => {
            let parsed = parse_like(s, t)?;
            return compare(t, &parsed);
        }
        (x, y) => match (instant(x), instant(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => return Err(()),
        },
    };
    Ok(Cmp::Ord(ord))
}

/// JSON scalars compare like the corresponding values.
fn unwrap_json(v: &Value) -> Cow<'_, Value> {
    match v {
        Value::Json(j) if !j.is_array() && !j.is_object() => Cow::Owned(json_to_value(j)),
        other => Cow::Borrowed(other),
    }
}

fn is_temporal(v: &Value) -> bool {
    matches!(
        v,
        Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_)
    )
}

/// Text parsed as the temporal kind of `like`.
fn parse_like(s: &str, like: &Value) -> Result<Value, ()> {
    let dt = match like {
        Value::Date(_) => DataType::Date,
        Value::Time(_) => DataType::Time,
        Value::DateTime(_) => DataType::DateTime,
        _ => DataType::Timestamp,
    };
    cast_value(&Value::String(s.to_string()), dt).map_err(|_| ())
}

/// Dates (as midnight), date-times and timestamps as microseconds since the epoch, UTC.
fn instant(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => Some(d.days_since_epoch() * 86_400_000_000),
        Value::DateTime(dt) => Some(dt.as_unix_micros()),
        Value::Timestamp(ts) => Some(ts.as_unix_micros()),
        _ => None,
    }
}

/// A number of any kind, compared without going through `f64` unless one side is a float.
enum Num<'a> {
    Int(i128),
    Float(f64),
    Dec(&'a str),
}

impl<'a> Num<'a> {
    fn of(v: &'a Value) -> Option<Num<'a>> {
        match v {
            Value::Int(i) => Some(Num::Int(*i as i128)),
            Value::UInt(u) => Some(Num::Int(*u as i128)),
            Value::Float(f) => Some(Num::Float(*f)),
            Value::Decimal(d) => Some(Num::Dec(d.as_str())),
            _ => None,
        }
    }

    /// `None` when a NaN is involved.
    fn cmp(&self, other: &Num<'_>) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(x), Num::Int(y)) => Some(x.cmp(y)),
            (Num::Float(x), Num::Float(y)) => x.partial_cmp(y),
            (Num::Dec(x), Num::Dec(y)) => Some(cmp_decimal_text(x, y)),
            (Num::Int(x), Num::Dec(y)) => Some(cmp_decimal_text(&x.to_string(), y)),
            (Num::Dec(_), Num::Int(_)) => other.cmp(self).map(Ordering::reverse),
            (Num::Float(f), Num::Int(i)) => float_vs_int(*f, *i),
            (Num::Int(_), Num::Float(_)) => other.cmp(self).map(Ordering::reverse),
            (Num::Float(f), Num::Dec(d)) => {
                if f.is_nan() {
                    None
                } else if f.is_infinite() {
                    Some(if *f > 0.0 {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    })
                } else {
                    // A finite float's `Display` is its shortest exact decimal text.
                    Some(cmp_decimal_text(&f.to_string(), d))
                }
            }
            (Num::Dec(_), Num::Float(_)) => other.cmp(self).map(Ordering::reverse),
        }
    }
}

fn float_vs_int(f: f64, i: i128) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // Every i64/u64 lies within +-2^64; floats beyond are decided by sign.
    const BOUND: f64 = 18_446_744_073_709_551_616.0;
    if f >= BOUND {
        return Some(Ordering::Greater);
    }
    if f <= -BOUND {
        return Some(Ordering::Less);
    }
    let whole = f.trunc();
    match (whole as i128).cmp(&i) {
        Ordering::Equal => (f - whole).partial_cmp(&0.0),
        other => Some(other),
    }
}

/// Splits decimal text into sign, integer digits without leading zeros and fraction digits
/// without trailing zeros (zero is never negative).
fn parts(t: &str) -> (bool, &str, &str) {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    (neg && !(int.is_empty() && frac.is_empty()), int, frac)
}

/// Compares two decimal texts (`[-]digits[.digits]`) exactly.
pub(crate) fn cmp_decimal_text(a: &str, b: &str) -> Ordering {
    let (an, ai, af) = parts(a);
    let (bn, bi, bf) = parts(b);
    match (an, bn) {
        (false, true) => return Ordering::Greater,
        (true, false) => return Ordering::Less,
        _ => {}
    }
    let magnitude = ai
        .len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(bi))
        .then_with(|| af.cmp(bf));
    if an {
        magnitude.reverse()
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_order() {
        use Ordering::*;
        let cases = [
            ("1.50", "1.5", Equal),
            ("-0.0", "0", Equal),
            ("10", "9.99", Greater),
            ("-10", "-9.99", Less),
            ("0.05", "0.5", Less),
            ("007", "7.000", Equal),
            ("-1", "0.1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp_decimal_text(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn floats_against_integers_are_exact() {
        assert_eq!(float_vs_int(1.5, 1), Some(Ordering::Greater));
        assert_eq!(float_vs_int(-1.5, -1), Some(Ordering::Less));
        assert_eq!(float_vs_int(2.0, 2), Some(Ordering::Equal));
        // 2^63 as a float is above i64::MAX although `as` would saturate to it.
        assert_eq!(
            float_vs_int(9_223_372_036_854_775_808.0, i64::MAX as i128),
            Some(Ordering::Greater)
        );
        assert_eq!(float_vs_int(f64::NAN, 0), None);
    }
}

//! The text that `LOAD DATA LOCAL INFILE` reads: rows as tab-separated lines, encoded exactly.
//!
//! The statement spells out every format option (fields end at a tab, lines at a line feed,
//! backslash escapes, nothing enclosed, `CHARACTER SET utf8mb4`), so the server reads the
//! text the same way whatever its defaults. NULL is `\N`; a backslash, tab, line feed,
//! carriage return or NUL inside a value is escaped (`\\`, `\t`, `\n`, `\r`, `\0`), so text
//! arrives byte for byte, `\N` as text included. Every other value is written as the text the
//! multi-row `INSERT` path writes as its literal ([`crate::types::write_literal`] without the
//! quotes), so both paths store the same thing.
//!
//! Columns that hold bytes (BINARY, VARBINARY, BLOB, BIT, GEOMETRY) are sent as hex into a
//! user variable and stored with `UNHEX(@v)`: raw bytes never pass through a character-set
//! conversion. BIT columns take numbers as their 8 big-endian bytes, as an `INSERT` of the
//! number stores them.
//!
//! A value that has no exact form here (a NaN, bytes that are not UTF-8 for a text column, a
//! number for an ENUM, a negative number for a BIT) makes [`encode_row`] refuse the row; the
//! sink then writes the batch with `INSERT`, which reports such rows one by one.

use std::fmt::Write as _;

use datatrace_core::{DateTime, Value};

use crate::sql::push_ident;
use crate::types::ColumnKind;

/// How one column's values travel in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldForm {
    /// As text, into the column directly.
    Text,
    /// As text, into an ENUM or SET column: numbers (member indexes) are refused.
    Label,
    /// As text, into a YEAR column: 0 as `0000` (the text `0` would be the year 2000).
    Year,
    /// As hex into `@v`, stored with `UNHEX(@v)` (binary strings, BLOBs, geometry).
    Hex,
    /// As hex into `@v`, stored with `UNHEX(@v)`; numbers as 8 big-endian bytes (BIT).
    Bit,
}

impl FieldForm {
    /// The form for a target column of `kind`.
    pub(crate) fn of(kind: ColumnKind) -> FieldForm {
        match kind {
            ColumnKind::Binary | ColumnKind::Geometry => FieldForm::Hex,
            ColumnKind::Bit(_) => FieldForm::Bit,
            ColumnKind::Enum | ColumnKind::Set => FieldForm::Label,
            ColumnKind::Year => FieldForm::Year,
            _ => FieldForm::Text,
        }
    }

    fn is_hex(self) -> bool {
        matches!(self, FieldForm::Hex | FieldForm::Bit)
    }
}

/// What `LOAD DATA` does with a row whose key is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDuplicate {
    /// Nothing said: with `LOCAL` the server keeps the old row and warns (the sink then
    /// writes the batch with `INSERT` to report the duplicates).
    Warn,
    /// `REPLACE`: the new row replaces the old one.
    Replace,
    /// `IGNORE`: the old row stays.
    Ignore,
}

/// `LOAD DATA LOCAL INFILE ... INTO TABLE t (cols) SET ...` for columns `names` of `forms`.
pub(crate) fn load_statement(
    table: &str,
    names: &[&str],
    forms: &[FieldForm],
    dup: OnDuplicate,
) -> String {
    let modifier = match dup {
        OnDuplicate::Warn => "",
        OnDuplicate::Replace => " REPLACE",
        OnDuplicate::Ignore => " IGNORE",
    };
    // X'..' spelling: independent of NO_BACKSLASH_ESCAPES.
    let mut s = format!(
        "LOAD DATA LOCAL INFILE 'datatrace'{modifier} INTO TABLE {table} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY X'09' ENCLOSED BY '' ESCAPED BY X'5C' \
         LINES STARTING BY '' TERMINATED BY X'0A' ("
    );
    let mut set = String::new();
    for (i, (name, form)) in names.iter().zip(forms).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if form.is_hex() {
            let _ = write!(s, "@v{i}");
            set.push_str(if set.is_empty() { " SET " } else { ", " });
            push_ident(&mut set, name);
            let _ = write!(set, " = UNHEX(@v{i})");
        } else {
            push_ident(&mut s, name);
        }
    }
    s.push(')');
    s.push_str(&set);
    s
}

/// Appends one row (a line) to `out`; `Err` names the value that has no exact form. On
/// error `out` may hold part of the row: the caller drops the whole buffer.
pub(crate) fn encode_row(
    out: &mut Vec<u8>,
    values: &[Value],
    forms: &[FieldForm],
) -> Result<(), String> {
    for (i, (v, form)) in values.iter().zip(forms).enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        if v.is_null() {
            out.extend_from_slice(b"\\N");
            continue;
        }
        match form {
            FieldForm::Year if matches!(v, Value::Int(0) | Value::UInt(0)) => {
                out.extend_from_slice(b"0000")
            }
            FieldForm::Text | FieldForm::Label | FieldForm::Year => {
                if *form == FieldForm::Label
                    && matches!(v, Value::Int(_) | Value::UInt(_) | Value::Bool(_))
                {
                    return Err(format!(
                        "number {} for an ENUM or SET column",
                        v.type_name()
                    ));
                }
                write_text(out, v)?
            }
            FieldForm::Hex | FieldForm::Bit => write_hex_field(out, v, *form)?,
        }
    }
    out.push(b'\n');
    Ok(())
}

/// A value as text, escaped.
fn write_text(out: &mut Vec<u8>, v: &Value) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Bool(b) => out.push(if *b { b'1' } else { b'0' }),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::String(s) => escape(out, s.as_bytes()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => escape(out, s.as_bytes()),
            Err(_) => return Err("bytes that are not UTF-8 for a text column".into()),
        },
        Value::Json(j) => {
            let text = serde_json::to_vec(j).map_err(|e| e.to_string())?;
            escape(out, &text);
        }
        other => {
            let mut s = String::new();
            plain_literal(&mut s, other)?;
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}

/// Numbers, decimals, dates and times as the `INSERT` path spells them (no escaping needed).
fn plain_literal(s: &mut String, v: &Value) -> Result<(), String> {
    match v {
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!("{f} has no MySQL representation"));
            }
            let _ = write!(s, "{f:e}");
        }
        Value::Decimal(d) => s.push_str(d.as_str()),
        Value::Date(d) => {
            let _ = write!(s, "{d}");
        }
        Value::Time(t) => {
            let (h, m, sec, us) = t.parts();
            let sign = if t.is_negative() { "-" } else { "" };
            let _ = write!(s, "{sign}{h}:{m:02}:{sec:02}.{us:06}");
        }
        Value::DateTime(dt) => datetime(s, dt),
        Value::Timestamp(ts) => match ts.to_utc() {
            Some(dt) => datetime(s, &dt),
            None => return Err(format!("timestamp {ts} is outside years 0..9999")),
        },
        other => return Err(format!("unexpected {} value", other.type_name())),
    }
    Ok(())
}

fn datetime(s: &mut String, dt: &DateTime) {
    let (h, m, sec, us) = dt.time_parts();
    let _ = write!(s, "{} {h:02}:{m:02}:{sec:02}.{us:06}", dt.date());
}

/// A value for a hex column: its bytes (text as UTF-8, BIT numbers as 8 big-endian bytes,
/// other values as their literal text) in hex.
fn write_hex_field(out: &mut Vec<u8>, v: &Value, form: FieldForm) -> Result<(), String> {
    match (v, form) {
        (Value::Bytes(b), _) => hex(out, b),
        (Value::String(s), _) => hex(out, s.as_bytes()),
        (Value::Bool(b), FieldForm::Bit) => hex(out, &u64::from(*b).to_be_bytes()),
        (Value::UInt(u), FieldForm::Bit) => hex(out, &u.to_be_bytes()),
        (Value::Int(i), FieldForm::Bit) if *i >= 0 => hex(out, &i.to_be_bytes()),
        (Value::Int(_), FieldForm::Bit) => return Err("a negative number for a BIT column".into()),
        (Value::Json(j), _) => {
            let text = serde_json::to_vec(j).map_err(|e| e.to_string())?;
            hex(out, &text);
        }
        (Value::Bool(b), _) => hex(out, if *b { b"1" } else { b"0" }),
        (Value::Int(i), _) => hex(out, itoa::Buffer::new().format(*i).as_bytes()),
        (Value::UInt(u), _) => hex(out, itoa::Buffer::new().format(*u).as_bytes()),
        (other, FieldForm::Bit) => {
            return Err(format!("{} value for a BIT column", other.type_name()))
        }
        (other, _) => {
            let mut s = String::new();
            plain_literal(&mut s, other)?;
            hex(out, s.as_bytes());
        }
    }
    Ok(())
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Whether a byte must be escaped in a field.
const fn special(b: u8) -> bool {
    matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0)
}

/// Appends `bytes` with the field specials escaped; runs without specials are copied whole.
fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if special(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            out.push(match b {
                b'\t' => b't',
                b'\n' => b'n',
                b'\r' => b'r',
                0 => b'0',
                other => other,
            });
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datatrace_core::{Date, Time, Timestamp};

    fn row(values: &[Value], forms: &[FieldForm]) -> Result<String, String> {
        let mut out = Vec::new();
        encode_row(&mut out, values, forms)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn escapes_the_field_specials_only() {
        let forms = [FieldForm::Text; 3];
        let r = row(
            &[
                Value::from("a\tb\nc\\d\re\0f 'q' \"x\" é"),
                Value::Null,
                Value::from("\\N"),
            ],
            &forms,
        )
        .unwrap();
        assert_eq!(r, "a\\tb\\nc\\\\d\\re\\0f 'q' \"x\" é\t\\N\t\\\\N\n");
    }

    #[test]
    fn numbers_dates_and_times_as_the_insert_path_writes_them() {
        let forms = [FieldForm::Text; 9];
        let r = row(
            &[
                Value::Int(-5),
                Value::UInt(u64::MAX),
                Value::Float(0.1),
                Value::Decimal("-12.3400".parse().unwrap()),
                Value::Date(Date::new(2024, 2, 29).unwrap()),
                Value::Time(Time::from_micros(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)),
                Value::Timestamp(Timestamp::from_unix_micros(1)),
                Value::Bool(true),
                Value::Json(serde_json::json!({"a": "t\tb"})),
            ],
            &forms,
        )
        .unwrap();
        assert_eq!(
            r,
            "-5\t18446744073709551615\t1e-1\t-12.3400\t2024-02-29\t-838:59:59.000000\t\
             1970-01-01 00:00:00.000001\t1\t{\"a\":\"t\\\\tb\"}\n"
        );
        assert!(row(&[Value::Float(f64::NAN)], &forms[..1]).is_err());
    }

    #[test]
    fn bytes_travel_as_hex() {
        let forms = [
            FieldForm::Hex,
            FieldForm::Bit,
            FieldForm::Bit,
            FieldForm::Hex,
        ];
        let r = row(
            &[
                Value::Bytes(bytes::Bytes::from_static(&[0, 0xff, b'\t'])),
                Value::UInt(5),
                Value::Bytes(bytes::Bytes::from_static(&[1, 2])),
                Value::from("é"),
            ],
            &forms,
        )
        .unwrap();
        assert_eq!(r, "00ff09\t0000000000000005\t0102\tc3a9\n");
        assert!(row(&[Value::Int(-1)], &[FieldForm::Bit]).is_err());
        assert!(row(&[Value::Int(2)], &[FieldForm::Label]).is_err());
        let not_utf8 = Value::Bytes(bytes::Bytes::from_static(&[0xff]));
        assert!(row(&[not_utf8], &[FieldForm::Text]).is_err());
    }

    #[test]
    fn statements_name_columns_and_unhex_binary_ones() {
        let s = load_statement(
            "`d`.`t`",
            &["id", "b`x"],
            &[FieldForm::Text, FieldForm::Hex],
            OnDuplicate::Replace,
        );
        assert!(
            s.starts_with("LOAD DATA LOCAL INFILE 'datatrace' REPLACE INTO TABLE `d`.`t` CHARACTER SET utf8mb4"),
            "{s}"
        );
        assert!(s.ends_with("(`id`, @v1) SET `b``x` = UNHEX(@v1)"), "{s}");
    }
}

//! Decoding rows events into [`Value`]s, exactly as the snapshot path reads them.
//!
//! A [`TableDecoder`] is built once per table map: it matches the event's columns to the
//! table's [`TableInfo`] by name (the table map's names, with `binlog_row_metadata=FULL`;
//! else by position), and keeps per column the binlog type, its metadata and how the value
//! is normalised. The binlog's encodings differ from the client protocol's, and are mapped:
//!
//! | column | binlog | becomes |
//! |---|---|---|
//! | TIMESTAMP | epoch seconds (`sec[.usec]` text) | `Timestamp` (0 is the zero date) |
//! | ENUM | 1-based index | its label (`""` for 0) |
//! | SET | bitmask | its labels joined by `,` |
//! | YEAR | `1900 + byte` | `Int` (0 for 0000) |
//! | unsigned integers without signedness metadata | negative | reinterpreted at the column width |
//! | JSON | MariaDB: text; MySQL: binary JSON | `Json` |
//! | latin1 text | raw bytes | `String` |
//! | everything else | as the binary protocol | through [`crate::types::decode`] |

use std::sync::Arc;

use datatrace_core::{Schema, Timestamp, Value};
use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value as My;
use mysql_common::io::ParseBuf;

use super::shape::{missing_columns, table_map_names};
use crate::config::ZeroDate;
use crate::schema::TableInfo;
use crate::types::{decode, ColumnKind, DecodeError};

/// How one column of a table map is read.
#[derive(Debug, Clone)]
struct ColumnDecoder {
    /// The schema index the value goes to (None: a column the schema leaves out, e.g. a
    /// generated one).
    target: Option<usize>,
    ty: ColumnType,
    meta: Vec<u8>,
    unsigned: bool,
    kind: ColumnKind,
    labels: Arc<[String]>,
    latin1: bool,
    /// BINARY(n): the binlog drops trailing zero bytes, reads pad them back to n.
    pad: usize,
}

/// Decodes the rows of one table map's table.
#[derive(Debug, Clone)]
pub struct TableDecoder {
    /// The table's shape (what records carry).
    pub schema: Arc<Schema>,
    /// `db.table`.
    pub name: String,
    key: Vec<usize>,
    cols: Vec<ColumnDecoder>,
    zero_date: ZeroDate,
}

/// Why a decoder could not be built: the event's columns do not match the table's.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch(pub String);

impl TableDecoder {
    /// Matches `tme` to `info`. With column names in the table map (FULL row metadata),
    /// columns match by name: a table column missing from the event is a [`Mismatch`]
    /// (the schema is ahead: see [`super::shape::narrow`]), and so is an event column missing from the
    /// table unless `allow_extra` (generated columns, or columns dropped since the event,
    /// whose values are then left out). Without names, the counts must be equal.
    pub fn new(
        tme: &TableMapEvent<'_>,
        info: &TableInfo,
        zero_date: ZeroDate,
        allow_extra: bool,
    ) -> Result<TableDecoder, Mismatch> {
        let n = tme.columns_count() as usize;
        let names = table_map_names(tme);
        let schema = &info.schema;
        if names.is_none() && n != schema.columns().len() {
            return Err(Mismatch(format!(
                "the event has {n} columns, the table {} (and no column names: set binlog_row_metadata=FULL)",
                schema.columns().len()
            )));
        }
        if let Some(names) = &names {
            check_names(info, names, allow_extra)?;
        }
        let ex = OptionalMetaExtractor::new(tme.iter_optional_meta()).ok();
        let signed: Vec<bool> = ex
            .as_ref()
            .map(|e| e.iter_signedness().collect())
            .unwrap_or_default();
        let mut cols = Vec::with_capacity(n);
        let mut numeric_i = 0usize;
        for i in 0..n {
            let ty = match tme.get_column_type(i) {
                Ok(Some(t)) => t,
                _ => return Err(Mismatch(format!("column {i}: unknown binlog column type"))),
            };
            let meta = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
            let unsigned_meta = if ty.is_numeric_type() {
                numeric_i += 1;
                signed.get(numeric_i - 1).copied().unwrap_or(false)
            } else {
                false
            };
            let target = match &names {
                Some(names) => schema.index_of(&names[i]),
                None => Some(i),
            };
            let (kind, labels, latin1, pad) = match target {
                Some(t) => column_traits(info, t),
                None => (ColumnKind::Binary, Arc::from(Vec::new()), false, 0),
            };
            cols.push(ColumnDecoder {
                target,
                ty,
                meta,
                unsigned: unsigned_meta || matches!(kind, ColumnKind::Int { unsigned: true }),
                kind,
                labels,
                latin1,
                pad,
            });
        }
        Ok(TableDecoder {
            schema: schema.clone(),
            name: info.qualified_name(),
            key: info.key.clone(),
            cols,
            zero_date,
        })
    }

    /// Decodes one row image (its null bitmap and values) at the start of `data`, of an
    /// event whose images hold the columns flagged in `present` (all of them with
    /// `binlog_row_image=FULL`). Returns the values and the bytes consumed.
    pub fn decode_image<'a>(
        &'a self,
        data: &'a [u8],
        present: &[bool],
    ) -> Result<(Vec<Value>, usize), String> {
        let mut buf = ParseBuf(data);
        let n_present = present.iter().filter(|p| **p).count();
        let bitmap_len = n_present.div_ceil(8);
        if buf.len() < bitmap_len {
            return Err("truncated rows event (null bitmap)".into());
        }
        let nulls = buf.eat(bitmap_len).to_vec();
        let mut values = vec![Value::Null; self.schema.columns().len()];
        let mut image_idx = 0usize;
        for (i, col) in self.cols.iter().enumerate() {
            if !present.get(i).copied().unwrap_or(false) {
                continue;
            }
            let is_null = nulls[image_idx / 8] & (1 << (image_idx % 8)) != 0;
            image_idx += 1;
            if is_null {
                continue;
            }
            let ctx = (col.ty, col.meta.as_slice(), col.unsigned, false);
            let raw: BinlogValue<'_> = buf
                .parse(ctx)
                .map_err(|e| format!("column {i} ({:?}): {e}", col.ty))?;
            let Some(t) = col.target else { continue };
            values[t] = match normalise(col, raw) {
                Ok(v) => v,
                Err(DecodeError::ZeroDate(text)) => self.zero(t, text)?,
                Err(DecodeError::Invalid(m)) => {
                    return Err(format!("column {}: {m}", self.schema.columns()[t].name))
                }
            };
        }
        Ok((values, data.len() - buf.len()))
    }

    fn zero(&self, t: usize, text: String) -> Result<Value, String> {
        if self.key.contains(&t) {
            return Ok(Value::String(text));
        }
        match self.zero_date {
            ZeroDate::Keep => Ok(Value::String(text)),
            ZeroDate::Null => Ok(Value::Null),
            ZeroDate::Error => Err(format!(
                "column {}: zero date {text} (zero_date = \"error\")",
                self.schema.columns()[t].name
            )),
        }
    }

    /// How many columns the table map has.
    pub fn width(&self) -> usize {
        self.cols.len()
    }
}

/// Checks that the event's columns (`names`) hold every column of the table, and (unless
/// `allow_extra`) no other.
fn check_names(info: &TableInfo, names: &[String], allow_extra: bool) -> Result<(), Mismatch> {
    let missing = missing_columns(info, names);
    if !missing.is_empty() {
        return Err(Mismatch(format!(
            "columns {missing:?} of the table are not in the event"
        )));
    }
    let extra: Vec<&String> = names
        .iter()
        .filter(|c| info.schema.index_of(c).is_none())
        .collect();
    if !extra.is_empty() && !allow_extra {
        return Err(Mismatch(format!(
            "columns {extra:?} of the event are not in the table"
        )));
    }
    Ok(())
}

/// How the table's column `t` is read: its kind, ENUM/SET labels, whether it is latin1 text,
/// and the length a BINARY(n) is padded back to.
fn column_traits(info: &TableInfo, t: usize) -> (ColumnKind, Arc<[String]>, bool, usize) {
    let kind = info.kinds[t];
    let native = info.schema.columns()[t]
        .native_type
        .as_deref()
        .unwrap_or("");
    let labels: Arc<[String]> = match kind {
        ColumnKind::Enum | ColumnKind::Set => Arc::from(parse_labels(native)),
        _ => Arc::from(Vec::new()),
    };
    let lower = native.to_ascii_lowercase();
    let latin1 = lower.contains("character set latin1");
    let pad = lower
        .strip_prefix("binary(")
        .map(|n| n.trim_end_matches(')').parse().unwrap_or(0))
        .unwrap_or(0);
    (kind, labels, latin1, pad)
}

/// ENUM / SET labels from a `COLUMN_TYPE` such as `enum('a','it''s')`.
pub fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut chars = column_type[start + 1..].chars().peekable();
    let mut cur: Option<String> = None;
    while let Some(c) = chars.next() {
        match (&mut cur, c) {
            (None, '\'') => cur = Some(String::new()),
            (None, ')') => break,
            (None, _) => {}
            (Some(s), '\'') => {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    s.push('\'');
                } else {
                    out.push(cur.take().unwrap_or_default());
                }
            }
            (Some(s), c) => s.push(c),
        }
    }
    out
}

/// Turns a binlog value into the same [`Value`] the snapshot path reads.
fn normalise(col: &ColumnDecoder, raw: BinlogValue<'_>) -> Result<Value, DecodeError> {
    let v = match raw {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            return serde_json::Value::try_from(j)
                .map(Value::Json)
                .map_err(|e| DecodeError::Invalid(format!("binary JSON: {e}")))
        }
        BinlogValue::JsonDiff(_) => {
            return Err(DecodeError::Invalid(
                "partial JSON update: set binlog_row_value_options='' on the server".into(),
            ))
        }
    };
    let v = match v {
        My::Bytes(mut b) if col.pad > b.len() => {
            b.resize(col.pad, 0);
            My::Bytes(b)
        }
        v => v,
    };
    normalise_value(col.kind, col.ty, col.unsigned, &col.labels, col.latin1, v)
}

/// The conversion of [`normalise`] on a plain value (public for tests of captured values).
pub fn normalise_value(
    kind: ColumnKind,
    ty: ColumnType,
    unsigned: bool,
    labels: &[String],
    latin1: bool,
    v: My,
) -> Result<Value, DecodeError> {
    use ColumnKind as K;
    Ok(match (kind, v) {
        (K::Timestamp, My::Int(secs)) => timestamp(secs, 0)?,
        (K::Timestamp, My::Bytes(b)) => {
            let t = std::str::from_utf8(&b)
                .map_err(|_| DecodeError::Invalid("timestamp is not text".into()))?;
            let (s, frac) = t.split_once('.').unwrap_or((t, "0"));
            let secs: i64 = s
                .parse()
                .map_err(|_| DecodeError::Invalid(format!("timestamp {t:?}")))?;
            let mut us: i64 = frac
                .parse()
                .map_err(|_| DecodeError::Invalid(format!("timestamp {t:?}")))?;
            for _ in frac.len()..6 {
                us *= 10;
            }
            timestamp(secs, us)?
        }
        (K::Enum, My::Int(i)) => match i {
            0 => Value::String(String::new()),
            i => Value::String(
                labels
                    .get(i as usize - 1)
                    .cloned()
                    .ok_or_else(|| DecodeError::Invalid(format!("ENUM index {i} out of range")))?,
            ),
        },
        (K::Set, My::Bytes(mask)) => {
            let mut out = String::new();
            for (bit, label) in labels.iter().enumerate() {
                if mask.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0) {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(label);
                }
            }
            Value::String(out)
        }
        (K::Year, My::Bytes(b)) if b == b"1900" => Value::Int(0),
        // mysql_common reads signed MEDIUMINT without sign extension.
        (K::Int { unsigned: false }, My::Int(i))
            if ty == ColumnType::MYSQL_TYPE_INT24 && !unsigned && i >= 0x80_0000 =>
        {
            Value::Int(i - 0x100_0000)
        }
        (K::Int { unsigned: true }, My::Int(i)) if i < 0 || unsigned => {
            let u = i as u64;
            Value::UInt(match ty {
                ColumnType::MYSQL_TYPE_TINY => u & 0xff,
                ColumnType::MYSQL_TYPE_SHORT => u & 0xffff,
                ColumnType::MYSQL_TYPE_INT24 => u & 0xff_ffff,
                ColumnType::MYSQL_TYPE_LONG => u & 0xffff_ffff,
                _ => u,
            })
        }
        (K::Text, My::Bytes(b)) if latin1 => Value::String(b.iter().map(|&c| c as char).collect()),
        (kind, v) => decode(kind, v)?,
    })
}

fn timestamp(secs: i64, us: i64) -> Result<Value, DecodeError> {
    if secs == 0 && us == 0 {
        return Err(DecodeError::ZeroDate("0000-00-00 00:00:00".into()));
    }
    Ok(Value::Timestamp(Timestamp::from_unix_micros(
        secs * 1_000_000 + us,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse() {
        assert_eq!(parse_labels("enum('a','it''s','')"), vec!["a", "it's", ""]);
        assert_eq!(
            parse_labels("set('x','y,z') CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"),
            vec!["x", "y,z"]
        );
    }

    #[test]
    fn binlog_encodings_normalise() {
        let none: &[String] = &[];
        let labels = vec!["red".to_string(), "green".into(), "blue".into()];
        let t = ColumnType::MYSQL_TYPE_LONGLONG;
        let n = |k, ty, v| normalise_value(k, ty, false, &labels, false, v);
        assert_eq!(
            n(ColumnKind::Enum, ColumnType::MYSQL_TYPE_ENUM, My::Int(2)),
            Ok(Value::from("green"))
        );
        assert_eq!(
            n(
                ColumnKind::Set,
                ColumnType::MYSQL_TYPE_SET,
                My::Bytes(vec![0b101])
            ),
            Ok(Value::from("red,blue"))
        );
        assert_eq!(
            n(
                ColumnKind::Timestamp,
                ColumnType::MYSQL_TYPE_TIMESTAMP2,
                My::Bytes(b"1.5".to_vec())
            ),
            Ok(Value::Timestamp(Timestamp::from_unix_micros(1_500_000)))
        );
        assert_eq!(
            n(
                ColumnKind::Timestamp,
                ColumnType::MYSQL_TYPE_TIMESTAMP2,
                My::Bytes(b"0".to_vec())
            ),
            Err(DecodeError::ZeroDate("0000-00-00 00:00:00".into()))
        );
        assert_eq!(
            normalise_value(
                ColumnKind::Int { unsigned: true },
                t,
                false,
                none,
                false,
                My::Int(-1)
            ),
            Ok(Value::UInt(u64::MAX))
        );
        assert_eq!(
            normalise_value(
                ColumnKind::Int { unsigned: true },
                ColumnType::MYSQL_TYPE_TINY,
                false,
                none,
                false,
                My::Int(-1)
            ),
            Ok(Value::UInt(255))
        );
        assert_eq!(
            n(
                ColumnKind::Year,
                ColumnType::MYSQL_TYPE_YEAR,
                My::Bytes(b"1900".to_vec())
            ),
            Ok(Value::Int(0))
        );
        assert_eq!(
            n(
                ColumnKind::Int { unsigned: false },
                ColumnType::MYSQL_TYPE_INT24,
                My::Int(0x80_0000)
            ),
            Ok(Value::Int(-8388608))
        );
        assert_eq!(
            normalise_value(
                ColumnKind::Text,
                ColumnType::MYSQL_TYPE_VARCHAR,
                false,
                none,
                true,
                My::Bytes(vec![0x63, 0x61, 0x66, 0xe9])
            ),
            Ok(Value::from("café"))
        );
    }

    #[test]
    fn mysql_binary_json_decodes() {
        // MySQL 8 writes JSON columns in its binary format: {"a": 1, "b": "xy"} as a small
        // object, after a 4-byte length.
        let obj: Vec<u8> = vec![
            0x02, 0x00, // 2 elements
            0x17, 0x00, // 23 bytes
            0x12, 0x00, 0x01, 0x00, // key "a" at 18
            0x13, 0x00, 0x01, 0x00, // key "b" at 19
            0x05, 0x01, 0x00, // int16 1, inlined
            0x0c, 0x14, 0x00, // string at 20
            b'a', b'b', 0x02, b'x', b'y',
        ];
        let mut data = vec![0u8; 4];
        data[0] = (obj.len() + 1) as u8;
        data.push(0x00); // small object
        data.extend_from_slice(&obj);
        let col = ColumnDecoder {
            target: Some(0),
            ty: ColumnType::MYSQL_TYPE_JSON,
            meta: vec![4],
            unsigned: false,
            kind: ColumnKind::Json,
            labels: Arc::from(Vec::new()),
            latin1: false,
            pad: 0,
        };
        let raw: BinlogValue<'_> = ParseBuf(&data)
            .parse((ColumnType::MYSQL_TYPE_JSON, &[4u8][..], false, false))
            .expect("binary JSON");
        assert!(matches!(raw, BinlogValue::Jsonb(_)));
        assert_eq!(
            normalise(&col, raw),
            Ok(Value::Json(serde_json::json!({"a": 1, "b": "xy"})))
        );
        // MariaDB writes the text.
        let text = normalise(&col, BinlogValue::Value(My::Bytes(br#"[1,"x"]"#.to_vec())));
        assert_eq!(text, Ok(Value::Json(serde_json::json!([1, "x"]))));
    }
}

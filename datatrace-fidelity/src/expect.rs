//! What a target must hold, derived independently of the connectors under test: tables
//! compared cell by cell in canonical form ([`crate::exact::Cell`]), documents against the
//! README's type mapping written out here again, document ids against the documented
//! encoding written out here again.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value as Json;

use crate::exact::{Cell, ColumnInfo, Table};

/// What may differ between two tables, by documented design.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leeway {
    /// JSON compared as documents (through Elasticsearch JSON is re-serialized), not text.
    pub json_as_documents: bool,
    /// Zero dates of the source are NULL in the target (`zero_date = "null"`).
    pub zero_dates_null: bool,
}

fn is_zero_date(c: &Cell) -> bool {
    matches!(c, Cell::DateTime(_, 0, ..) | Cell::DateTime(_, _, 0, ..))
}

fn cells_equal(a: &Cell, b: &Cell, leeway: Leeway) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Cell::Json(x), Cell::Json(y)) if leeway.json_as_documents => {
            let p = serde_json::from_slice::<Json>(x);
            let q = serde_json::from_slice::<Json>(y);
            matches!((p, q), (Ok(p), Ok(q)) if p == q)
        }
        (z, Cell::Null) if leeway.zero_dates_null && is_zero_date(z) => true,
        _ => false,
    }
}

/// The differences between a target table and its source table: same columns (by name,
/// `skip`ped ones aside), same rows (by key when both have one, else as multisets), every
/// cell the same value.
pub fn compare_tables(src: &Table, dst: &Table, skip: &[&str], leeway: Leeway) -> Vec<String> {
    let mut out = Vec::new();
    let mut map = Vec::new();
    for (i, c) in src.columns.iter().enumerate() {
        if skip.contains(&c.name.as_str()) {
            continue;
        }
        match dst.index_of(&c.name) {
            Some(j) => map.push((i, j)),
            None => out.push(format!("column {} is missing in the target", c.name)),
        }
    }
    if src.rows.len() != dst.rows.len() {
        out.push(format!(
            "{} rows in the source, {} in the target",
            src.rows.len(),
            dst.rows.len()
        ));
    }
    let names: Vec<&str> = map
        .iter()
        .map(|&(i, _)| src.columns[i].name.as_str())
        .collect();
    let keyed = !src.key.is_empty()
        && src.key.iter().all(|&i| {
            dst.index_of(&src.columns[i].name)
                .is_some_and(|j| dst.key.contains(&j))
        });
    // A row's compared cells, in the order of `map`.
    let row_of = |r: &Vec<Cell>, src_side: bool| -> Vec<Cell> {
        map.iter()
            .map(|&(i, j)| r[if src_side { i } else { j }].clone())
            .collect()
    };
    if keyed {
        let key_pos: Vec<usize> = src.key.clone();
        let dst_rows: BTreeMap<Vec<Cell>, Vec<Cell>> = dst
            .rows
            .iter()
            .map(|r| {
                let k = key_pos
                    .iter()
                    .map(|&i| r[dst.index_of(&src.columns[i].name).unwrap_or(0)].clone())
                    .collect();
                (k, row_of(r, false))
            })
            .collect();
        for r in &src.rows {
            let k: Vec<Cell> = key_pos.iter().map(|&i| r[i].clone()).collect();
            let key_text = k
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let a = row_of(r, true);
            match dst_rows.get(&k) {
                None => out.push(format!("row ({key_text}) is missing in the target")),
                Some(b) => {
                    for ((x, y), n) in a.iter().zip(b).zip(&names) {
                        if !cells_equal(x, y, leeway) {
                            out.push(format!(
                                "row ({key_text}), column {n}: source {x}, target {y}"
                            ));
                        }
                    }
                }
            }
        }
    } else {
        // Multisets: sort both (JSON and zero dates normalized when allowed).
        let norm = |c: Cell| -> Cell {
            match c {
                Cell::Json(t) if leeway.json_as_documents => serde_json::from_slice::<Json>(&t)
                    .map(|j| Cell::Json(j.to_string().into_bytes()))
                    .unwrap_or(Cell::Json(t)),
                z if leeway.zero_dates_null && is_zero_date(&z) => Cell::Null,
                c => c,
            }
        };
        let mut a: Vec<Vec<Cell>> = src
            .rows
            .iter()
            .map(|r| row_of(r, true).into_iter().map(norm).collect())
            .collect();
        let mut b: Vec<Vec<Cell>> = dst
            .rows
            .iter()
            .map(|r| row_of(r, false).into_iter().map(norm).collect())
            .collect();
        a.sort();
        b.sort();
        let mut i = 0;
        let mut j = 0;
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x < y => {
                    out.push(format!("row {} is missing in the target", show(x)));
                    i += 1;
                }
                (Some(x), None) => {
                    out.push(format!("row {} is missing in the target", show(x)));
                    i += 1;
                }
                (_, Some(y)) => {
                    out.push(format!("row {} is extra in the target", show(y)));
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }
    out
}

fn show(r: &[Cell]) -> String {
    format!(
        "({})",
        r.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The text of a key cell in a document id (the plain value text of the README).
pub fn id_part(col: &ColumnInfo, c: &Cell) -> String {
    match c {
        Cell::Int(i) => i.to_string(),
        Cell::Decimal(d) => d.clone(),
        Cell::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Cell::DateTime(y, mo, d, h, mi, s, us) if col.data_type == "date" => {
            let _ = (h, mi, s, us);
            format!("{y:04}-{mo:02}-{d:02}")
        }
        Cell::DateTime(..) => datetime_text(c),
        other => other.to_string(),
    }
}

/// The documented id of a key: one column's text as is (with a `\` in front when it is
/// empty or starts with `\`); several columns' texts with `\` and `_` escaped by `\`,
/// joined by `_`.
pub fn expected_id(parts: &[String]) -> String {
    if parts.len() == 1 {
        let p = &parts[0];
        return if p.is_empty() || p.starts_with('\\') {
            format!("\\{p}")
        } else {
            p.clone()
        };
    }
    parts
        .iter()
        .map(|p| p.replace('\\', "\\\\").replace('_', "\\_"))
        .collect::<Vec<_>>()
        .join("_")
}

fn datetime_text(c: &Cell) -> String {
    match c {
        Cell::DateTime(y, mo, d, h, mi, s, us) => {
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if *us != 0 {
                t.push_str(&format!(".{us:06}"));
            }
            t
        }
        other => other.to_string(),
    }
}

fn decimal_precision(col: &ColumnInfo) -> u32 {
    col.column_type
        .split_once('(')
        .and_then(|(_, r)| r.split([',', ')']).next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(10)
}

/// Whether a document field holds what the README's type mapping says a cell becomes;
/// `Err` says what it should have been.
pub fn field_matches(
    col: &ColumnInfo,
    cell: &Cell,
    actual: Option<&Json>,
    leeway: Leeway,
) -> Result<(), String> {
    let actual = actual.unwrap_or(&Json::Null);
    let ok = match cell {
        Cell::Null => actual.is_null(),
        z if is_zero_date(z) && leeway.zero_dates_null => actual.is_null(),
        Cell::Int(i) if col.column_type.starts_with("tinyint(1)") => match i {
            0 => actual == &Json::Bool(false),
            1 => actual == &Json::Bool(true),
            _ => actual.as_i64() == Some(*i as i64),
        },
        Cell::Int(i) => match actual {
            Json::Number(n) => {
                n.as_i64()
                    .map(|x| x as i128)
                    .or_else(|| n.as_u64().map(|x| x as i128))
                    == Some(*i)
            }
            _ => false,
        },
        Cell::Float(bits) => {
            let want = f64::from_bits(*bits);
            actual.as_f64().is_some_and(|x| x == want)
        }
        Cell::Decimal(d) if decimal_precision(col) <= 15 => {
            match (d.parse::<f64>(), actual.as_f64()) {
                (Ok(want), Some(x)) => x == want,
                _ => false,
            }
        }
        Cell::Decimal(d) => actual.as_str() == Some(d.as_str()),
        Cell::Bytes(b) => match col.data_type.as_str() {
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                actual.as_str() == Some(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            _ => actual.as_str().map(str::as_bytes) == Some(b.as_slice()),
        },
        Cell::Json(t) => serde_json::from_slice::<Json>(t).is_ok_and(|j| &j == actual),
        Cell::DateTime(y, mo, d, ..) if col.data_type == "date" => {
            actual.as_str() == Some(format!("{y:04}-{mo:02}-{d:02}").as_str())
        }
        Cell::DateTime(..) if col.data_type == "timestamp" => {
            actual.as_str() == Some(format!("{}Z", datetime_text(cell)).as_str())
        }
        Cell::DateTime(..) => actual.as_str() == Some(datetime_text(cell).as_str()),
        Cell::Time(neg, h, m, s, us) => {
            let mut t = format!("{}{h:02}:{m:02}:{s:02}", if *neg { "-" } else { "" });
            if *us != 0 {
                t.push_str(&format!(".{us:06}"));
            }
            actual.as_str() == Some(t.as_str())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected the value of {cell}, found {actual}"))
    }
}

/// The differences between an index's documents and the source table's rows: every row a
/// document with the documented id, every column a field of the documented form, no other
/// document. `key` names the key columns (the table's, or the `key` setting's).
pub fn compare_documents(
    src: &Table,
    key: &[&str],
    docs: &BTreeMap<String, Json>,
    leeway: Leeway,
) -> Vec<String> {
    let mut out = Vec::new();
    let key_pos: Vec<usize> = key.iter().filter_map(|k| src.index_of(k)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for r in &src.rows {
        let parts: Vec<String> = key_pos
            .iter()
            .map(|&i| id_part(&src.columns[i], &r[i]))
            .collect();
        let id = expected_id(&parts);
        if !seen.insert(id.clone()) {
            out.push(format!("two rows have the id {id:?}"));
        }
        let Some(doc) = docs.get(&id) else {
            out.push(format!("document {id:?} is missing"));
            continue;
        };
        for (c, cell) in src.columns.iter().zip(r) {
            if let Err(e) = field_matches(c, cell, doc.get(&c.name), leeway) {
                out.push(format!("document {id:?}, field {}: {e}", c.name));
            }
        }
    }
    for id in docs.keys() {
        if !seen.contains(id) {
            out.push(format!("document {id:?} is extra"));
        }
    }
    out
}

//! Tables read exactly, independently of the connectors under test: `mysql_async`'s binary
//! protocol (FLOAT as its 4 bytes, DOUBLE as its 8, DECIMAL as its digits) in a session at
//! UTC, each cell in a canonical form ([`Cell`]) in which two stores' values compare equal
//! exactly when they are the same value.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Value as My;

/// One column of a table as `information_schema` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// `DATA_TYPE`, lower case (`bigint`, `longtext`, ...).
    pub data_type: String,
    /// `COLUMN_TYPE`, lower case (`bigint(20) unsigned`, ...).
    pub column_type: String,
    /// `CHARACTER_SET_NAME`, when textual.
    pub charset: Option<String>,
    /// Whether MariaDB keeps it as JSON text (a `json_valid` check).
    pub json: bool,
}

/// A cell in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    /// NULL.
    Null,
    /// Any integer (signed, unsigned, BIT, YEAR, booleans as 0/1).
    Int(i128),
    /// A float or double as the bits of the `f64` it is exactly.
    Float(u64),
    /// A decimal's digits as stored.
    Decimal(String),
    /// Text or bytes.
    Bytes(Vec<u8>),
    /// JSON as its text.
    Json(Vec<u8>),
    /// A date or date-time: year, month, day, hour, minute, second, microsecond.
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    /// A time: negative, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u32),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(b) => write!(f, "{:e} (bits {b:#018x})", f64::from_bits(*b)),
            Cell::Decimal(d) => write!(f, "{d}"),
            Cell::Bytes(b) | Cell::Json(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "0x{}", hex(b)),
            },
            Cell::DateTime(y, mo, d, h, mi, s, us) => {
                write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
            }
            Cell::Time(n, h, m, s, us) => {
                write!(f, "{}{h}:{m:02}:{s:02}.{us:06}", if *n { "-" } else { "" })
            }
        }
    }
}

/// Bytes in lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A table read whole: its columns and its rows (in primary-key order, or sorted when it
/// has no key).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The columns.
    pub columns: Vec<ColumnInfo>,
    /// The primary key's columns (positions), empty for keyless tables.
    pub key: Vec<usize>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The position of a column.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The rows by their key cells.
    pub fn by_key(&self) -> BTreeMap<Vec<Cell>, &Vec<Cell>> {
        self.rows
            .iter()
            .map(|r| (self.key.iter().map(|&i| r[i].clone()).collect(), r))
            .collect()
    }
}

/// A connection to the testkit's MariaDB at UTC.
pub async fn connect() -> mysql_async::Conn {
    let url = datatrace_testkit::mariadb().url();
    let mut c = mysql_async::Conn::from_url(url.as_str())
        .await
        .expect("connect to the test MariaDB");
    c.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("set the time zone");
    c
}

/// The columns and primary key of `db.table`.
pub async fn columns(
    c: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> (Vec<ColumnInfo>, Vec<usize>) {
    let rows: Vec<(String, String, String, Option<String>, String)> = c
        .exec(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), CHARACTER_SET_NAME, COLUMN_KEY \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .expect("information_schema.COLUMNS");
    let checks: Vec<String> = c
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .unwrap_or_default();
    let key_cols: Vec<String> = c
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (db, table),
        )
        .await
        .expect("information_schema.STATISTICS");
    let cols: Vec<ColumnInfo> = rows
        .into_iter()
        .map(|(name, data_type, column_type, charset, _)| {
            let json = data_type == "json"
                || checks
                    .iter()
                    .any(|k| k.contains("json_valid") && k.contains(&format!("`{name}`")));
            ColumnInfo {
                name,
                data_type,
                column_type,
                charset,
                json,
            }
        })
        .collect();
    let key = key_cols
        .iter()
        .filter_map(|k| cols.iter().position(|c| &c.name == k))
        .collect();
    (cols, key)
}

/// The canonical cell of a value of column `col`.
pub fn cell(col: &ColumnInfo, v: My) -> Cell {
    match v {
        My::NULL => Cell::Null,
        My::Int(i) => Cell::Int(i as i128),
        My::UInt(u) => Cell::Int(u as i128),
        My::Float(f) => Cell::Float((f as f64).to_bits()),
        My::Double(d) => Cell::Float(d.to_bits()),
        My::Date(y, mo, d, h, mi, s, us) => Cell::DateTime(y, mo, d, h, mi, s, us),
        My::Time(neg, days, h, m, s, us) => Cell::Time(neg, days * 24 + h as u32, m, s, us),
        My::Bytes(b) => match col.data_type.as_str() {
            "decimal" | "numeric" => Cell::Decimal(String::from_utf8_lossy(&b).into_owned()),
            "bit" => Cell::Int(b.iter().fold(0i128, |a, &x| (a << 8) | x as i128)),
            "float" | "double" => Cell::Float(
                String::from_utf8_lossy(&b)
                    .parse::<f64>()
                    .unwrap_or(f64::NAN)
                    .to_bits(),
            ),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" => {
                Cell::Int(String::from_utf8_lossy(&b).parse().unwrap_or(i128::MIN))
            }
            _ if col.json => Cell::Json(b),
            _ => Cell::Bytes(b),
        },
    }
}

/// Every row of `db.table`, read with the binary protocol, in key order (sorted rows for
/// keyless tables).
pub async fn read(db: &str, table: &str) -> Table {
    let mut c = connect().await;
    let (columns, key) = columns(&mut c, db, table).await;
    let rows: Vec<mysql_async::Row> = c
        .exec(
            format!(
                "SELECT * FROM `{}`.`{}`",
                db.replace('`', "``"),
                table.replace('`', "``")
            ),
            (),
        )
        .await
        .unwrap_or_else(|e| panic!("reading {db}.{table}: {e}"));
    let mut out: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .zip(&columns)
                .map(|(v, col)| cell(col, v))
                .collect()
        })
        .collect();
    if key.is_empty() {
        out.sort();
    } else {
        out.sort_by(|a, b| {
            let ka: Vec<&Cell> = key.iter().map(|&i| &a[i]).collect();
            let kb: Vec<&Cell> = key.iter().map(|&i| &b[i]).collect();
            ka.cmp(&kb)
        });
    }
    let _ = c.disconnect().await;
    Table {
        columns,
        key,
        rows: out,
    }
}

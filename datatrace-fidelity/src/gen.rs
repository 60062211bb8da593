//! Seeded generators of MySQL column types and of values at their edges, as SQL literals.
//!
//! Every type of the catalog ([`CATALOG`]) comes with a generator that favours the values
//! where copies break: integer extremes (signed and unsigned), DECIMAL(65,30) with all its
//! digits, FLOAT and DOUBLE from random bits (subnormals, huge, tiny, negative zero), BIT(64)
//! above 2^63, text with 4-byte characters, quotes, backslashes, separators and trailing
//! spaces, latin1 text, bytes with zeros, zero dates, negative and >24h TIME, DATETIME(6)
//! at the ends of the range, TIMESTAMP literals read under a session time zone, YEAR,
//! JSON with big numbers, unicode escapes and odd spacing, ENUM and SET.

use fastrand::Rng;

/// One MySQL column type of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColType {
    /// Its SQL (`BIGINT UNSIGNED`, `VARCHAR(20) CHARACTER SET latin1`).
    pub sql: &'static str,
    /// What generates its values.
    pub gen: Gen,
}

/// Value generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    /// A signed integer within `bits` bits.
    Int(u32),
    /// An unsigned integer within `bits` bits.
    UInt(u32),
    /// 0 or 1.
    Bool,
    /// A decimal with `precision` digits, `scale` after the point.
    Decimal(u32, u32),
    /// A single-precision float from random bits.
    Float,
    /// A double from random bits.
    Double,
    /// A 64-bit BIT value.
    Bit64,
    /// Text of at most this many characters (utf8mb4).
    Text(usize),
    /// Text of latin1 characters.
    Latin1(usize),
    /// Bytes, at most this many (`fixed`: exactly).
    Bytes(usize, bool),
    /// A date (zero dates when the case allows them).
    Date,
    /// A time (negative, beyond 24 h, with microseconds).
    Time,
    /// A date and time with this many fractional digits.
    DateTime(u32),
    /// A timestamp (1970-01-03 .. 2038-01-17 in any session time zone) with this many
    /// fractional digits.
    Timestamp(u32),
    /// A year.
    Year,
    /// A JSON document.
    Json,
    /// One of ENUM('a','b','c d','').
    Enum,
    /// A subset of SET('x','y','z').
    Set,
}

/// The catalog of column types the generators pick from.
pub const CATALOG: &[ColType] = &[
    ColType {
        sql: "TINYINT",
        gen: Gen::Int(8),
    },
    ColType {
        sql: "TINYINT UNSIGNED",
        gen: Gen::UInt(8),
    },
    ColType {
        sql: "SMALLINT",
        gen: Gen::Int(16),
    },
    ColType {
        sql: "MEDIUMINT",
        gen: Gen::Int(24),
    },
    ColType {
        sql: "MEDIUMINT UNSIGNED",
        gen: Gen::UInt(24),
    },
    ColType {
        sql: "INT",
        gen: Gen::Int(32),
    },
    ColType {
        sql: "INT UNSIGNED",
        gen: Gen::UInt(32),
    },
    ColType {
        sql: "BIGINT",
        gen: Gen::Int(64),
    },
    ColType {
        sql: "BIGINT UNSIGNED",
        gen: Gen::UInt(64),
    },
    ColType {
        sql: "BOOLEAN",
        gen: Gen::Bool,
    },
    ColType {
        sql: "DECIMAL(65,30)",
        gen: Gen::Decimal(65, 30),
    },
    ColType {
        sql: "DECIMAL(10,2)",
        gen: Gen::Decimal(10, 2),
    },
    ColType {
        sql: "DECIMAL(15,5)",
        gen: Gen::Decimal(15, 5),
    },
    ColType {
        sql: "DECIMAL(30,0)",
        gen: Gen::Decimal(30, 0),
    },
    ColType {
        sql: "FLOAT",
        gen: Gen::Float,
    },
    ColType {
        sql: "DOUBLE",
        gen: Gen::Double,
    },
    ColType {
        sql: "BIT(64)",
        gen: Gen::Bit64,
    },
    ColType {
        sql: "CHAR(10)",
        gen: Gen::Text(10),
    },
    ColType {
        sql: "VARCHAR(40)",
        gen: Gen::Text(40),
    },
    ColType {
        sql: "VARCHAR(20) CHARACTER SET latin1",
        gen: Gen::Latin1(20),
    },
    ColType {
        sql: "TEXT",
        gen: Gen::Text(200),
    },
    ColType {
        sql: "BINARY(8)",
        gen: Gen::Bytes(8, true),
    },
    ColType {
        sql: "VARBINARY(16)",
        gen: Gen::Bytes(16, false),
    },
    ColType {
        sql: "BLOB",
        gen: Gen::Bytes(64, false),
    },
    ColType {
        sql: "DATE",
        gen: Gen::Date,
    },
    ColType {
        sql: "TIME(6)",
        gen: Gen::Time,
    },
    ColType {
        sql: "DATETIME(6)",
        gen: Gen::DateTime(6),
    },
    ColType {
        sql: "DATETIME(3)",
        gen: Gen::DateTime(3),
    },
    ColType {
        sql: "DATETIME",
        gen: Gen::DateTime(0),
    },
    ColType {
        sql: "TIMESTAMP(6) NULL",
        gen: Gen::Timestamp(6),
    },
    ColType {
        sql: "YEAR",
        gen: Gen::Year,
    },
    ColType {
        sql: "JSON",
        gen: Gen::Json,
    },
    ColType {
        sql: "ENUM('a','b','c d','')",
        gen: Gen::Enum,
    },
    ColType {
        sql: "SET('x','y','z')",
        gen: Gen::Set,
    },
];

/// What a case allows its generators.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// Zero dates in DATE and DATETIME columns.
    pub zero_dates: bool,
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// `'text'` with `'` and `\` escaped (sessions of the generator use the default SQL mode,
/// where backslashes escape).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

const PIECES: &[&str] = &[
    "a", "B", "_", "\\", "'", "\"", "|", ":", " ", "é", "ß", "€", "🎉", "𝄞", "中", "x_y", "%",
    "\t", "0", "NULL", "\\_",
];

/// Text of at most `max` characters from pieces that break naive copies.
pub fn text(rng: &mut Rng, max: usize) -> String {
    let mut s = String::new();
    let n = rng.usize(0..=6);
    for _ in 0..n {
        let p = *pick(rng, PIECES);
        if s.chars().count() + p.chars().count() > max {
            break;
        }
        s.push_str(p);
    }
    if rng.u8(..4) == 0 && s.chars().count() < max {
        s.push(' '); // a trailing space
    }
    s
}

const LATIN1: &[&str] = &["a", "Z", "é", "ÿ", "¤", "_", " ", "ß", "\\", "'", "Æ"];

/// Text of latin1 characters.
pub fn latin1(rng: &mut Rng, max: usize) -> String {
    let mut s = String::new();
    for _ in 0..rng.usize(1..=max.min(8)) {
        s.push_str(pick::<&str>(rng, LATIN1));
    }
    s
}

fn int(rng: &mut Rng, bits: u32) -> i128 {
    let max = (1i128 << (bits - 1)) - 1;
    let min = -(1i128 << (bits - 1));
    match rng.u8(..6) {
        0 => max,
        1 => min,
        2 => 0,
        3 => -1,
        _ => rng.i128(min..=max),
    }
}

fn uint(rng: &mut Rng, bits: u32) -> u128 {
    let max = if bits == 64 {
        u64::MAX as u128
    } else {
        (1u128 << bits) - 1
    };
    match rng.u8(..6) {
        0 => max,
        1 => 0,
        2 if bits == 64 => (1u128 << 63) + rng.u128(0..1000),
        _ => rng.u128(0..=max),
    }
}

fn decimal(rng: &mut Rng, p: u32, s: u32) -> String {
    let int_digits = (p - s) as usize;
    let mut d = String::new();
    if rng.bool() {
        d.push('-');
    }
    let n = match rng.u8(..3) {
        0 => int_digits,
        _ => rng.usize(0..=int_digits),
    };
    if n == 0 {
        d.push('0');
    } else {
        d.push(char::from(b'1' + rng.u8(0..9)));
        for _ in 1..n {
            d.push(char::from(b'0' + rng.u8(0..10)));
        }
    }
    if s > 0 {
        d.push('.');
        for _ in 0..s {
            d.push(char::from(b'0' + rng.u8(0..10)));
        }
    }
    d
}

/// A finite double from random bits, or one of the edges.
pub fn double(rng: &mut Rng) -> f64 {
    let edges = [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::MIN,
        0.1,
        1e300,
        -1.5e-300,
    ];
    if rng.u8(..4) == 0 {
        return *pick(rng, &edges);
    }
    loop {
        let f = f64::from_bits(rng.u64(..));
        if f.is_finite() {
            return f;
        }
    }
}

/// A finite single-precision float from random bits, or one of the edges.
pub fn float(rng: &mut Rng) -> f32 {
    let edges = [
        0.0f32,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        f32::MIN,
        0.1,
        3.4e38,
    ];
    if rng.u8(..4) == 0 {
        return *pick(rng, &edges);
    }
    loop {
        let f = f32::from_bits(rng.u32(..));
        if f.is_finite() {
            return f;
        }
    }
}

fn date(rng: &mut Rng) -> (u32, u32, u32) {
    match rng.u8(..8) {
        0 => (1000, 1, 1),
        1 => (9999, 12, 31),
        2 => (2024, 2, 29),
        _ => (rng.u32(1000..=9999), rng.u32(1..=12), rng.u32(1..=28)),
    }
}

fn fraction(rng: &mut Rng, digits: u32) -> String {
    if digits == 0 {
        return String::new();
    }
    let v = match rng.u8(..3) {
        0 => 0,
        1 => 10u32.pow(digits) - 1,
        _ => rng.u32(0..10u32.pow(digits)),
    };
    format!(".{v:0width$}", width = digits as usize)
}

const JSON_NUMBERS: &[&str] = &[
    "18446744073709551615",
    "-9223372036854775808",
    "9007199254740993",
    "1.5e300",
    "1e-300",
    "0.1",
    "-0.0",
    "12345678901234567890.123",
    "1E+2",
    "0",
];

const JSON_STRINGS: &[&str] = &[
    r#""caf\u00e9""#,
    r#""\ud83c\udf89 party""#,
    r#""tab\tnew\nline""#,
    r#""quote \" and \\ backslash""#,
    r#""plain""#,
    r#""""#,
];

fn json_value(rng: &mut Rng, depth: u32) -> String {
    let sp = |rng: &mut Rng| if rng.bool() { " " } else { "" }.to_string();
    match rng.u8(..if depth > 2 { 4 } else { 7 }) {
        0 => pick(rng, JSON_NUMBERS).to_string(),
        1 => pick(rng, JSON_STRINGS).to_string(),
        2 => pick(rng, &["true", "false", "null"]).to_string(),
        3 => rng.i64(-1000..1000).to_string(),
        4 | 5 => {
            let n = rng.usize(0..4);
            let mut parts = Vec::new();
            for i in 0..n {
                let (a, b) = (sp(rng), sp(rng));
                parts.push(format!(
                    "\"k{i}{}\"{a}:{b}{}",
                    pick(rng, &["", "é", "_x"]),
                    json_value(rng, depth + 1)
                ));
            }
            format!("{{{}}}", parts.join(&format!(",{}", sp(rng))))
        }
        _ => {
            // Arrays of one kind (flattened mappings take any; see the README).
            let n = rng.usize(0..4);
            let kind = rng.u8(..2);
            let items: Vec<String> = (0..n)
                .map(|_| match kind {
                    0 => pick(rng, JSON_NUMBERS).to_string(),
                    _ => pick(rng, JSON_STRINGS).to_string(),
                })
                .collect();
            format!("[{}]", items.join(&format!(",{}", sp(rng))))
        }
    }
}

/// A JSON object as text, with big numbers, escapes and irregular spacing.
pub fn json(rng: &mut Rng) -> String {
    let n = rng.usize(0..4);
    let mut parts = Vec::new();
    for i in 0..n {
        parts.push(format!("\"f{i}\": {}", json_value(rng, 1)));
    }
    let pad = if rng.bool() { " " } else { "" };
    format!("{{{pad}{}{pad}}}", parts.join(", "))
}

/// A value of `gen` as an SQL literal (never NULL: the caller decides NULLs).
pub fn literal(rng: &mut Rng, gen: Gen, allow: Allow) -> String {
    match gen {
        Gen::Int(bits) => int(rng, bits).to_string(),
        Gen::UInt(bits) => uint(rng, bits).to_string(),
        Gen::Bool => rng.u8(..2).to_string(),
        Gen::Decimal(p, s) => decimal(rng, p, s),
        Gen::Float => format!("{:e}", float(rng) as f64),
        Gen::Double => format!("{:e}", double(rng)),
        Gen::Bit64 => uint(rng, 64).to_string(),
        Gen::Text(max) => quote(&text(rng, max)),
        Gen::Latin1(max) => quote(&latin1(rng, max)),
        Gen::Bytes(max, fixed) => {
            // BINARY(n) pads what is shorter with zeros; full length half the time.
            let n = if fixed && rng.bool() {
                max
            } else {
                rng.usize(0..=max)
            };
            let mut b: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            if !b.is_empty() && rng.bool() {
                b[0] = 0;
            }
            format!("X'{}'", hex(&b))
        }
        Gen::Date => {
            if allow.zero_dates && rng.u8(..6) == 0 {
                return "'0000-00-00'".into();
            }
            let (y, m, d) = date(rng);
            format!("'{y:04}-{m:02}-{d:02}'")
        }
        Gen::Time => {
            let h = match rng.u8(..4) {
                0 => 838,
                1 => rng.u32(24..838),
                _ => rng.u32(0..24),
            };
            let sign = if rng.bool() { "-" } else { "" };
            let (mi, s) = if h == 838 {
                (59, 59)
            } else {
                (rng.u32(0..60), rng.u32(0..60))
            };
            let frac = if h == 838 {
                String::new()
            } else {
                fraction(rng, 6)
            };
            format!("'{sign}{h}:{mi:02}:{s:02}{frac}'")
        }
        Gen::DateTime(digits) => {
            if allow.zero_dates && rng.u8(..8) == 0 {
                return "'0000-00-00 00:00:00'".into();
            }
            let (y, m, d) = date(rng);
            let (h, mi, s) = (rng.u32(0..24), rng.u32(0..60), rng.u32(0..60));
            format!(
                "'{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}{}'",
                fraction(rng, digits)
            )
        }
        Gen::Timestamp(digits) => {
            let (y, m, d) = match rng.u8(..5) {
                0 => (1970, 1, 3),
                1 => (2038, 1, 17),
                _ => (rng.u32(1971..2038), rng.u32(1..=12), rng.u32(1..=28)),
            };
            let (h, mi, s) = (rng.u32(0..24), rng.u32(0..60), rng.u32(0..60));
            format!(
                "'{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}{}'",
                fraction(rng, digits)
            )
        }
        Gen::Year => match rng.u8(..5) {
            0 => "1901".into(),
            1 => "2155".into(),
            2 => "0".into(),
            _ => rng.u32(1902..2155).to_string(),
        },
        Gen::Json => quote(&json(rng)),
        Gen::Enum => quote(pick::<&str>(rng, &["a", "b", "c d", ""])),
        Gen::Set => quote(pick::<&str>(rng, &["", "x", "y", "x,y", "x,y,z", "z"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_seeded() {
        let a: Vec<String> = {
            let mut r = Rng::with_seed(3);
            CATALOG
                .iter()
                .map(|c| literal(&mut r, c.gen, Allow::default()))
                .collect()
        };
        let b: Vec<String> = {
            let mut r = Rng::with_seed(3);
            CATALOG
                .iter()
                .map(|c| literal(&mut r, c.gen, Allow::default()))
                .collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn json_texts_are_valid() {
        let mut r = Rng::with_seed(9);
        for _ in 0..500 {
            let j = json(&mut r);
            serde_json::from_str::<serde_json::Value>(&j).unwrap_or_else(|e| panic!("{j}: {e}"));
        }
    }
}

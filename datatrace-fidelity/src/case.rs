//! A generated case: one table (a key shape, columns of the catalog), its first rows, and a
//! change stream (inserts, updates, key-changing updates, deletes, re-inserts of deleted
//! keys, transactions), all from one seed and all as SQL.

use std::collections::HashSet;

use fastrand::Rng;

use crate::gen::{self, quote, Allow, ColType, Gen, CATALOG};

/// The shapes of keys a case can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// `id INT`.
    Int,
    /// `id BIGINT UNSIGNED`, values above 2^63.
    UBig,
    /// `k VARCHAR(40)` with separators, escapes, 4-byte characters and trailing spaces.
    Str,
    /// `(a INT, b VARCHAR(20))`, `b` full of separators.
    Composite,
    /// `(who VARCHAR latin1, at DATETIME(3), amount DECIMAL(10,2))`.
    CompositeTyped,
    /// No key at all, full-row duplicates: MySQL -> MySQL only (an index needs a key).
    Keyless,
    /// No key in the table; `u INT NOT NULL` (unique values) named by the `key` setting.
    KeyedBySetting,
}

/// All shapes, in the order seeds cycle through them.
pub const SHAPES: [KeyShape; 7] = [
    KeyShape::Int,
    KeyShape::Composite,
    KeyShape::Str,
    KeyShape::Keyless,
    KeyShape::CompositeTyped,
    KeyShape::UBig,
    KeyShape::KeyedBySetting,
];

/// A column of the case's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Col {
    /// Its name.
    pub name: String,
    /// Its SQL type (with NOT NULL / COLLATE).
    pub sql: String,
    /// What generates its values.
    pub gen: Gen,
    /// Whether NULLs are generated.
    pub nullable: bool,
}

/// A generated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The seed it was generated from.
    pub seed: u64,
    /// Its key shape.
    pub shape: KeyShape,
    /// Key columns (declared as the primary key, or named by `key` for
    /// [`KeyShape::KeyedBySetting`]), then the other columns.
    pub columns: Vec<Col>,
    /// How many leading columns are the key (0 for keyless tables).
    pub key_len: usize,
    /// Whether DATE and DATETIME values include zero dates.
    pub zero_dates: bool,
    /// The first rows, as SQL statements.
    pub initial: Vec<String>,
    /// The change stream, as SQL statements (some are transactions).
    pub changes: Vec<String>,
}

/// A catalog type and its index in the catalog.
type Indexed = (usize, ColType);

/// Session time zones statements run under (TIMESTAMP literals are read in them).
const ZONES: &[&str] = &["+00:00", "+05:30", "-08:00", "+13:00", "-12:00", "+01:00"];

struct Keys {
    shape: KeyShape,
    /// Keys in use (their collision form) and their literals.
    live: Vec<Vec<String>>,
    used: HashSet<String>,
    deleted: Vec<Vec<String>>,
}

impl Keys {
    /// The form under which the table's collations make two keys equal (binary collations
    /// with PAD SPACE: trailing spaces do not count; decimals by value).
    fn collision(&self, lits: &[String]) -> String {
        lits.iter()
            .map(|l| {
                let t = l.trim_end_matches('\'').trim_start_matches('\'');
                let t = t.trim_end_matches(' ');
                if l.starts_with('\'') {
                    t.to_string()
                } else {
                    // numbers: by value
                    t.parse::<f64>()
                        .map(|f| f.to_string())
                        .unwrap_or_else(|_| t.into())
                }
            })
            .collect::<Vec<_>>()
            .join("\u{1}")
    }

    fn fresh(&mut self, rng: &mut Rng) -> Option<Vec<String>> {
        for _ in 0..50 {
            let lits = key_literals(rng, self.shape);
            let c = self.collision(&lits);
            if !self.used.contains(&c) {
                self.used.insert(c);
                return Some(lits);
            }
        }
        None
    }

    fn release(&mut self, lits: &[String]) {
        let c = self.collision(lits);
        self.used.remove(&c);
    }
}

fn key_literals(rng: &mut Rng, shape: KeyShape) -> Vec<String> {
    match shape {
        KeyShape::Int | KeyShape::KeyedBySetting => {
            let v = match rng.u8(..5) {
                0 => i32::MAX as i64 - rng.i64(0..3),
                1 => i32::MIN as i64 + rng.i64(0..3),
                _ => rng.i64(-1000..1000),
            };
            vec![v.to_string()]
        }
        KeyShape::UBig => {
            let v = match rng.u8(..3) {
                0 => u64::MAX - rng.u64(0..3),
                1 => (1u64 << 63) + rng.u64(0..1000),
                _ => rng.u64(0..1000),
            };
            vec![v.to_string()]
        }
        KeyShape::Str => vec![quote(&gen::text(rng, 40))],
        KeyShape::Composite => vec![rng.i64(-3..4).to_string(), quote(&gen::text(rng, 20))],
        KeyShape::CompositeTyped => {
            let who = gen::latin1(rng, 20);
            let at = format!(
                "2024-0{}-1{} 0{}:00:00.{:03}",
                rng.u8(1..10),
                rng.u8(0..10),
                rng.u8(0..10),
                rng.u16(0..1000)
            );
            let amount = format!("{}.{:02}", rng.i32(-50..50), rng.u8(0..100));
            vec![quote(&who), quote(&at), amount]
        }
        KeyShape::Keyless => Vec::new(),
    }
}

fn key_columns(shape: KeyShape) -> Vec<Col> {
    let col = |name: &str, sql: &str, gen| Col {
        name: name.into(),
        sql: sql.into(),
        gen,
        nullable: false,
    };
    match shape {
        KeyShape::Int => vec![col("id", "INT NOT NULL", Gen::Int(32))],
        KeyShape::UBig => vec![col("id", "BIGINT UNSIGNED NOT NULL", Gen::UInt(64))],
        KeyShape::Str => vec![col(
            "k",
            "VARCHAR(40) COLLATE utf8mb4_bin NOT NULL",
            Gen::Text(40),
        )],
        KeyShape::Composite => vec![
            col("a", "INT NOT NULL", Gen::Int(32)),
            col(
                "b",
                "VARCHAR(20) COLLATE utf8mb4_bin NOT NULL",
                Gen::Text(20),
            ),
        ],
        KeyShape::CompositeTyped => vec![
            col(
                "who",
                "VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL",
                Gen::Latin1(20),
            ),
            col("at", "DATETIME(3) NOT NULL", Gen::DateTime(3)),
            col("amount", "DECIMAL(10,2) NOT NULL", Gen::Decimal(10, 2)),
        ],
        KeyShape::KeyedBySetting => vec![col("u", "INT NOT NULL", Gen::Int(32))],
        KeyShape::Keyless => Vec::new(),
    }
}

impl Case {
    /// The case of `seed`.
    pub fn generate(seed: u64) -> Case {
        let mut rng = Rng::with_seed(seed);
        let shape = SHAPES[(seed % SHAPES.len() as u64) as usize];
        // Odd seeds always allow zero dates (so the CI set has them), others now and then.
        let zero_dates = seed % 2 == 1 || rng.u8(..4) == 0;
        let allow = Allow { zero_dates };
        let mut columns = key_columns(shape);
        let key_len = columns.len();
        if shape == KeyShape::Keyless {
            columns.push(Col {
                name: "u".into(),
                sql: "INT NOT NULL".into(),
                gen: Gen::Int(8),
                nullable: false,
            });
        }
        // Every catalog type whose index is the seed modulo the number of shapes, then
        // others at random: any run of that many consecutive seeds (the CI set) covers the
        // whole catalog.
        let stride = SHAPES.len() as u64;
        let (mut types, mut others): (Vec<Indexed>, Vec<Indexed>) = CATALOG
            .iter()
            .copied()
            .enumerate()
            .partition(|(i, _)| *i as u64 % stride == seed % stride);
        rng.shuffle(&mut others);
        let more = rng.usize(5..11).saturating_sub(types.len());
        types.extend(others.into_iter().take(more));
        rng.shuffle(&mut types);
        for (i, (_, t)) in types.into_iter().enumerate() {
            columns.push(Col {
                name: format!("c{i}"),
                sql: t.sql.to_string(),
                gen: t.gen,
                nullable: rng.u8(..4) != 0,
            });
        }
        let mut keys = Keys {
            shape,
            live: Vec::new(),
            used: HashSet::new(),
            deleted: Vec::new(),
        };
        let mut case = Case {
            seed,
            shape,
            columns,
            key_len,
            zero_dates,
            initial: Vec::new(),
            changes: Vec::new(),
        };
        let rows = rng.usize(8..30);
        let mut values = Vec::new();
        for _ in 0..rows {
            if let Some(v) = case.new_row(&mut rng, &mut keys, allow) {
                values.push(v);
            }
        }
        case.initial.push(case.insert(&mut rng, &values));
        let ops = rng.usize(10..30);
        for _ in 0..ops {
            let stmt = case.change(&mut rng, &mut keys, allow);
            case.changes.push(stmt);
        }
        case
    }

    /// The key columns' names.
    pub fn key_names(&self) -> Vec<&str> {
        self.columns[..self.key_len]
            .iter()
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Whether the table declares a primary key.
    pub fn declares_key(&self) -> bool {
        !matches!(self.shape, KeyShape::Keyless | KeyShape::KeyedBySetting)
    }

    /// `CREATE TABLE t (...)`.
    pub fn create_sql(&self) -> String {
        let mut cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let null = if c.nullable || c.sql.contains("NOT NULL") || c.sql.ends_with(" NULL") {
                    ""
                } else {
                    " NOT NULL"
                };
                format!("`{}` {}{null}", c.name, c.sql)
            })
            .collect();
        if self.declares_key() {
            let k: Vec<String> = self.key_names().iter().map(|n| format!("`{n}`")).collect();
            cols.push(format!("PRIMARY KEY ({})", k.join(", ")));
        }
        format!("CREATE TABLE t ({})", cols.join(", "))
    }

    /// The literals of a new row, with a fresh key (`None` when no fresh key was found).
    fn new_row(&self, rng: &mut Rng, keys: &mut Keys, allow: Allow) -> Option<Vec<String>> {
        let key = match self.shape {
            KeyShape::Keyless => Vec::new(),
            _ => keys.fresh(rng)?,
        };
        keys.live.push(key.clone());
        let mut row = key;
        for c in &self.columns[self.key_len..] {
            row.push(self.value(rng, c, allow));
        }
        Some(row)
    }

    fn value(&self, rng: &mut Rng, c: &Col, allow: Allow) -> String {
        if self.shape == KeyShape::Keyless && c.name == "u" {
            // Few distinct values: changes find rows by them, duplicates abound.
            return rng.i64(-3..4).to_string();
        }
        if c.nullable && rng.u8(..6) == 0 {
            "NULL".into()
        } else {
            gen::literal(rng, c.gen, allow)
        }
    }

    fn zone(rng: &mut Rng) -> String {
        format!("SET time_zone = '{}'", ZONES[rng.usize(..ZONES.len())])
    }

    fn insert(&self, rng: &mut Rng, rows: &[Vec<String>]) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        let tuples: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
        format!(
            "{}; INSERT INTO t ({}) VALUES {};",
            Self::zone(rng),
            names.join(", "),
            tuples.join(", ")
        )
    }

    /// `WHERE` for a key (for keyless tables: one row of this `u`, `LIMIT 1` added).
    fn where_key(&self, key: &[String]) -> String {
        self.columns[..self.key_len]
            .iter()
            .zip(key)
            .map(|(c, l)| format!("`{}` = {l}", c.name))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// One change (or a transaction of a few).
    fn change(&self, rng: &mut Rng, keys: &mut Keys, allow: Allow) -> String {
        if rng.u8(..6) == 0 {
            let n = rng.usize(2..5);
            let parts: Vec<String> = (0..n).map(|_| self.one_change(rng, keys, allow)).collect();
            return format!("BEGIN; {} COMMIT;", parts.join(" "));
        }
        self.one_change(rng, keys, allow)
    }

    fn one_change(&self, rng: &mut Rng, keys: &mut Keys, allow: Allow) -> String {
        if self.shape == KeyShape::Keyless {
            return self.keyless_change(rng, keys, allow);
        }
        let pick = |rng: &mut Rng, keys: &Keys| -> Option<usize> {
            (!keys.live.is_empty()).then(|| rng.usize(..keys.live.len()))
        };
        match (rng.u8(..10), pick(rng, keys)) {
            // Insert (a re-insert of a deleted key when there is one).
            (0..=1, _) | (_, None) => {
                if !keys.deleted.is_empty() && rng.bool() {
                    let key = keys.deleted.remove(rng.usize(..keys.deleted.len()));
                    let c = keys.collision(&key);
                    if keys.used.insert(c) {
                        keys.live.push(key.clone());
                        let mut row = key;
                        for c in &self.columns[self.key_len..] {
                            row.push(self.value(rng, c, allow));
                        }
                        return self.insert(rng, &[row]);
                    }
                }
                let n = rng.usize(1..4);
                let rows: Vec<Vec<String>> = (0..n)
                    .filter_map(|_| self.new_row(rng, keys, allow))
                    .collect();
                if rows.is_empty() {
                    return "DO 0;".into();
                }
                self.insert(rng, &rows)
            }
            // Update values.
            (2..=5, Some(i)) => {
                let mut sets = Vec::new();
                for c in &self.columns[self.key_len..] {
                    if rng.bool() {
                        sets.push(format!("`{}` = {}", c.name, self.value(rng, c, allow)));
                    }
                }
                if sets.is_empty() {
                    return "DO 0;".into();
                }
                format!(
                    "{}; UPDATE t SET {} WHERE {};",
                    Self::zone(rng),
                    sets.join(", "),
                    self.where_key(&keys.live[i])
                )
            }
            // Update the key (and maybe values).
            (6..=7, Some(i)) => {
                let Some(new) = keys.fresh(rng) else {
                    return "DO 0;".into();
                };
                let old = std::mem::replace(&mut keys.live[i], new.clone());
                keys.release(&old);
                let mut sets: Vec<String> = self.columns[..self.key_len]
                    .iter()
                    .zip(&new)
                    .map(|(c, l)| format!("`{}` = {l}", c.name))
                    .collect();
                if let Some(c) = self.columns[self.key_len..].first().filter(|_| rng.bool()) {
                    sets.push(format!("`{}` = {}", c.name, self.value(rng, c, allow)));
                }
                format!(
                    "{}; UPDATE t SET {} WHERE {};",
                    Self::zone(rng),
                    sets.join(", "),
                    self.where_key(&old)
                )
            }
            // Delete.
            (_, Some(i)) => {
                let key = keys.live.remove(i);
                keys.release(&key);
                let stmt = format!("DELETE FROM t WHERE {};", self.where_key(&key));
                keys.deleted.push(key);
                stmt
            }
        }
    }

    /// Changes of a table without key: rows found by `u` (not unique), one at a time, as
    /// MySQL replication finds them (by all their values).
    fn keyless_change(&self, rng: &mut Rng, keys: &mut Keys, allow: Allow) -> String {
        let u = rng.i64(-3..4);
        match rng.u8(..6) {
            0 | 1 => {
                let n = rng.usize(1..4);
                let rows: Vec<Vec<String>> = (0..n)
                    .filter_map(|_| self.new_row(rng, keys, allow))
                    .collect();
                let mut rows = rows;
                // Full-row duplicates.
                if let Some(first) = rows.first().cloned() {
                    if rng.bool() {
                        rows.push(first);
                    }
                }
                self.insert(rng, &rows)
            }
            2 | 3 => {
                let mut sets = Vec::new();
                for c in &self.columns[1..] {
                    if rng.bool() {
                        sets.push(format!("`{}` = {}", c.name, self.value(rng, c, allow)));
                    }
                }
                if sets.is_empty() {
                    return "DO 0;".into();
                }
                format!(
                    "{}; UPDATE t SET {} WHERE u = {u} LIMIT 1;",
                    Self::zone(rng),
                    sets.join(", ")
                )
            }
            _ => format!("DELETE FROM t WHERE u = {u} LIMIT 1;"),
        }
    }

    /// One line describing the case (for reproducers and logs).
    pub fn describe(&self) -> String {
        format!(
            "seed {} ({:?} key, {} columns: {}; {} change statements{})",
            self.seed,
            self.shape,
            self.columns.len(),
            self.columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.sql))
                .collect::<Vec<_>>()
                .join(", "),
            self.changes.len(),
            if self.zero_dates { ", zero dates" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_seeded_and_cover_every_shape() {
        let a = Case::generate(42);
        let b = Case::generate(42);
        assert_eq!(a.changes, b.changes);
        assert_eq!(a.create_sql(), b.create_sql());
        let shapes: HashSet<String> = (0..7)
            .map(|s| format!("{:?}", Case::generate(s).shape))
            .collect();
        assert_eq!(shapes.len(), 7);
    }
}

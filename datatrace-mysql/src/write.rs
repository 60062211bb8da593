//! Statement building for the sink: multi-row `INSERT` / upsert / `REPLACE` and
//! `DELETE ... WHERE key IN`, cut to stay under a byte limit, in record order.

use std::sync::Arc;

use datatrace_core::{DataType, Op, Record, Schema, Value};

use crate::config::WriteMode;
use crate::sql::{ident, push_ident};
use crate::types::write_literal;

/// What to do with one record (or the before-image of a key-changing update).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Write the row with the configured mode.
    Write,
    /// Delete the row with this key.
    Delete(Vec<Value>),
    /// A table without a key: delete one row equal to these values in every column.
    DeleteRow(Vec<Value>),
    /// A table without a key: change one row equal to these values in every column into
    /// the record's values.
    UpdateRow(Vec<Value>),
}

/// One statement and the records (indices into the batch) it covers.
#[derive(Debug)]
pub(crate) struct Statement {
    pub sql: String,
    /// The batch records the statement covers (for diagnostics).
    #[allow(dead_code)]
    pub records: Vec<usize>,
}

/// The actions for a record, in order: a key-changing update deletes the old key first.
pub(crate) fn actions(r: &Record) -> Vec<Action> {
    let key = |vals: &[Value]| -> Vec<Value> {
        r.schema
            .primary_key()
            .iter()
            .map(|&i| vals.get(i).cloned().unwrap_or(Value::Null))
            .collect()
    };
    if !r.has_key() {
        // As MySQL replication does without a key: the row is found by all its values.
        return match (r.op, &r.before) {
            (Op::Delete, _) => vec![Action::DeleteRow(r.values.clone())],
            (Op::Update, Some(b)) => vec![Action::UpdateRow(b.clone())],
            _ => vec![Action::Write],
        };
    }
    match r.op {
        Op::Delete => vec![Action::Delete(key(&r.values))],
        Op::Update => match &r.before {
            Some(b) if r.has_key() && key(b) != key(&r.values) => {
                vec![Action::Delete(key(b)), Action::Write]
            }
            _ => vec![Action::Write],
        },
        Op::Read | Op::Insert => vec![Action::Write],
    }
}

/// `INSERT INTO t (cols) VALUES ` for a mode.
pub(crate) fn insert_head(mode: WriteMode, table: &str, schema: &Schema) -> String {
    let verb = match mode {
        WriteMode::Insert | WriteMode::Upsert => "INSERT INTO",
        WriteMode::Replace => "REPLACE INTO",
        WriteMode::InsertIgnore => "INSERT IGNORE INTO",
    };
    let mut s = format!("{verb} {table} (");
    for (i, c) in schema.columns().iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        push_ident(&mut s, &c.name);
    }
    s.push_str(") VALUES ");
    s
}

/// ` ON DUPLICATE KEY UPDATE c = VALUES(c), ...` for upserts, empty otherwise.
pub(crate) fn insert_tail(mode: WriteMode, schema: &Schema) -> String {
    if mode != WriteMode::Upsert {
        return String::new();
    }
    let cols: Vec<String> = schema
        .columns()
        .iter()
        .map(|c| {
            let q = ident(&c.name);
            format!("{q} = VALUES({q})")
        })
        .collect();
    format!(" ON DUPLICATE KEY UPDATE {}", cols.join(", "))
}

/// `(v1, v2, ...)`.
pub(crate) fn row_tuple(values: &[Value]) -> Result<String, String> {
    let mut s = String::with_capacity(values.len() * 8 + 2);
    s.push('(');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write_literal(&mut s, v).map_err(|e| e.0)?;
    }
    s.push(')');
    Ok(s)
}

/// `DELETE FROM t WHERE k IN (...)` or, for composite keys, `WHERE (a = .. AND b = ..) OR ..`.
pub(crate) fn delete_head(table: &str) -> String {
    format!("DELETE FROM {table} WHERE ")
}

/// One key's condition term.
pub(crate) fn key_term(key_cols: &[String], key: &[Value]) -> Result<String, String> {
    let mut s = String::new();
    if key_cols.len() == 1 {
        write_literal(&mut s, &key[0]).map_err(|e| e.0)?;
        return Ok(s);
    }
    s.push('(');
    for (i, (c, v)) in key_cols.iter().zip(key).enumerate() {
        if i > 0 {
            s.push_str(" AND ");
        }
        push_ident(&mut s, c);
        if v.is_null() {
            s.push_str(" IS NULL");
        } else {
            s.push_str(" = ");
            write_literal(&mut s, v).map_err(|e| e.0)?;
        }
    }
    s.push(')');
    Ok(s)
}

/// `<column> <=> <value>` for every column, exact: text compared as its UTF-8 bytes (no
/// collation folds case or trailing spaces), JSON of MySQL's own type as JSON.
pub(crate) fn row_match(schema: &Schema, values: &[Value]) -> Result<String, String> {
    let mut s = String::new();
    for (i, (c, v)) in schema.columns().iter().zip(values).enumerate() {
        if i > 0 {
            s.push_str(" AND ");
        }
        let text_column = matches!(c.data_type, DataType::String | DataType::Json);
        match v {
            // Text compared as its bytes (a zero date kept as text in a date column compares
            // as a date).
            Value::String(_) if text_column => {
                s.push_str("CAST(CONVERT(");
                push_ident(&mut s, &c.name);
                s.push_str(" USING utf8mb4) AS BINARY) <=> CAST(");
                write_literal(&mut s, v).map_err(|e| e.0)?;
                s.push_str(" AS BINARY)");
            }
            Value::Json(_) => {
                push_ident(&mut s, &c.name);
                s.push_str(" <=> CAST(");
                write_literal(&mut s, v).map_err(|e| e.0)?;
                s.push_str(" AS JSON)");
            }
            _ => {
                push_ident(&mut s, &c.name);
                s.push_str(" <=> ");
                write_literal(&mut s, v).map_err(|e| e.0)?;
            }
        }
    }
    if s.is_empty() {
        s.push_str("FALSE");
    }
    Ok(s)
}

/// `DELETE FROM t WHERE <every column matches> LIMIT 1`.
pub(crate) fn delete_row(table: &str, schema: &Schema, values: &[Value]) -> Result<String, String> {
    Ok(format!(
        "DELETE FROM {table} WHERE {} LIMIT 1",
        row_match(schema, values)?
    ))
}

/// `UPDATE t SET c = v, .. WHERE <every column matches the before-image> LIMIT 1`.
pub(crate) fn update_row(
    table: &str,
    schema: &Schema,
    before: &[Value],
    after: &[Value],
) -> Result<String, String> {
    let mut set = String::new();
    for (i, (c, v)) in schema.columns().iter().zip(after).enumerate() {
        if i > 0 {
            set.push_str(", ");
        }
        push_ident(&mut set, &c.name);
        set.push_str(" = ");
        write_literal(&mut set, v).map_err(|e| e.0)?;
    }
    Ok(format!(
        "UPDATE {table} SET {set} WHERE {} LIMIT 1",
        row_match(schema, before)?
    ))
}

/// Accumulates rows into statements no larger than `limit` bytes.
pub(crate) struct Builder {
    limit: usize,
    pub statements: Vec<Statement>,
    current: Option<Open>,
}

struct Open {
    group: Group,
    sql: String,
    tail: String,
    records: Vec<usize>,
    rows: usize,
}

#[derive(Clone)]
pub(crate) struct Group {
    pub table: String,
    pub delete: bool,
    pub mode: WriteMode,
    pub schema: Arc<Schema>,
}

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        self.delete == other.delete
            && self.mode == other.mode
            && self.table == other.table
            && (Arc::ptr_eq(&self.schema, &other.schema) || self.schema == other.schema)
    }
}

impl Builder {
    pub fn new(limit: usize) -> Self {
        Builder {
            limit,
            statements: Vec::new(),
            current: None,
        }
    }

    /// Adds a row (`piece` is a tuple for writes, a key term for deletes). Returns `false`
    /// when the row alone is above the limit.
    pub fn push(&mut self, group: &Group, piece: &str, record: usize) -> bool {
        let mode = group.mode;
        let same = self.current.as_ref().is_some_and(|o| {
            o.group == *group && o.sql.len() + piece.len() + 4 + o.tail.len() <= self.limit
        });
        if !same {
            self.close();
            let (head, tail) = if group.delete {
                let key_cols = group.schema.primary_key_names();
                let head = if key_cols.len() == 1 {
                    format!("{}{} IN (", delete_head(&group.table), ident(key_cols[0]))
                } else {
                    delete_head(&group.table)
                };
                let tail = if key_cols.len() == 1 {
                    ")".to_string()
                } else {
                    String::new()
                };
                (head, tail)
            } else {
                (
                    insert_head(mode, &group.table, &group.schema),
                    insert_tail(mode, &group.schema),
                )
            };
            if head.len() + piece.len() + tail.len() > self.limit {
                return false;
            }
            self.current = Some(Open {
                group: group.clone(),
                sql: head,
                tail,
                records: Vec::new(),
                rows: 0,
            });
        }
        let o = self.current.as_mut().expect("opened above");
        if o.rows > 0 {
            o.sql
                .push_str(if group.delete && group.schema.primary_key().len() > 1 {
                    " OR "
                } else {
                    ","
                });
        }
        o.sql.push_str(piece);
        o.rows += 1;
        if o.records.last() != Some(&record) {
            o.records.push(record);
        }
        true
    }

    /// Adds a statement of its own (a keyless row's delete or update), after the one being
    /// built. `Err` with its length when it is above the limit.
    pub fn single(&mut self, sql: String, record: usize) -> Result<(), usize> {
        self.close();
        if sql.len() > self.limit {
            return Err(sql.len());
        }
        self.statements.push(Statement {
            sql,
            records: vec![record],
        });
        Ok(())
    }

    /// Ends the statement being built.
    pub fn close(&mut self) {
        if let Some(mut o) = self.current.take() {
            o.sql.push_str(&o.tail);
            self.statements.push(Statement {
                sql: o.sql,
                records: o.records,
            });
        }
    }
}

/// The column a server error message names: `column 'c'`, ``column `db`.`t`.`c` ``,
/// `Column 'c' cannot be null`.
pub(crate) fn column_in_message(msg: &str) -> Option<String> {
    let lower = msg.to_ascii_lowercase();
    let at = lower.find("column ")? + "column ".len();
    let rest = &msg[at..];
    if let Some(r) = rest.strip_prefix('\'') {
        return r.split_once('\'').map(|(c, _)| c.to_string());
    }
    if rest.starts_with('`') {
        // `db`.`t`.`c` : the last quoted part.
        let end = rest.find(" at row").unwrap_or(rest.len());
        let quoted = rest[..end].trim();
        return quoted
            .rsplit("`.`")
            .next()
            .map(|c| c.trim_matches('`').replace("``", "`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use datatrace_core::{Column, DataType};

    fn schema(key: &[&str]) -> Arc<Schema> {
        Arc::new(
            Schema::new(
                "t",
                vec![
                    Column::new("a", DataType::Int),
                    Column::new("b", DataType::String),
                ],
            )
            .with_primary_key(key)
            .unwrap(),
        )
    }

    #[test]
    fn builds_upserts_under_the_limit() {
        let s = schema(&["a"]);
        let g = Group {
            table: "`d`.`t`".into(),
            delete: false,
            mode: WriteMode::Upsert,
            schema: s.clone(),
        };
        let mut b = Builder::new(120);
        for i in 0..5 {
            let t = row_tuple(&[Value::Int(i), Value::from("it's")]).unwrap();
            assert!(b.push(&g, &t, i as usize));
        }
        b.close();
        assert!(b.statements.len() > 1);
        for st in &b.statements {
            assert!(st.sql.len() <= 120, "{}", st.sql);
        }
        assert_eq!(
            b.statements[0].sql,
            "INSERT INTO `d`.`t` (`a`, `b`) VALUES (0,'it''s') ON DUPLICATE KEY UPDATE `a` = VALUES(`a`), `b` = VALUES(`b`)"
        );
        let all: Vec<usize> = b
            .statements
            .iter()
            .flat_map(|s| s.records.clone())
            .collect();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        let mut tiny = Builder::new(10);
        assert!(!tiny.push(&g, "(1,'x')", 0));
    }

    #[test]
    fn builds_deletes() {
        let g = Group {
            table: "`t`".into(),
            delete: true,
            mode: WriteMode::Upsert,
            schema: schema(&["a"]),
        };
        let mut b = Builder::new(1000);
        b.push(&g, "1", 0);
        b.push(&g, "2", 1);
        b.close();
        assert_eq!(b.statements[0].sql, "DELETE FROM `t` WHERE `a` IN (1,2)");
        let g = Group {
            table: "`t`".into(),
            delete: true,
            mode: WriteMode::Upsert,
            schema: schema(&["a", "b"]),
        };
        let term = key_term(
            &["a".into(), "b".into()],
            &[Value::Int(1), Value::from("x")],
        )
        .unwrap();
        let mut b = Builder::new(1000);
        b.push(&g, &term, 0);
        b.push(&g, &term, 1);
        b.close();
        assert_eq!(
            b.statements[0].sql,
            "DELETE FROM `t` WHERE (`a` = 1 AND `b` = 'x') OR (`a` = 1 AND `b` = 'x')"
        );
    }

    #[test]
    fn key_changing_updates_delete_first() {
        let s = schema(&["a"]);
        let mut r = Record::new(Op::Update, s, vec![Value::Int(2), Value::from("x")]);
        r.before = Some(vec![Value::Int(1), Value::from("x")]);
        assert_eq!(
            actions(&r),
            vec![Action::Delete(vec![Value::Int(1)]), Action::Write]
        );
    }

    #[test]
    fn finds_columns_in_messages() {
        assert_eq!(
            column_in_message("Data too long for column 'name' at row 3").as_deref(),
            Some("name")
        );
        assert_eq!(
            column_in_message("Incorrect integer value: 'x' for column `db`.`t`.`n` at row 1")
                .as_deref(),
            Some("n")
        );
        assert_eq!(
            column_in_message("Column 'c' cannot be null").as_deref(),
            Some("c")
        );
        assert_eq!(
            column_in_message("Duplicate entry '1' for key 'PRIMARY'"),
            None
        );
    }
}

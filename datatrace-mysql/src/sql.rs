//! Building blocks of SQL text: quoted identifiers and keyset conditions.
//!
//! Identifiers are always quoted with backticks (a backtick inside is doubled); values from
//! data go through parameters or [`crate::types::write_literal`], never pasted raw.

use datatrace_core::Value;

/// `` `name` `` with inner backticks doubled.
pub fn ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    push_ident(&mut s, name);
    s
}

/// Appends `` `name` `` to `out`.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
}

/// `` `db`.`table` ``.
pub fn table_ref(db: &str, table: &str) -> String {
    format!("{}.{}", ident(db), ident(table))
}

/// A column list: `` `a`, `b` ``.
pub fn column_list<S: AsRef<str>>(cols: &[S]) -> String {
    cols.iter()
        .map(|c| ident(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The condition "key > bound" for a (possibly composite) key, expanded into
/// `(a > ? OR (a = ? AND b > ?))` (which every MySQL and MariaDB version turns into a range
/// scan), with the parameter values in placeholder order.
pub fn key_after(cols: &[String], bound: &[Value]) -> (String, Vec<Value>) {
    key_cmp(cols, bound, ">", ">")
}

/// The condition "key <= bound", expanded like [`key_after`].
pub fn key_at_most(cols: &[String], bound: &[Value]) -> (String, Vec<Value>) {
    key_cmp(cols, bound, "<", "<=")
}

fn key_cmp(cols: &[String], bound: &[Value], op: &str, last_op: &str) -> (String, Vec<Value>) {
    let k = cols.len().min(bound.len());
    let mut terms = Vec::with_capacity(k);
    let mut params = Vec::new();
    for i in 0..k {
        let mut t = Vec::with_capacity(i + 1);
        for j in 0..i {
            t.push(format!("{} = ?", ident(&cols[j])));
            params.push(bound[j].clone());
        }
        let o = if i + 1 == k { last_op } else { op };
        t.push(format!("{} {o} ?", ident(&cols[i])));
        params.push(bound[i].clone());
        terms.push(if t.len() == 1 {
            t.pop().unwrap_or_default()
        } else {
            format!("({})", t.join(" AND "))
        });
    }
    (format!("({})", terms.join(" OR ")), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(table_ref("d b", "t"), "`d b`.`t`");
        assert_eq!(column_list(&["x", "y"]), "`x`, `y`");
    }

    #[test]
    fn keyset_conditions() {
        let cols = vec!["a".to_string(), "b".to_string()];
        let (sql, p) = key_after(&cols, &[Value::Int(1), Value::from("x")]);
        assert_eq!(sql, "(`a` > ? OR (`a` = ? AND `b` > ?))");
        assert_eq!(p, vec![Value::Int(1), Value::Int(1), Value::from("x")]);
        let (sql, _) = key_at_most(&cols, &[Value::Int(1), Value::from("x")]);
        assert_eq!(sql, "(`a` < ? OR (`a` = ? AND `b` <= ?))");
        let (sql, p) = key_after(&cols[..1], &[Value::Int(9)]);
        assert_eq!(sql, "(`a` > ?)");
        assert_eq!(p.len(), 1);
    }
}

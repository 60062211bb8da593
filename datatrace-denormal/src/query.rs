//! The SQL of document builds: one statement per relation per batch.
//!
//! - Tops (roots, child documents): a page in key order (`key > last AND key <= hi ORDER BY
//!   key LIMIT n`), or rows by key (`key IN (..)`).
//! - A relation for a batch of parent rows: the related rows of all of them in one
//!   statement, each row headed by the values it is matched to its parent by. When every
//!   link column is an integer the related table is read alone (`fk IN (parent values)`,
//!   a `many_to_one` row once however many parents share it); otherwise the parent table
//!   is joined (`FROM parent p JOIN related c ON c.fk = p.ref WHERE p.key IN (..)`), so
//!   that the server's collation decides which rows match, exactly as a SQL join does, and
//!   rows are matched to parents by the parent's key.
//! - Related rows come in `order_by` then key order (array elements keep it).
//!
//! `IN` lists are padded to a power of two (by repeating their last value) so that the
//! prepared statements stay few, and cut into statements of at most [`MAX_IN`] values.

use datatrace_core::Value;
use datatrace_mysql::sql::{ident, key_after, key_at_most, table_ref};
use datatrace_mysql::types::ColumnKind;
use datatrace_mysql::TableInfo;

use crate::definition::{Link, Node};

/// Values in one `IN` list at most.
pub const MAX_IN: usize = 2048;

/// A statement and its parameters, and how to read its result columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL.
    pub sql: String,
    /// Parameters, in placeholder order.
    pub params: Vec<Value>,
    /// Leading result columns that match rows to parents (relations only).
    pub match_width: usize,
}

fn qualified(alias: &str, table: &TableInfo, cols: &[usize]) -> Vec<String> {
    cols.iter()
        .map(|&c| {
            format!(
                "{}.{}",
                ident(alias),
                ident(&table.schema.columns()[c].name)
            )
        })
        .collect()
}

/// `a IN (?, ..)` or `(a, b) IN ((?, ?), ..)` for `keys` (padded to a power of two).
pub fn in_list(cols: &[String], keys: &[Vec<Value>]) -> (String, Vec<Value>) {
    let n = keys.len().max(1).next_power_of_two();
    let mut params = Vec::with_capacity(n * cols.len());
    let one = if cols.len() == 1 {
        "?".to_string()
    } else {
        format!("({})", vec!["?"; cols.len()].join(", "))
    };
    let mut sql = if cols.len() == 1 {
        format!("{} IN (", cols[0])
    } else {
        format!("({}) IN (", cols.join(", "))
    };
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one);
        let k = &keys[i.min(keys.len().saturating_sub(1))];
        params.extend(k.iter().cloned());
    }
    sql.push(')');
    (sql, params)
}

fn order_clause(alias: &str, node: &Node) -> String {
    let t = &node.table;
    let mut parts: Vec<String> = node
        .order_by
        .iter()
        .map(|&(c, desc)| {
            let q = qualified(alias, t, &[c]).remove(0);
            if desc {
                format!("{q} DESC")
            } else {
                q
            }
        })
        .collect();
    let tail: &[usize] = if node.key().is_empty() {
        &node.fetch
    } else {
        node.key()
    };
    for q in qualified(alias, t, tail) {
        if !parts.contains(&q) {
            parts.push(q);
        }
    }
    format!(" ORDER BY {}", parts.join(", "))
}

/// The statement reading a page of a top's rows after `after` (exclusive) up to `hi`
/// (inclusive), in key order.
pub fn top_page(
    node: &Node,
    after: Option<&[Value]>,
    hi: Option<&[Value]>,
    limit: usize,
) -> Statement {
    let t = &node.table;
    let names: Vec<String> = t.key_names();
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(lo) = after {
        let (s, p) = key_after(&names, lo);
        conds.push(s);
        params.extend(p);
    }
    if let Some(hi) = hi {
        let (s, p) = key_at_most(&names, hi);
        conds.push(s);
        params.extend(p);
    }
    let cols: Vec<String> = node
        .fetch
        .iter()
        .map(|&c| ident(&t.schema.columns()[c].name))
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {}",
        cols.join(", "),
        table_ref(&t.database, &t.name)
    );
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    let key: Vec<String> = names.iter().map(|n| ident(n)).collect();
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key.join(", ")));
    Statement {
        sql,
        params,
        match_width: 0,
    }
}

/// The statement reading a top's rows by key.
pub fn top_by_keys(node: &Node, keys: &[Vec<Value>]) -> Statement {
    let t = &node.table;
    let cols = qualified("c", t, &node.fetch);
    let (cond, params) = in_list(&qualified("c", t, node.key()), keys);
    Statement {
        sql: format!(
            "SELECT {} FROM {} AS {} WHERE {cond}",
            cols.join(", "),
            table_ref(&t.database, &t.name),
            ident("c")
        ),
        params,
        match_width: 0,
    }
}

/// Whether a node's related rows are read without joining the parent table (see the module
/// docs): every column of its link is an integer.
pub fn is_direct(node: &Node, parent: &Node) -> bool {
    let int = |t: &TableInfo, cols: &[usize]| {
        cols.iter()
            .all(|&c| matches!(t.kinds[c], ColumnKind::Int { .. }))
    };
    match &node.link {
        None => false,
        Some(Link::ChildHolds { fk, refs }) => int(&node.table, fk) && int(&parent.table, refs),
        Some(Link::ParentHolds { fk, refs }) => int(&parent.table, fk) && int(&node.table, refs),
        Some(Link::Through {
            table, fk, refs, ..
        }) => int(table, fk) && int(&parent.table, refs),
    }
}

/// The statement reading the related rows of `node` for parent rows identified by `keys`:
/// the parents' link values when [`is_direct`], else the parents' keys. The result's first
/// `match_width` columns are what each row matches its parents by.
pub fn relation(node: &Node, parent: &Node, keys: &[Vec<Value>]) -> Statement {
    let c = &node.table;
    let p = &parent.table;
    let fetch = qualified("c", c, &node.fetch);
    let c_ref = format!("{} AS {}", table_ref(&c.database, &c.name), ident("c"));
    let p_ref = format!("{} AS {}", table_ref(&p.database, &p.name), ident("p"));
    let on = |a: Vec<String>, b: Vec<String>| -> String {
        a.iter()
            .zip(&b)
            .map(|(x, y)| format!("{x} = {y}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let direct = is_direct(node, parent);
    let pkey = qualified("p", p, parent.key());
    let (matched, from) = match node.link.as_ref().expect("a relation has a link") {
        Link::ChildHolds { fk, refs } => {
            if direct {
                (qualified("c", c, fk), c_ref)
            } else {
                let cond = on(qualified("c", c, fk), qualified("p", p, refs));
                (pkey, format!("{p_ref} JOIN {c_ref} ON {cond}"))
            }
        }
        Link::ParentHolds { fk, refs } => {
            if direct {
                (qualified("c", c, refs), c_ref)
            } else {
                let cond = on(qualified("c", c, refs), qualified("p", p, fk));
                (pkey, format!("{p_ref} JOIN {c_ref} ON {cond}"))
            }
        }
        Link::Through {
            table: j,
            fk,
            refs,
            target_key,
            target_refs,
        } => {
            let j_ref = format!("{} AS {}", table_ref(&j.database, &j.name), ident("j"));
            let jc = on(
                qualified("c", c, target_refs),
                qualified("j", j, target_key),
            );
            if direct {
                (
                    qualified("j", j, fk),
                    format!("{j_ref} JOIN {c_ref} ON {jc}"),
                )
            } else {
                let pj = on(qualified("j", j, fk), qualified("p", p, refs));
                (
                    pkey,
                    format!("{p_ref} JOIN {j_ref} ON {pj} JOIN {c_ref} ON {jc}"),
                )
            }
        }
    };
    let (cond, params) = in_list(&matched, keys);
    let sql = format!(
        "SELECT {}, {} FROM {from} WHERE {cond}{}",
        matched.join(", "),
        fetch.join(", "),
        order_clause("c", node)
    );
    Statement {
        sql,
        params,
        match_width: matched.len(),
    }
}

/// The kinds of a relation statement's result columns: the match columns, then `fetch`.
pub fn relation_kinds(node: &Node, parent: &Node) -> Vec<ColumnKind> {
    let direct = is_direct(node, parent);
    let c = &node.table;
    let mut out: Vec<ColumnKind> = match node.link.as_ref().expect("a relation has a link") {
        _ if !direct => parent
            .key()
            .iter()
            .map(|&k| parent.table.kinds[k])
            .collect(),
        Link::ChildHolds { fk, .. } => fk.iter().map(|&k| c.kinds[k]).collect(),
        Link::ParentHolds { refs, .. } => refs.iter().map(|&k| c.kinds[k]).collect(),
        Link::Through { table, fk, .. } => fk.iter().map(|&k| table.kinds[k]).collect(),
    };
    out.extend(node.fetch.iter().map(|&k| c.kinds[k]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormal_in_lists_are_padded_to_powers_of_two() {
        let (sql, p) = in_list(
            &["`c`.`a`".into()],
            &[
                vec![Value::Int(1)],
                vec![Value::Int(2)],
                vec![Value::Int(3)],
            ],
        );
        assert_eq!(sql, "`c`.`a` IN (?, ?, ?, ?)");
        assert_eq!(
            p,
            vec![Value::Int(1), Value::Int(2), Value::Int(3), Value::Int(3)]
        );
        let (sql, p) = in_list(
            &["`p`.`a`".into(), "`p`.`b`".into()],
            &[vec![Value::Int(1), Value::from("x")]],
        );
        assert_eq!(sql, "(`p`.`a`, `p`.`b`) IN ((?, ?))");
        assert_eq!(p.len(), 2);
    }
}

//! Upward lookups: which documents embed a changed row. A change to a row of a relation's
//! table (or of its join table) reaches its parent rows by the link's columns, their
//! parents by theirs, and so on up to the top of the document kind; one statement walks
//! the whole chain with joins and returns the distinct top keys, a page at a time in key
//! order (`DISTINCT .. WHERE key > last ORDER BY key LIMIT n`), so a row shared by a
//! million documents is handled in bounded pages.
//!
//! Many changes of the same shape (say, 200 products renamed) are looked up together: the
//! values of all of them go into one `IN` list.

use datatrace_core::Value;
use datatrace_mysql::sql::{ident, table_ref};
use datatrace_mysql::types::ColumnKind;
use datatrace_mysql::TableInfo;

use crate::definition::{Definition, Link};
use crate::query::{in_list, Statement};

/// How the rows of a lookup's first level are found from the changed rows' values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// The level's rows whose columns (of its table) equal the values.
    Columns(Vec<usize>),
    /// The level's rows related, through the join table of relation node `via`, to join
    /// rows whose target key equals the values (a row of `via`'s table changed).
    Through {
        /// The `many_to_many` node whose related row changed.
        via: usize,
    },
}

/// Where a lookup starts: a document kind of a definition, a level (node) and a hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Start {
    /// The definition (index in the stream's list).
    pub def: usize,
    /// The document kind whose tops are looked for.
    pub kind: usize,
    /// The node whose rows the hop finds.
    pub level: usize,
    /// How.
    pub hop: Hop,
}

impl Start {
    /// When the hop's columns are the top's key, the values are the keys themselves (no
    /// query): the values reordered into key order.
    pub fn direct_keys(&self, def: &Definition, values: &[Value]) -> Option<Vec<Value>> {
        let top = def.kinds[self.kind].top;
        match &self.hop {
            Hop::Columns(cols) if self.level == top => reorder(cols, def.nodes[top].key(), values),
            _ => None,
        }
    }
}

/// `values` (of `cols`) in the order of `key`, when `cols` are exactly the key's columns.
fn reorder(cols: &[usize], key: &[usize], values: &[Value]) -> Option<Vec<Value>> {
    if cols.len() != key.len() || key.is_empty() {
        return None;
    }
    key.iter()
        .map(|k| cols.iter().position(|c| c == k).map(|i| values[i].clone()))
        .collect()
}

fn q(alias: &str, t: &TableInfo, cols: &[usize]) -> Vec<String> {
    cols.iter()
        .map(|&c| format!("{}.{}", ident(alias), ident(&t.schema.columns()[c].name)))
        .collect()
}

fn eq(a: &[String], b: &[String]) -> String {
    a.iter()
        .zip(b)
        .map(|(x, y)| format!("{x} = {y}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn tref(t: &TableInfo, alias: &str) -> String {
    format!("{} AS {}", table_ref(&t.database, &t.name), ident(alias))
}

/// `(a > ? OR (a = ? AND b > ?))` over expressions.
fn after(exprs: &[String], bound: &[Value]) -> (String, Vec<Value>) {
    let mut terms = Vec::new();
    let mut params = Vec::new();
    for i in 0..exprs.len().min(bound.len()) {
        let mut t = Vec::new();
        for j in 0..i {
            t.push(format!("{} = ?", exprs[j]));
            params.push(bound[j].clone());
        }
        t.push(format!("{} > ?", exprs[i]));
        params.push(bound[i].clone());
        terms.push(format!("({})", t.join(" AND ")));
    }
    (format!("({})", terms.join(" OR ")), params)
}

/// The top-key expressions, their kinds, the FROM clause and the first hop's columns.
struct Chain {
    from: String,
    first: Vec<String>,
    key: Vec<String>,
    kinds: Vec<ColumnKind>,
}

/// The join chain from the start's level up to the top of its document kind.
fn chain(def: &Definition, start: &Start) -> Chain {
    let top = def.kinds[start.kind].top;
    let topn = &def.nodes[top];
    let (mut from, first) = match first_hop(def, start, top) {
        Ok(begun) => begun,
        Err(done) => return done,
    };
    let mut cur = start.level;
    let mut alias = "a0".to_string();
    let mut step = 0;
    while cur != top {
        let p = def.nodes[cur].parent.unwrap_or(0);
        let next = format!("a{}", step + 1);
        if let Some((key, kinds)) = join_parent(def, cur, p == top, &alias, &next, step, &mut from)
        {
            return Chain {
                from,
                first,
                key,
                kinds,
            };
        }
        alias = next;
        cur = p;
        step += 1;
    }
    Chain {
        from,
        first,
        key: q(&alias, &topn.table, topn.key()),
        kinds: topn.key().iter().map(|&k| topn.table.kinds[k]).collect(),
    }
}

/// The FROM clause of the start's level (as `a0`, behind the join table `b0` for a through
/// hop) and the first hop's columns; `Err` with the whole chain when the join table alone
/// gives the top keys.
fn first_hop(def: &Definition, start: &Start, top: usize) -> Result<(String, Vec<String>), Chain> {
    let alias = "a0";
    let level = &def.nodes[start.level];
    match &start.hop {
        Hop::Columns(cols) => Ok((tref(&level.table, alias), q(alias, &level.table, cols))),
        Hop::Through { via } => {
            let Some(Link::Through {
                table: j,
                fk,
                refs,
                target_key,
                ..
            }) = &def.nodes[*via].link
            else {
                unreachable!("a through hop starts at a many_to_many node")
            };
            let first = q("b0", j, target_key);
            if start.level == top {
                if let Some(keys) = key_from(fk, refs, def.nodes[top].key(), "b0", j) {
                    return Err(Chain {
                        from: tref(j, "b0"),
                        first,
                        kinds: keys.1,
                        key: keys.0,
                    });
                }
            }
            let from = format!(
                "{} JOIN {} ON {}",
                tref(j, "b0"),
                tref(&level.table, alias),
                eq(&q(alias, &level.table, refs), &q("b0", j, fk))
            );
            Ok((from, first))
        }
    }
}

/// One step up the chain: joins the parent of node `cur` (under `alias`) as `next` (through
/// its join table as `b<step + 1>`) onto `from`; or, when the parent is the top (`to_top`)
/// and the child side holds its key, the top key expressions and kinds instead.
fn join_parent(
    def: &Definition,
    cur: usize,
    to_top: bool,
    alias: &str,
    next: &str,
    step: usize,
    from: &mut String,
) -> Option<(Vec<String>, Vec<ColumnKind>)> {
    let n = &def.nodes[cur];
    let pn = &def.nodes[n.parent.unwrap_or(0)];
    match n.link.as_ref().expect("a relation has a link") {
        Link::ChildHolds { fk, refs } => {
            if to_top {
                if let Some(keys) = key_from(fk, refs, pn.key(), alias, &n.table) {
                    return Some(keys);
                }
            }
            from.push_str(&format!(
                " JOIN {} ON {}",
                tref(&pn.table, next),
                eq(&q(next, &pn.table, refs), &q(alias, &n.table, fk))
            ));
        }
        Link::ParentHolds { fk, refs } => {
            from.push_str(&format!(
                " JOIN {} ON {}",
                tref(&pn.table, next),
                eq(&q(next, &pn.table, fk), &q(alias, &n.table, refs))
            ));
        }
        Link::Through {
            table: j,
            fk,
            refs,
            target_key,
            target_refs,
        } => {
            let b = format!("b{}", step + 1);
            from.push_str(&format!(
                " JOIN {} ON {}",
                tref(j, &b),
                eq(&q(&b, j, target_key), &q(alias, &n.table, target_refs))
            ));
            if to_top {
                if let Some(keys) = key_from(fk, refs, pn.key(), &b, j) {
                    return Some(keys);
                }
            }
            from.push_str(&format!(
                " JOIN {} ON {}",
                tref(&pn.table, next),
                eq(&q(next, &pn.table, refs), &q(&b, j, fk))
            ));
        }
    }
    None
}

/// When a link's parent-side columns `refs` are exactly the top's key, the top key can be
/// read from the child side's `fk` (of `table` under `alias`) without joining the top.
fn key_from(
    fk: &[usize],
    refs: &[usize],
    key: &[usize],
    alias: &str,
    table: &TableInfo,
) -> Option<(Vec<String>, Vec<ColumnKind>)> {
    if refs.len() != key.len() || key.is_empty() {
        return None;
    }
    let mut exprs = Vec::new();
    let mut kinds = Vec::new();
    for k in key {
        let i = refs.iter().position(|r| r == k)?;
        exprs.push(q(alias, table, &[fk[i]]).remove(0));
        kinds.push(table.kinds[fk[i]]);
    }
    Some((exprs, kinds))
}

/// The statement returning the next page of distinct top keys for `values` after `last`,
/// and the kinds of its columns.
pub fn page(
    def: &Definition,
    start: &Start,
    values: &[Vec<Value>],
    last: Option<&[Value]>,
    limit: usize,
) -> (Statement, Vec<ColumnKind>) {
    let c = chain(def, start);
    let (cond, mut params) = in_list(&c.first, values);
    let mut sql = format!(
        "SELECT DISTINCT {} FROM {} WHERE {cond}",
        c.key.join(", "),
        c.from
    );
    for k in &c.key {
        sql.push_str(&format!(" AND {k} IS NOT NULL"));
    }
    if let Some(last) = last {
        let (a, p) = after(&c.key, last);
        sql.push_str(&format!(" AND {a}"));
        params.extend(p);
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", c.key.join(", ")));
    (
        Statement {
            sql,
            params,
            match_width: 0,
        },
        c.kinds,
    )
}

/// The statement measuring a start's fan-out: the busiest first-hop value and how many
/// distinct tops it reaches (`SELECT .. COUNT(DISTINCT key) .. GROUP BY .. LIMIT 1`); the
/// result's columns are the hop's values, then the count.
pub fn fan_out(def: &Definition, start: &Start) -> (Statement, usize) {
    let c = chain(def, start);
    let sql = format!(
        "SELECT {first}, COUNT(DISTINCT {key}) AS n FROM {from} WHERE {nn} GROUP BY {first} ORDER BY n DESC LIMIT 1",
        first = c.first.join(", "),
        key = c.key.join(", "),
        from = c.from,
        nn = c.first
            .iter()
            .map(|f| format!("{f} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND "),
    );
    (
        Statement {
            sql,
            params: Vec::new(),
            match_width: 0,
        },
        c.first.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormal_keyset_after_expressions() {
        let (s, p) = after(
            &["`a`.`x`".into(), "`a`.`y`".into()],
            &[Value::Int(1), Value::Int(2)],
        );
        assert_eq!(s, "((`a`.`x` > ?) OR (`a`.`x` = ? AND `a`.`y` > ?))");
        assert_eq!(p.len(), 3);
    }
}

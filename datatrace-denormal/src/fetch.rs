//! Reading a batch: the tops' rows, then, relation by relation (parents first), the related
//! rows of all the batch's parent rows in one statement ([`crate::query`]), grouped by what
//! they match their parents by. Everything is read in one [`ReadTxn`], so the levels agree
//! with each other. Memory: the batch's rows, whatever the table sizes.

use std::collections::HashMap;

use datatrace_core::Value;

use crate::clock::ReadTxn;
use crate::definition::{Definition, Node};
use crate::error::Result;
use crate::keys::KeyBuf;
use crate::query::{self, MAX_IN};

/// The rows of one node for a batch.
#[derive(Debug, Default)]
pub struct NodeRows {
    /// Each row's fetched columns (in the node's `fetch` order), deduplicated by key.
    pub rows: Vec<Vec<Value>>,
    /// Rows by what they match their parents by, in element order.
    pub groups: HashMap<KeyBuf, Vec<usize>>,
}

/// The rows of a batch, by node (`None` for nodes of other kinds).
#[derive(Debug, Default)]
pub struct BatchRows {
    /// Per node.
    pub nodes: Vec<Option<NodeRows>>,
}

/// The values of `cols` (table columns) in a row fetched for `node`.
pub fn values_of(node: &Node, row: &[Value], cols: &[usize]) -> Vec<Value> {
    cols.iter()
        .map(|&c| {
            node.fetch_pos(c)
                .and_then(|i| row.get(i).cloned())
                .unwrap_or(Value::Null)
        })
        .collect()
}

/// What a parent row of `node` is matched to its related rows by: its link values when the
/// relation is read directly, else its key.
pub fn match_key(def: &Definition, node: usize, parent_row: &[Value]) -> Vec<Value> {
    let n = &def.nodes[node];
    let p = &def.nodes[n.parent.unwrap_or(0)];
    let cols = if query::is_direct(n, p) {
        n.link.as_ref().map(|l| l.parent_columns()).unwrap_or(&[])
    } else {
        p.key()
    };
    values_of(p, parent_row, cols)
}

/// Reads the related rows of every node of `kind` under its top, for the top rows `tops`.
pub async fn relations(
    def: &Definition,
    txn: &mut ReadTxn,
    kind: usize,
    tops: Vec<Vec<Value>>,
) -> Result<BatchRows> {
    let top = def.kinds[kind].top;
    let mut out = BatchRows {
        nodes: (0..def.nodes.len()).map(|_| None).collect(),
    };
    out.nodes[top] = Some(NodeRows {
        rows: tops,
        groups: HashMap::new(),
    });
    for (i, node) in def.nodes.iter().enumerate() {
        if i == top || node.kind != kind {
            continue;
        }
        let parent = node.parent.unwrap_or(0);
        let mut keys: Vec<Vec<Value>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        if let Some(p) = &out.nodes[parent] {
            for row in &p.rows {
                let k = match_key(def, i, row);
                if KeyBuf::has_null(&k) {
                    continue; // NULL matches nothing
                }
                if seen.insert(KeyBuf::of(&k)) {
                    keys.push(k);
                }
            }
        }
        let rows = read_node(def, txn, i, &keys).await?;
        out.nodes[i] = Some(rows);
    }
    Ok(out)
}

async fn read_node(
    def: &Definition,
    txn: &mut ReadTxn,
    node: usize,
    keys: &[Vec<Value>],
) -> Result<NodeRows> {
    let n = &def.nodes[node];
    let p = &def.nodes[n.parent.unwrap_or(0)];
    let kinds = query::relation_kinds(n, p);
    let what = format!(
        "reading {} ({}) of {}",
        n.table.qualified_name(),
        def.path(node),
        def.name()
    );
    let mut out = NodeRows::default();
    let mut by_key: HashMap<KeyBuf, usize> = HashMap::new();
    for chunk in keys.chunks(MAX_IN) {
        let st = query::relation(n, p, chunk);
        for mut row in txn.rows(&st, &kinds, &what).await? {
            let fetched = row.split_off(st.match_width);
            let group = KeyBuf::of(&row);
            let idx = if n.key().is_empty() {
                out.rows.push(fetched);
                out.rows.len() - 1
            } else {
                let k = KeyBuf::of(&fetched[..n.key().len()]);
                *by_key.entry(k).or_insert_with(|| {
                    out.rows.push(fetched);
                    out.rows.len() - 1
                })
            };
            out.groups.entry(group).or_default().push(idx);
        }
    }
    Ok(out)
}

/// Reads tops by key.
pub async fn tops_by_keys(
    def: &Definition,
    txn: &mut ReadTxn,
    node: usize,
    keys: &[Vec<Value>],
) -> Result<Vec<Vec<Value>>> {
    let n = &def.nodes[node];
    let kinds: Vec<_> = n.fetch.iter().map(|&c| n.table.kinds[c]).collect();
    let what = format!("reading {} of {}", n.table.qualified_name(), def.name());
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_IN) {
        let st = query::top_by_keys(n, chunk);
        out.extend(txn.rows(&st, &kinds, &what).await?);
    }
    Ok(out)
}

/// Reads a page of tops after `after` up to `hi` (inclusive), in key order.
pub async fn tops_page(
    def: &Definition,
    txn: &mut ReadTxn,
    node: usize,
    after: Option<&[Value]>,
    hi: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Vec<Value>>> {
    let n = &def.nodes[node];
    let kinds: Vec<_> = n.fetch.iter().map(|&c| n.table.kinds[c]).collect();
    let what = format!("reading {} of {}", n.table.qualified_name(), def.name());
    let st = query::top_page(n, after, hi, limit);
    txn.rows(&st, &kinds, &what).await
}

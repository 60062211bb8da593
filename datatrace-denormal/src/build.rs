//! Building documents: reads a batch of tops and their relations in one snapshot
//! ([`crate::fetch`]) and assembles each document, bottom-up: every related row goes through
//! its relation's transforms once and becomes a JSON object (or a value, for scalars) with
//! the relations under it; the top row goes through its transforms and becomes the record
//! the sink writes: `_id`, `_routing`, its fields, a JSON field per relation, the join field.
//!
//! A top whose row is missing, whose transforms filter it out, or (child documents) whose
//! parent is missing or filtered out has no document: it comes back in [`Docs::absent`], and
//! callers delete its document.

use std::collections::HashSet;
use std::sync::Arc;

use datatrace_core::{Op, Record, Schema, Value};
use datatrace_es::mapping::decimal_as;
use datatrace_es::types::{value_to_json, DecimalAs};
use serde_json::{json, Map, Value as Json};

use crate::clock::ReadTxn;
use crate::definition::{Definition, Node};
use crate::error::{DenormalError, Result};
use crate::fetch::{self, values_of, BatchRows};
use crate::keys::{key_string, KeyBuf};

/// Where a routed document lives: its `_routing`, or `None` for routed by id.
pub type Routing = Option<String>;

/// The documents of a batch of tops.
#[derive(Debug, Default)]
pub struct Docs {
    /// Documents that exist: the top's key and the record (`Op::Read`, no position).
    pub docs: Vec<(Vec<Value>, Record)>,
    /// Tops without a document: their key, and the routing their document would have had
    /// when the top row is there to tell (it is filtered out, or its parent is gone);
    /// `None` when the row is missing.
    pub absent: Vec<(Vec<Value>, Option<Routing>)>,
    /// Rows read (tops and related rows), for progress.
    pub rows_read: usize,
}

/// Builds the documents of `kind` for the tops with these keys, in `txn`.
pub async fn by_keys(
    def: &Definition,
    txn: &mut ReadTxn,
    kind: usize,
    keys: &[Vec<Value>],
) -> Result<Docs> {
    let top = def.kinds[kind].top;
    let rows = fetch::tops_by_keys(def, txn, top, keys).await?;
    let mut docs = assemble(def, txn, kind, rows).await?;
    let found: HashSet<KeyBuf> = docs
        .docs
        .iter()
        .map(|(k, _)| KeyBuf::of(k))
        .chain(docs.absent.iter().map(|(k, _)| KeyBuf::of(k)))
        .collect();
    let mut seen = HashSet::new();
    for k in keys {
        let kb = KeyBuf::of(k);
        if !found.contains(&kb) && seen.insert(kb) {
            docs.absent.push((k.clone(), None));
        }
    }
    Ok(docs)
}

/// Builds the documents of `kind` for a page of tops after `after` up to `hi`; also returns
/// the last key read (`None` when the page is empty).
pub async fn page(
    def: &Definition,
    txn: &mut ReadTxn,
    kind: usize,
    after: Option<&[Value]>,
    hi: Option<&[Value]>,
    limit: usize,
) -> Result<(Docs, Option<Vec<Value>>, usize)> {
    let top = def.kinds[kind].top;
    let rows = fetch::tops_page(def, txn, top, after, hi, limit).await?;
    let n = rows.len();
    let klen = def.nodes[top].key().len();
    let last = rows.last().map(|r| r[..klen].to_vec());
    let docs = assemble(def, txn, kind, rows).await?;
    Ok((docs, last, n))
}

/// Child documents: which parents (roots) exist and pass the root's transforms.
async fn live_parents(
    def: &Definition,
    txn: &mut ReadTxn,
    kind: usize,
    tops: &[Vec<Value>],
) -> Result<HashSet<KeyBuf>> {
    let k = &def.kinds[kind];
    let top = &def.nodes[k.top];
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for row in tops {
        let pk = values_of(top, row, &k.parent_fk);
        if !KeyBuf::has_null(&pk) && seen.insert(KeyBuf::of(&pk)) {
            keys.push(pk);
        }
    }
    let root = def.root();
    let rows = fetch::tops_by_keys(def, txn, 0, &keys).await?;
    let mut live = HashSet::new();
    for row in rows {
        let key = row[..root.key().len()].to_vec();
        if transform(def, 0, &row, &key)?.is_some() {
            live.insert(KeyBuf::of(&key));
        }
    }
    Ok(live)
}

/// Runs a node's transforms on a fetched row; `None` when a filter drops it.
fn transform(
    def: &Definition,
    node: usize,
    row: &[Value],
    key: &[Value],
) -> Result<Option<Vec<Value>>> {
    let n = &def.nodes[node];
    let values = values_of(n, row, &n.input);
    let mut rec = Record::read(n.input_schema.clone(), values);
    for t in &n.transforms {
        match t.apply(rec) {
            Ok(Some(r)) => rec = r,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(DenormalError::Data {
                    document: def.name().to_string(),
                    context: format!(
                        "{} ({} key {})",
                        def.path(node),
                        n.table.qualified_name(),
                        key_string(key, ",")
                    ),
                    message: e.message,
                })
            }
        }
    }
    Ok(Some(rec.values))
}

/// How each output column of a node is written in JSON.
fn decimals(def: &Definition, schema: &Schema) -> Vec<DecimalAs> {
    schema
        .columns()
        .iter()
        .map(|c| decimal_as(c, &def.shape.mapping))
        .collect()
}

/// Bottom-up JSON of every related row of the batch (`None`: filtered out).
fn related_json(def: &Definition, kind: usize, rows: &BatchRows) -> Result<Vec<Vec<Option<Json>>>> {
    let mut out: Vec<Vec<Option<Json>>> = vec![Vec::new(); def.nodes.len()];
    let top = def.kinds[kind].top;
    for i in (0..def.nodes.len()).rev() {
        let n = &def.nodes[i];
        if i == top || n.kind != kind {
            continue;
        }
        let Some(nr) = &rows.nodes[i] else { continue };
        let dec = decimals(def, &n.output_schema);
        let mut objs = Vec::with_capacity(nr.rows.len());
        for row in &nr.rows {
            let key = &row[..n.key().len()];
            let Some(values) = transform(def, i, row, key)? else {
                objs.push(None);
                continue;
            };
            let j = if let Some(s) = n.scalar {
                value_to_json(&values[s], dec[s])
            } else {
                let mut m = Map::new();
                for ((c, v), d) in n.output_schema.columns().iter().zip(&values).zip(&dec) {
                    m.insert(c.name.clone(), value_to_json(v, *d));
                }
                for &c in &n.children {
                    m.insert(
                        def.nodes[c].field.clone(),
                        children_json(def, c, row, rows, &out),
                    );
                }
                Json::Object(m)
            };
            objs.push(Some(j));
        }
        out[i] = objs;
    }
    Ok(out)
}

/// The value of relation `child` for one row of its parent.
fn children_json(
    def: &Definition,
    child: usize,
    parent_row: &[Value],
    rows: &BatchRows,
    json: &[Vec<Option<Json>>],
) -> Json {
    let n: &Node = &def.nodes[child];
    let key = fetch::match_key(def, child, parent_row);
    let members = rows.nodes[child]
        .as_ref()
        .filter(|_| !KeyBuf::has_null(&key))
        .and_then(|nr| nr.groups.get(&KeyBuf::of(&key)));
    let mut items = members
        .into_iter()
        .flatten()
        .filter_map(|&r| json[child].get(r).cloned().flatten());
    if n.is_array() {
        Json::Array(items.collect())
    } else {
        items.next().unwrap_or(Json::Null)
    }
}

/// Assembles the documents of a batch of top rows.
async fn assemble(
    def: &Definition,
    txn: &mut ReadTxn,
    kind: usize,
    tops: Vec<Vec<Value>>,
) -> Result<Docs> {
    let k = &def.kinds[kind];
    let top = k.top;
    let klen = def.nodes[top].key().len();
    let parents = if kind > 0 {
        Some(live_parents(def, txn, kind, &tops).await?)
    } else {
        None
    };
    let rows = fetch::relations(def, txn, kind, tops).await?;
    let rows_read = rows
        .nodes
        .iter()
        .flatten()
        .map(|n| n.rows.len())
        .sum::<usize>();
    let json = related_json(def, kind, &rows)?;
    let mut docs = Docs {
        rows_read,
        ..Default::default()
    };
    let schema: Arc<Schema> = k.schema.clone();
    let tn = &def.nodes[top];
    let top_rows = rows.nodes[top]
        .as_ref()
        .map(|n| n.rows.as_slice())
        .unwrap_or(&[]);
    for row in top_rows {
        let key = row[..klen].to_vec();
        let parent_key = (kind > 0).then(|| values_of(tn, row, &k.parent_fk));
        let routing = routing_of(def, kind, row, parent_key.as_deref());
        if let (Some(live), Some(pk)) = (&parents, &parent_key) {
            if KeyBuf::has_null(pk) || !live.contains(&KeyBuf::of(pk)) {
                docs.absent.push((key, Some(routing)));
                continue;
            }
        }
        let Some(values) = transform(def, top, row, &key)? else {
            docs.absent.push((key, Some(routing)));
            continue;
        };
        let mut out = Vec::with_capacity(schema.len());
        out.push(Value::String(def.doc_id(kind, &key)));
        if k.routed {
            out.push(routing.map_or(Value::Null, Value::String));
        }
        out.extend(values);
        for &c in &tn.children {
            out.push(Value::Json(children_json(def, c, row, &rows, &json)));
        }
        if k.joined {
            let mut j = json!({"name": k.name});
            if let Some(pk) = &parent_key {
                j["parent"] = Json::String(def.doc_id(0, pk));
            }
            out.push(Value::Json(j));
        }
        docs.docs
            .push((key, Record::new(Op::Read, schema.clone(), out)));
    }
    Ok(docs)
}

/// The `_routing` of a kind's document from its top row: the routing column's value, or
/// (child documents routed by their parent's id) the parent's id.
pub fn routing_of(
    def: &Definition,
    kind: usize,
    row: &[Value],
    parent_key: Option<&[Value]>,
) -> Option<String> {
    let k = &def.kinds[kind];
    if !k.routed {
        return None;
    }
    let tn = &def.nodes[k.top];
    match (k.routing_column, parent_key) {
        (Some(c), _) => match values_of(tn, row, &[c]).pop() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => Some(v.to_string()),
        },
        (None, Some(pk)) if !KeyBuf::has_null(pk) => Some(def.doc_id(0, pk)),
        _ => None,
    }
}

/// Shared by callers that turn docs into deletes: a delete record of `kind`'s document
/// with top key `key`, routed by `routing`.
pub fn delete_record(
    def: &Definition,
    kind: usize,
    key: &[Value],
    routing: Option<String>,
) -> Record {
    let k = &def.kinds[kind];
    let mut values = vec![Value::Null; k.schema.len()];
    values[0] = Value::String(def.doc_id(kind, key));
    if k.routed {
        values[1] = routing.map_or(Value::Null, Value::String);
    }
    Record::new(Op::Delete, k.schema.clone(), values)
}

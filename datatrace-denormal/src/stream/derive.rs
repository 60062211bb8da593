//! From one row change to the documents it may change ([`Trigger`]s).
//!
//! For every node reading the changed table (a table may be several relations, in several
//! documents) and every image of the row (the before-image and the after-image of an
//! update, the row of an insert or delete):
//!
//! - the top of a document kind: that document, by key (`Direct`), with the routing the
//!   image implies (a changed routing leaves a document to delete on its old shard);
//!   a root's change also reaches its child documents (their existence follows the root);
//! - an embedded relation: the parent rows its link columns point at, then up to the top
//!   ([`Lookup`](Trigger::Lookup), see [`super::lookup`]); when those columns are the
//!   top's key the keys are known without a query;
//! - a join table: the parent rows its foreign key points at, and up.
//!
//! An update that changes none of the columns a node reads changes no document through it.
//! Triggers over-approximate (a document that did not change is rebuilt the same); they
//! never miss one (see [`super`] for the argument).

use std::collections::HashMap;
use std::sync::Arc;

use datatrace_core::{Op, Record, Value};
use datatrace_mysql::TableInfo;

use super::lookup::{Hop, Start};
use crate::build::{routing_of, Routing};
use crate::definition::{Definition, Link};
use crate::fetch::values_of;
use crate::keys::KeyBuf;

/// A document (or documents) a change may have changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A document by its top's key.
    Direct {
        /// The definition.
        def: usize,
        /// The document kind.
        kind: usize,
        /// The top's key.
        key: Vec<Value>,
        /// Where the changed image says the document lives, for routed kinds (`None`:
        /// not routed, or not known).
        routing: Option<Routing>,
    },
    /// The documents found by an upward lookup.
    Lookup {
        /// Where it starts.
        start: Start,
        /// The changed row's values for the first hop.
        values: Vec<Value>,
    },
}

/// What a table is to a definition.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// The rows of a node.
    Node(usize),
    /// The join table of a `many_to_many` node.
    Through(usize),
}

/// Maps changes of the streamed tables to triggers.
pub struct Deriver {
    defs: Vec<Arc<Definition>>,
    watch: HashMap<(String, String), Vec<(usize, Role)>>,
}

impl Deriver {
    /// The deriver of these definitions.
    pub fn new(defs: Vec<Arc<Definition>>) -> Deriver {
        let mut watch: HashMap<(String, String), Vec<(usize, Role)>> = HashMap::new();
        for (d, def) in defs.iter().enumerate() {
            for (i, n) in def.nodes.iter().enumerate() {
                let k = (n.table.database.clone(), n.table.name.clone());
                watch.entry(k).or_default().push((d, Role::Node(i)));
                if let Some(Link::Through { table, .. }) = &n.link {
                    let k = (table.database.clone(), table.name.clone());
                    watch.entry(k).or_default().push((d, Role::Through(i)));
                }
            }
        }
        Deriver { defs, watch }
    }

    /// The definitions.
    pub fn definitions(&self) -> &[Arc<Definition>] {
        &self.defs
    }

    /// Whether `db.table` is read by a definition.
    pub fn watches(&self, db: &str, table: &str) -> bool {
        self.watch
            .contains_key(&(db.to_string(), table.to_string()))
    }

    /// The triggers of one change.
    pub fn derive(&self, rec: &Record, out: &mut Vec<Trigger>) {
        let key = (
            rec.schema.namespace().unwrap_or_default().to_string(),
            rec.schema.name().to_string(),
        );
        let Some(roles) = self.watch.get(&key) else {
            return;
        };
        let mut images: Vec<&[Value]> = vec![&rec.values];
        if rec.op == Op::Update {
            if let Some(b) = &rec.before {
                images.insert(0, b);
            }
        }
        for &(d, role) in roles {
            let def = &self.defs[d];
            match role {
                Role::Node(n) => self.node(d, def, n, rec, &images, out),
                Role::Through(n) => through(d, def, n, rec, &images, out),
            }
        }
    }

    fn node(
        &self,
        d: usize,
        def: &Definition,
        n: usize,
        rec: &Record,
        images: &[&[Value]],
        out: &mut Vec<Trigger>,
    ) {
        let node = &def.nodes[n];
        let rows: Vec<Vec<Value>> = images
            .iter()
            .map(|img| image(rec, img, &node.table, &node.fetch))
            .collect();
        if rows.len() == 2 && rows[0] == rows[1] {
            return; // an update of columns the document does not read
        }
        let kind = node.kind;
        if def.kinds[kind].top == n {
            let klen = node.key().len();
            let k = &def.kinds[kind];
            for row in &rows {
                let parent = (kind > 0).then(|| values_of(node, row, &k.parent_fk));
                out.push(Trigger::Direct {
                    def: d,
                    kind,
                    key: row[..klen].to_vec(),
                    routing: k
                        .routed
                        .then(|| routing_of(def, kind, row, parent.as_deref())),
                });
            }
            if n == 0 && def.kinds.len() > 1 {
                // Child documents exist only under a live, unfiltered root.
                let key_moved = rows.len() == 2 && rows[0][..klen] != rows[1][..klen];
                if rows.len() == 1 || key_moved || !node.transforms.is_empty() {
                    for (c, ck) in def.child_kinds() {
                        for row in &rows {
                            let start = Start {
                                def: d,
                                kind: c,
                                level: ck.top,
                                hop: Hop::Columns(ck.parent_fk.clone()),
                            };
                            push_lookup(def, start, row[..klen].to_vec(), out);
                        }
                    }
                }
            }
            return;
        }
        let Some(link) = &node.link else { return };
        let level = node.parent.unwrap_or(0);
        for row in &rows {
            let (hop, values) = match link {
                Link::ChildHolds { fk, refs } => {
                    (Hop::Columns(refs.clone()), values_of(node, row, fk))
                }
                Link::ParentHolds { fk, refs } => {
                    (Hop::Columns(fk.clone()), values_of(node, row, refs))
                }
                Link::Through { target_refs, .. } => {
                    (Hop::Through { via: n }, values_of(node, row, target_refs))
                }
            };
            let start = Start {
                def: d,
                kind,
                level,
                hop,
            };
            push_lookup(def, start, values, out);
        }
    }
}

/// A join-table row's change: its parent rows, and up.
fn through(
    d: usize,
    def: &Definition,
    n: usize,
    rec: &Record,
    images: &[&[Value]],
    out: &mut Vec<Trigger>,
) {
    let node = &def.nodes[n];
    let Some(Link::Through {
        table,
        fk,
        refs,
        target_key,
        ..
    }) = &node.link
    else {
        return;
    };
    let read: Vec<usize> = fk.iter().chain(target_key).copied().collect();
    let rows: Vec<Vec<Value>> = images
        .iter()
        .map(|img| image(rec, img, table, &read))
        .collect();
    if rows.len() == 2 && rows[0] == rows[1] {
        return;
    }
    for row in &rows {
        let start = Start {
            def: d,
            kind: node.kind,
            level: node.parent.unwrap_or(0),
            hop: Hop::Columns(refs.clone()),
        };
        push_lookup(def, start, row[..fk.len()].to_vec(), out);
    }
}

fn push_lookup(def: &Definition, start: Start, values: Vec<Value>, out: &mut Vec<Trigger>) {
    if KeyBuf::has_null(&values) {
        return; // a NULL link reaches nothing
    }
    match start.direct_keys(def, &values) {
        Some(key) => out.push(Trigger::Direct {
            def: start.def,
            kind: start.kind,
            key,
            routing: None,
        }),
        None => out.push(Trigger::Lookup { start, values }),
    }
}

/// The values of `cols` (columns of `table`) in a change's image, found by name (the
/// stream's schema may order columns differently); in `cols` order.
fn image(rec: &Record, values: &[Value], table: &TableInfo, cols: &[usize]) -> Vec<Value> {
    cols.iter()
        .map(|&c| {
            let name = &table.schema.columns()[c].name;
            rec.schema
                .index_of(name)
                .and_then(|i| values.get(i).cloned())
                .unwrap_or(Value::Null)
        })
        .collect()
}

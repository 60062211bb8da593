//! [`Definition`]: a document definition resolved against the source tables: every relation
//! as a [`Node`] with its table, link columns, fetched columns, transforms and output schema,
//! and the [`DocKind`]s written (the root documents, and child documents for relations with
//! `child_documents`). Built by [`crate::resolve`]; read by the snapshot, the stream and the
//! check.

use std::sync::Arc;

use datatrace_core::{Schema, Transform, Value};
use datatrace_es::{ClusterInfo, EsSink, MappingConfig};
use datatrace_mysql::TableInfo;

use crate::spec::{DocumentSpec, RelationKind};

/// What the search engine side decides about documents: how columns are mapped (and so
/// how decimals are written), how composite keys join into ids, and the cluster's flavor.
#[derive(Debug, Clone)]
pub struct IndexShape {
    /// The sink's mapping settings.
    pub mapping: MappingConfig,
    /// The cluster (for `unsigned_long`, `flattened`).
    pub cluster: ClusterInfo,
    /// Joins the values of a composite key in document ids (the sink's `id_separator`).
    pub id_separator: String,
}

impl IndexShape {
    /// The shape of documents written by `sink`.
    pub fn of(sink: &EsSink) -> IndexShape {
        IndexShape {
            mapping: sink.config().mapping.clone(),
            cluster: sink.client().info().clone(),
            id_separator: sink.config().id_separator.clone(),
        }
    }
}

/// How a node's table attaches to its parent's table (column positions in each table).
#[derive(Debug, Clone)]
pub enum Link {
    /// The node's table holds `fk`, referencing the parent table's `refs`
    /// (`one_to_one`, `one_to_many`).
    ChildHolds {
        /// Columns of the node's table.
        fk: Vec<usize>,
        /// Columns of the parent's table.
        refs: Vec<usize>,
    },
    /// The parent's table holds `fk`, referencing the node table's `refs` (`many_to_one`).
    ParentHolds {
        /// Columns of the parent's table.
        fk: Vec<usize>,
        /// Columns of the node's table.
        refs: Vec<usize>,
    },
    /// A join table whose `fk` references the parent's `refs` and whose `target_key`
    /// references the node table's `target_refs` (`many_to_many`).
    Through {
        /// The join table.
        table: Arc<TableInfo>,
        /// Join-table columns referencing the parent.
        fk: Vec<usize>,
        /// Parent-table columns.
        refs: Vec<usize>,
        /// Join-table columns referencing the node's table.
        target_key: Vec<usize>,
        /// Node-table columns.
        target_refs: Vec<usize>,
    },
}

impl Link {
    /// The parent-table columns this link reads (to find a parent row's related rows).
    pub fn parent_columns(&self) -> &[usize] {
        match self {
            Link::ChildHolds { refs, .. } => refs,
            Link::ParentHolds { fk, .. } => fk,
            Link::Through { refs, .. } => refs,
        }
    }

    /// The node-table columns this link reads.
    pub fn node_columns(&self) -> &[usize] {
        match self {
            Link::ChildHolds { fk, .. } => fk,
            Link::ParentHolds { refs, .. } => refs,
            Link::Through { target_refs, .. } => target_refs,
        }
    }
}

/// The root or one relation, resolved.
pub struct Node {
    /// The relation's name (the document's name for the root).
    pub name: String,
    /// The field it becomes in its parent (empty for the root).
    pub field: String,
    /// The parent node (`None` for the root).
    pub parent: Option<usize>,
    /// The relation's kind (`None` for the root).
    pub relation: Option<RelationKind>,
    /// The node's table.
    pub table: Arc<TableInfo>,
    /// The document kind the node belongs to.
    pub kind: usize,
    /// How it attaches to its parent (`None` for the root and for child-document tops,
    /// whose link to the root is in [`DocKind::parent_fk`]).
    pub link: Option<Link>,
    /// Table columns read for each row, in this order: the key first, then the rest.
    pub fetch: Vec<usize>,
    /// Table columns handed to the transforms (the selected columns, in table order).
    pub input: Vec<usize>,
    /// The schema of `input`.
    pub input_schema: Arc<Schema>,
    /// The node's transforms.
    pub transforms: Vec<Arc<dyn Transform>>,
    /// The schema the transforms produce.
    pub output_schema: Arc<Schema>,
    /// The output column written alone (`scalar`).
    pub scalar: Option<usize>,
    /// Mapped as `nested`.
    pub nested: bool,
    /// Element order: table columns, descending or not (the key follows).
    pub order_by: Vec<(usize, bool)>,
    /// Embedded relations under this node (not child-document tops).
    pub children: Vec<usize>,
}

impl Node {
    /// The table's key columns.
    pub fn key(&self) -> &[usize] {
        &self.table.key
    }

    /// Whether the node is written as an array.
    pub fn is_array(&self) -> bool {
        self.relation.is_some_and(|k| k.is_array())
    }

    /// Columns whose change can change a document: everything fetched, and (for links held
    /// by the parent) the parent's link columns are the parent's concern.
    pub fn relevant(&self) -> &[usize] {
        &self.fetch
    }

    /// Position of a table column in `fetch`.
    pub fn fetch_pos(&self, column: usize) -> Option<usize> {
        self.fetch.iter().position(|&c| c == column)
    }
}

/// One kind of document written: the root documents, or the child documents of a
/// `child_documents` relation.
#[derive(Debug, Clone)]
pub struct DocKind {
    /// The document's name for the root kind, the relation's name for child documents: the
    /// join name, and the id prefix when the document has child documents.
    pub name: String,
    /// The node at the top of the kind (the root, or the relation).
    pub top: usize,
    /// The records' schema: `_id`, then `_routing` (when documents are routed), the top's
    /// output fields, the embedded relations (JSON, with their mapping as native type),
    /// and the join field (when the document has child documents).
    pub schema: Arc<Schema>,
    /// `<name>#` when the document has child documents (ids of all kinds share an index).
    pub id_prefix: Option<String>,
    /// Child kinds: the top table's columns holding the root's key, in root-key order.
    pub parent_fk: Vec<usize>,
    /// Where the routing value comes from: a column of the top's table (`None`: routed by
    /// id for the root kind).
    pub routing_column: Option<usize>,
    /// Whether records carry `_routing`.
    pub routed: bool,
    /// Whether records carry the join field.
    pub joined: bool,
}

/// A document definition resolved against the source tables (see the module docs).
pub struct Definition {
    /// The definition as written.
    pub spec: DocumentSpec,
    /// The root's database.
    pub database: String,
    /// Nodes, the root first, every parent before its children.
    pub nodes: Vec<Node>,
    /// Kinds, the root kind first.
    pub kinds: Vec<DocKind>,
    /// The search engine side.
    pub shape: IndexShape,
    /// A schema whose mapping covers every kind (index creation).
    pub mapping_schema: Arc<Schema>,
}

impl Definition {
    /// The document's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// Every `(database, table)` the definition reads, join tables included, without
    /// duplicates.
    pub fn tables(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |t: &TableInfo| {
            let k = (t.database.clone(), t.name.clone());
            if !out.contains(&k) {
                out.push(k);
            }
        };
        for n in &self.nodes {
            add(&n.table);
            if let Some(Link::Through { table, .. }) = &n.link {
                add(table);
            }
        }
        out
    }

    /// The path of a node for messages: `items.product`.
    pub fn path(&self, node: usize) -> String {
        let mut parts = Vec::new();
        let mut at = Some(node);
        while let Some(i) = at {
            if i == 0 {
                break;
            }
            parts.push(self.nodes[i].name.as_str());
            at = self.nodes[i].parent;
        }
        parts.reverse();
        if parts.is_empty() {
            self.name().to_string()
        } else {
            parts.join(".")
        }
    }

    /// The document id of a kind's document whose top row has key `key`: the kind's prefix
    /// and the key through the one id encoding of the workspace (`datatrace_core::doc_id`,
    /// injective: parts holding the separator never collide).
    pub fn doc_id(&self, kind: usize, key: &[Value]) -> String {
        let mut id = self.kinds[kind].id_prefix.clone().unwrap_or_default();
        match datatrace_core::doc_id::encode(key, &self.shape.id_separator) {
            Ok(encoded) => id.push_str(&encoded),
            // A NULL key part names no document; the text only shows in messages.
            Err(_) => crate::keys::push_key_string(&mut id, key, &self.shape.id_separator),
        }
        id
    }

    /// The kinds of child documents.
    pub fn child_kinds(&self) -> impl Iterator<Item = (usize, &DocKind)> {
        self.kinds.iter().enumerate().skip(1)
    }
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definition")
            .field("name", &self.spec.name)
            .field("root", &self.root().table.qualified_name())
            .field("nodes", &self.nodes.len())
            .field("kinds", &self.kinds)
            .finish()
    }
}

//! Resolving a [`DocumentSpec`] against the source: tables, columns, keys, transforms and
//! routing, into a [`Definition`]. Every error names the document and the relation (and the
//! table and column at fault, with the columns that exist).
//!
//! [`columns`] finds tables and columns by name; this module builds the tree of nodes and
//! the kinds of documents.

mod columns;
mod links;

use std::collections::HashMap;
use std::sync::Arc;

use datatrace_core::{Schema, Transform};
use datatrace_es::mapping::{ID_COLUMN, ROUTING_COLUMN};
use datatrace_mysql::{MySqlConnection, TableInfo};

use crate::definition::{Definition, DocKind, IndexShape, Node};
use crate::error::{DenormalError, Result};
use crate::mapping::{join_column, kind_schema, merged_schema};
use crate::spec::{DocumentSpec, RelationSpec};

/// Resolves `spec` against the tables of `conn` (see the module docs).
pub async fn resolve(
    conn: &MySqlConnection,
    spec: &DocumentSpec,
    shape: &IndexShape,
) -> Result<Definition> {
    spec.check()?;
    let mut r = Resolver {
        conn,
        spec,
        tables: HashMap::new(),
    };
    r.run(shape).await
}

pub(crate) struct Resolver<'a> {
    conn: &'a MySqlConnection,
    spec: &'a DocumentSpec,
    tables: HashMap<(String, String), Arc<TableInfo>>,
}

/// A child-document top's link to the root: its foreign key columns (in root-key order)
/// and the root columns they reference.
type ToRoot = Option<(Vec<usize>, Vec<usize>)>;

/// The tops of the document kinds (the root and the child-documents nodes), by node index,
/// with their links to the root.
type Tops = Vec<(usize, ToRoot)>;

/// What a node is before its fetched columns are known.
struct Draft {
    node: Node,
    to_root: ToRoot,
}

/// A node's columns and transforms.
pub(crate) struct Shaped {
    input: Vec<usize>,
    input_schema: Arc<Schema>,
    transforms: Vec<Arc<dyn Transform>>,
    output_schema: Arc<Schema>,
    scalar: Option<usize>,
    order_by: Vec<(usize, bool)>,
}

impl Resolver<'_> {
    fn err(&self, rel: Option<&str>, m: impl Into<String>) -> DenormalError {
        DenormalError::definition(&self.spec.name, rel, m)
    }

    async fn run(&mut self, shape: &IndexShape) -> Result<Definition> {
        let spec = self.spec;
        let (root_db, root_name) = self.split(None, &spec.table, self.conn.default_database())?;
        let root_table = self.table(None, &root_db, &root_name, &spec.key).await?;
        if root_table.key.is_empty() {
            return Err(self.err(
                None,
                format!("the root table {} has no primary key (nor a unique key of NOT NULL columns): name its key columns with `key`", root_table.qualified_name()),
            ));
        }
        let shaped = self.shape_of(
            None,
            &root_table,
            &spec.columns,
            &spec.transforms,
            None,
            &[],
        )?;
        let mut drafts = vec![Draft {
            node: Node {
                name: spec.name.clone(),
                field: String::new(),
                parent: None,
                relation: None,
                table: root_table.clone(),
                kind: 0,
                link: None,
                fetch: Vec::new(),
                input: shaped.input,
                input_schema: shaped.input_schema,
                transforms: shaped.transforms,
                output_schema: shaped.output_schema,
                scalar: None,
                nested: false,
                order_by: Vec::new(),
                children: Vec::new(),
            },
            to_root: None,
        }];
        let mut kind_names = vec![spec.name.clone()];
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        // Parents before children (the spec check ruled out cycles and unknown parents).
        let mut placed = vec![false; spec.relations.len()];
        while placed.iter().any(|p| !p) {
            for (i, rel) in spec.relations.iter().enumerate() {
                if placed[i] {
                    continue;
                }
                let parent = match &rel.parent {
                    None => 0,
                    Some(p) => match index_of.get(p.as_str()) {
                        Some(&n) => n,
                        None => continue,
                    },
                };
                let kind = if rel.child_documents {
                    kind_names.push(rel.name().to_string());
                    kind_names.len() - 1
                } else {
                    drafts[parent].node.kind
                };
                let draft = self
                    .relation(rel, &root_db, &drafts[parent].node, parent, kind)
                    .await?;
                index_of.insert(rel.name(), drafts.len());
                drafts.push(draft);
                placed[i] = true;
            }
        }
        for i in 1..drafts.len() {
            let p = drafts[i].node.parent.unwrap_or(0);
            if drafts[i].to_root.is_none() {
                drafts[p].node.children.push(i);
            }
        }
        self.finish(drafts, kind_names, root_db, shape)
    }

    async fn relation(
        &mut self,
        rel: &RelationSpec,
        root_db: &str,
        parent: &Node,
        parent_index: usize,
        kind: usize,
    ) -> Result<Draft> {
        let name = Some(rel.name());
        let (db, t) = self.split(name, &rel.table, Some(root_db))?;
        let table = self.table(name, &db, &t, &rel.key).await?;
        let pt = parent.table.clone();
        let link = self.link(rel, root_db, &pt, &table).await?;
        let shaped = self.shape_of(
            name,
            &table,
            &rel.columns,
            &rel.transforms,
            rel.scalar.as_deref(),
            &rel.order_by,
        )?;
        let Shaped {
            input,
            input_schema,
            transforms,
            output_schema,
            scalar,
            order_by,
        } = shaped;
        if parent.output_schema.index_of(&rel.field).is_some() {
            return Err(self.err(
                name,
                format!("field {:?} is already a field of {} (after its transforms): choose another `field`", rel.field, parent.name),
            ));
        }
        let (link, to_root) = if rel.child_documents {
            (None, Some(self.child_documents_link(name, link, &pt)?))
        } else {
            (Some(link), None)
        };
        Ok(Draft {
            node: Node {
                name: rel.name().to_string(),
                field: rel.field.clone(),
                parent: Some(parent_index),
                relation: Some(rel.kind),
                table,
                kind,
                link,
                fetch: Vec::new(),
                input,
                input_schema,
                transforms,
                output_schema,
                scalar,
                nested: rel.nested,
                order_by,
                children: Vec::new(),
            },
            to_root,
        })
    }

    /// Completes the definition: the columns each node fetches, and one kind of document
    /// per top (the root, and each child-documents relation).
    fn finish(
        &self,
        drafts: Vec<Draft>,
        kind_names: Vec<String>,
        root_db: String,
        shape: &IndexShape,
    ) -> Result<Definition> {
        let spec = self.spec;
        let has_children = kind_names.len() > 1;
        let routing = match &spec.routing {
            None => None,
            Some(c) => Some(
                self.columns(
                    None,
                    "routing",
                    &drafts[0].node.table,
                    std::slice::from_ref(c),
                )?[0],
            ),
        };
        let needed = needed_columns(&drafts, routing);
        let (mut nodes, tops) = self.place_fetches(drafts, &needed)?;
        let mut kinds: Vec<DocKind> = Vec::new();
        let join =
            has_children.then(|| join_column(&spec.join_field, &kind_names[0], &kind_names[1..]));
        let mut named: Vec<(String, Arc<Schema>)> = Vec::new();
        for (k, (top, to_root)) in tops.into_iter().enumerate() {
            let (parent_fk, routing_column, routed) =
                self.kind_routing(&nodes[top].name, &to_root, routing)?;
            if let Some(rc) = routing_column {
                if !nodes[top].fetch.contains(&rc) {
                    nodes[top].fetch.push(rc);
                }
            }
            let schema = kind_schema(
                &spec.name,
                &root_db,
                &nodes,
                top,
                routed,
                join.clone(),
                shape,
            );
            self.unique_fields(&nodes[top].name, &schema)?;
            let schema = Arc::new(schema);
            named.push((kind_names[k].clone(), schema.clone()));
            kinds.push(DocKind {
                name: kind_names[k].clone(),
                top,
                schema,
                id_prefix: has_children.then(|| format!("{}#", kind_names[k])),
                parent_fk,
                routing_column,
                routed,
                joined: has_children,
            });
        }
        let mapping_schema = Arc::new(merged_schema(&named, shape).map_err(|m| self.err(None, m))?);
        Ok(Definition {
            spec: spec.clone(),
            database: root_db,
            nodes,
            kinds,
            shape: shape.clone(),
            mapping_schema,
        })
    }

    /// Sets each node's fetched columns (its key first, then `needed`), checks that nodes
    /// with related rows or documents have a key, and lists the tops (the root and the
    /// child-documents nodes) with their links to the root.
    fn place_fetches(
        &self,
        drafts: Vec<Draft>,
        needed: &[Vec<usize>],
    ) -> Result<(Vec<Node>, Tops)> {
        let mut nodes = Vec::with_capacity(drafts.len());
        let mut tops: Tops = Vec::new();
        for (i, d) in drafts.into_iter().enumerate() {
            let mut node = d.node;
            let mut fetch: Vec<usize> = node.key().to_vec();
            for &c in &needed[i] {
                if !fetch.contains(&c) {
                    fetch.push(c);
                }
            }
            node.fetch = fetch;
            if (!node.children.is_empty() || i == 0 || d.to_root.is_some()) && node.key().is_empty()
            {
                return Err(self.err(
                    Some(&node.name),
                    format!("{} has no primary key (nor a unique key of NOT NULL columns), which its related rows or documents need: name its key columns with `key`", node.table.qualified_name()),
                ));
            }
            if i == 0 || d.to_root.is_some() {
                tops.push((i, d.to_root));
            }
            nodes.push(node);
        }
        Ok((nodes, tops))
    }

    /// A kind's routing: the foreign key to its parent document, the column routing it (if
    /// any), and whether its documents are routed. Child documents go to their parent's
    /// shard, so a routing column must be one the foreign key of `top` references.
    fn kind_routing(
        &self,
        top: &str,
        to_root: &ToRoot,
        routing: Option<usize>,
    ) -> Result<(Vec<usize>, Option<usize>, bool)> {
        Ok(match (to_root, routing) {
            (None, r) => (Vec::new(), r, r.is_some()),
            (Some((fk, _)), None) => (fk.clone(), None, true),
            (Some((fk, refs)), Some(r)) => match refs.iter().position(|&x| x == r) {
                Some(j) => (fk.clone(), Some(fk[j]), true),
                None => {
                    return Err(self.err(
                        Some(top),
                        format!("routing: child documents go to their parent's shard, so the routing column {:?} must be one of the root columns the foreign key references", self.spec.routing.as_deref().unwrap_or_default()),
                    ))
                }
            },
        })
    }

    /// A kind's fields must be unique (`_id`, `_routing` and the join field are reserved).
    fn unique_fields(&self, top: &str, schema: &Schema) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for c in schema.columns() {
            if !seen.insert(c.name.as_str()) {
                let why = match c.name.as_str() {
                    ID_COLUMN | ROUTING_COLUMN => "a name the sink reserves",
                    n if n == self.spec.join_field => "the join field (`join_field`)",
                    _ => "another field of the same object",
                };
                return Err(self.err(
                    Some(top),
                    format!("field {:?} clashes with {why}: rename it (a `rename` transform) or choose another `field`", c.name),
                ));
            }
        }
        Ok(())
    }
}

/// Which columns each node reads besides its key: its selection, order, links to its parent
/// and its children, and (for the root) routing.
fn needed_columns(drafts: &[Draft], routing: Option<usize>) -> Vec<Vec<usize>> {
    let mut needed: Vec<Vec<usize>> = drafts.iter().map(|d| d.node.key().to_vec()).collect();
    for (i, d) in drafts.iter().enumerate() {
        let n = &d.node;
        let mut add = |node: usize, cols: &[usize]| needed[node].extend_from_slice(cols);
        add(i, &n.input);
        add(i, &n.order_by.iter().map(|o| o.0).collect::<Vec<_>>());
        if let Some(l) = &n.link {
            add(i, l.node_columns());
            add(n.parent.unwrap_or(0), l.parent_columns());
        }
        if let Some((fk, refs)) = &d.to_root {
            add(i, fk);
            add(0, refs);
        }
    }
    if let Some(r) = routing {
        needed[0].push(r);
    }
    needed
}

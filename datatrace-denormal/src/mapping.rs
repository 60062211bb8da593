//! Generated mappings: every embedded relation becomes a JSON column whose native type is its
//! mapping (`object` or `nested` with the `properties` of the related table's output
//! columns and of the relations under it; a scalar relation takes its column's mapping), so
//! the Elasticsearch sink creates the index with the whole document's mapping. The root's
//! own columns are mapped as any column is (see `datatrace_es::mapping`).
//!
//! A document with child documents also gets a join field
//! (`{"type": "join", "relations": {"orders": ["items"]}}`), and one index mapping holding
//! the fields of every kind ([`Definition::mapping_schema`](crate::Definition)).

use std::sync::Arc;

use datatrace_core::{Column, DataType, Schema};
use datatrace_es::mapping::{column_mapping, ID_COLUMN, ROUTING_COLUMN};
use serde_json::{json, Map, Value as Json};

use crate::definition::{IndexShape, Node};

/// The mapping of a node's objects: its output columns and its embedded relations.
pub fn node_properties(nodes: &[Node], node: usize, shape: &IndexShape) -> Map<String, Json> {
    let n = &nodes[node];
    let mut props = Map::new();
    for c in n.output_schema.columns() {
        props.insert(
            c.name.clone(),
            column_mapping(c, &shape.mapping, &shape.cluster),
        );
    }
    for &child in &n.children {
        props.insert(
            nodes[child].field.clone(),
            relation_mapping(nodes, child, shape),
        );
    }
    props
}

/// The mapping of the field an embedded relation becomes.
pub fn relation_mapping(nodes: &[Node], node: usize, shape: &IndexShape) -> Json {
    let n = &nodes[node];
    if let Some(s) = n.scalar {
        return column_mapping(
            &n.output_schema.columns()[s],
            &shape.mapping,
            &shape.cluster,
        );
    }
    let ty = if n.nested { "nested" } else { "object" };
    json!({"type": ty, "properties": node_properties(nodes, node, shape)})
}

/// The JSON column an embedded relation becomes in its parent's record, carrying its
/// mapping.
pub fn relation_column(nodes: &[Node], node: usize, shape: &IndexShape) -> Column {
    Column::new(nodes[node].field.clone(), DataType::Json)
        .native(relation_mapping(nodes, node, shape).to_string())
}

/// The join field's column: `relations` maps the root kind's name to its child kinds'.
pub fn join_column(field: &str, root: &str, children: &[String]) -> Column {
    let m = json!({"type": "join", "relations": {root: children}});
    Column::new(field, DataType::Json).native(m.to_string())
}

/// The record schema of a kind whose top is `top` (see [`crate::DocKind::schema`]).
pub fn kind_schema(
    name: &str,
    namespace: &str,
    nodes: &[Node],
    top: usize,
    routed: bool,
    join: Option<Column>,
    shape: &IndexShape,
) -> Schema {
    let mut cols = vec![Column::new(ID_COLUMN, DataType::String).not_null()];
    if routed {
        cols.push(Column::new(ROUTING_COLUMN, DataType::String));
    }
    cols.extend(nodes[top].output_schema.columns().iter().cloned());
    for &child in &nodes[top].children {
        cols.push(relation_column(nodes, child, shape));
    }
    cols.extend(join);
    Schema::new(name, cols)
        .with_namespace(namespace)
        .with_primary_key(&[ID_COLUMN])
        .expect("the id column is there")
}

/// One schema whose mapping covers every kind's fields (they share an index), or the field
/// two kinds map differently.
pub fn merged_schema(
    kinds: &[(String, Arc<Schema>)],
    shape: &IndexShape,
) -> Result<Schema, String> {
    let (first_name, first) = &kinds[0];
    let mut cols: Vec<Column> = first.columns().to_vec();
    for (kind_name, k) in &kinds[1..] {
        for c in k.columns() {
            match cols.iter().find(|x| x.name == c.name) {
                None => cols.push(c.clone()),
                Some(x) => {
                    let a = column_mapping(x, &shape.mapping, &shape.cluster);
                    let b = column_mapping(c, &shape.mapping, &shape.cluster);
                    if a != b {
                        return Err(format!(
                            "field {:?} is {a} in {} documents and {b} in {} documents, but they share one index: rename one of them (a `rename` transform)",
                            c.name, first_name, kind_name
                        ));
                    }
                }
            }
        }
    }
    let mut s = Schema::new(first.name(), cols);
    if let Some(ns) = first.namespace() {
        s = s.with_namespace(ns);
    }
    Ok(s.with_primary_key(&[ID_COLUMN])
        .expect("the id column is there"))
}

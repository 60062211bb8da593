//! Document definitions as people write them: [`DocumentSpec`] (a root table) and its
//! [`RelationSpec`]s (related tables), in job files (`[[source.documents]]`) or in code.
//!
//! ```
//! use datatrace_denormal::{DocumentSpec, RelationSpec};
//!
//! // orders { customer: {..}, items: [ { .., product: { .., tags: ["a", "b"] } } ] }
//! let spec = DocumentSpec::new("orders", "shop.orders")
//!     .relation(RelationSpec::many_to_one("customer", "customers", ["customer_id"]))
//!     .relation(RelationSpec::one_to_many("items", "order_items", ["order_id"]).nested())
//!     .relation(RelationSpec::many_to_one("product", "products", ["product_id"]).under("items"))
//!     .relation(
//!         RelationSpec::many_to_many("tags", "tags", "product_tags", ["product_id"], ["tag_id"])
//!             .under("product")
//!             .scalar("name"),
//!     );
//! spec.check().unwrap();
//! ```
//!
//! The same in a job file:
//!
//! ```toml
//! [[source.documents]]
//! name = "orders"
//! table = "orders"
//!
//! [[source.documents.relations]]
//! field = "customer"
//! table = "customers"
//! kind = "many_to_one"
//! foreign_key = ["customer_id"]          # on orders, referencing customers' key
//!
//! [[source.documents.relations]]
//! field = "items"
//! table = "order_items"
//! kind = "one_to_many"
//! foreign_key = ["order_id"]             # on order_items, referencing orders' key
//! nested = true
//!
//! [[source.documents.relations]]
//! field = "product"
//! parent = "items"
//! table = "products"
//! kind = "many_to_one"
//! foreign_key = ["product_id"]
//!
//! [[source.documents.relations]]
//! field = "tags"
//! parent = "product"
//! table = "tags"
//! kind = "many_to_many"
//! through = { table = "product_tags", foreign_key = ["product_id"], target_key = ["tag_id"] }
//! scalar = "name"
//! ```

use datatrace_core::transforms::TransformSpec;
use serde::Deserialize;

/// How a related table attaches to its parent, and what it becomes in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// The related table holds the foreign key to the parent and has at most one row per
    /// parent (an order's shipment): an object (or `null`).
    OneToOne,
    /// The parent holds the foreign key to the related table (an order's customer): an
    /// object (or `null`). The related row may be shared by many documents.
    ManyToOne,
    /// The related table holds the foreign key to the parent (an order's lines): an array
    /// of objects, `nested` when asked, or separate child documents.
    OneToMany,
    /// Rows related through a join table (a product's tags): an array of objects.
    ManyToMany,
}

impl RelationKind {
    /// The job-file spelling.
    pub fn name(&self) -> &'static str {
        match self {
            RelationKind::OneToOne => "one_to_one",
            RelationKind::ManyToOne => "many_to_one",
            RelationKind::OneToMany => "one_to_many",
            RelationKind::ManyToMany => "many_to_many",
        }
    }

    /// Whether the relation becomes an array (else an object).
    pub fn is_array(&self) -> bool {
        matches!(self, RelationKind::OneToMany | RelationKind::ManyToMany)
    }
}

/// The join table of a `many_to_many` relation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughSpec {
    /// The join table (`db.table`, or a table of the root's database).
    pub table: String,
    /// Its columns referencing the parent (the parent's [`RelationSpec::references`], by
    /// default the parent's key).
    pub foreign_key: Vec<String>,
    /// Its columns referencing the related table (the related table's `target_references`,
    /// by default its key).
    pub target_key: Vec<String>,
    /// The related table's columns that `target_key` references (default: its key).
    #[serde(default)]
    pub target_references: Vec<String>,
}

/// One related table of a document (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationSpec {
    /// The field it becomes in its parent object.
    pub field: String,
    /// The name other relations use as their `parent` (default: `field`); unique in the
    /// document.
    #[serde(default)]
    pub name: Option<String>,
    /// The relation it hangs under (its `name`); default: the root.
    #[serde(default)]
    pub parent: Option<String>,
    /// The related table (`db.table`, or a table of the root's database).
    pub table: String,
    /// How it relates.
    pub kind: RelationKind,
    /// The foreign key columns: on the related table for `one_to_one` and `one_to_many`, on
    /// the parent for `many_to_one`; `many_to_many` names them in `through`.
    #[serde(default)]
    pub foreign_key: Vec<String>,
    /// The columns the foreign key references: on the parent for `one_to_one`,
    /// `one_to_many` and `many_to_many`, on the related table for `many_to_one`. Default:
    /// that table's key.
    #[serde(default)]
    pub references: Vec<String>,
    /// The join table of a `many_to_many` relation.
    #[serde(default)]
    pub through: Option<ThroughSpec>,
    /// Key columns of the related table when it has no primary key.
    #[serde(default)]
    pub key: Vec<String>,
    /// The related table's columns in the document (default: all).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Transforms of each related row (the core's built-ins; `filter` leaves rows out).
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
    /// Write only this column's value (after transforms): an array of values, or a value.
    #[serde(default)]
    pub scalar: Option<String>,
    /// Map the field as `nested` (arrays of objects whose fields are queried together).
    #[serde(default)]
    pub nested: bool,
    /// Order of array elements: columns of the related table (ascending; `-col` for
    /// descending), then its key. Default: its key.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Write each related row as its own child document of the root (a join field links
    /// them) instead of an array inside the root document: for very large `one_to_many`
    /// relations directly under the root.
    #[serde(default)]
    pub child_documents: bool,
}

fn default_join_field() -> String {
    "doc_join".into()
}
fn default_max_fan_out() -> u64 {
    100_000
}
fn default_batch_size() -> usize {
    500
}
fn default_window_ms() -> u64 {
    50
}
fn default_concurrency() -> usize {
    2
}

/// A document: a root table and its relations (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSpec {
    /// The document's name: its unit, the `{table}` of the target's index pattern, and the
    /// join name of root documents. Letters, digits, `_`, `-` and `.`.
    pub name: String,
    /// The root table (`db.table`, or a table of the connection's database).
    pub table: String,
    /// Key columns of the root table when it has no primary key.
    #[serde(default)]
    pub key: Vec<String>,
    /// The root table's columns in the document (default: all).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Transforms of the root row; a `filter` decides whether the document exists.
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
    /// Route documents by this field of the root (after transforms), so that documents with
    /// the same value (and their child documents) share a shard.
    #[serde(default)]
    pub routing: Option<String>,
    /// The join field of documents when a relation has `child_documents`. Default
    /// `doc_join`.
    #[serde(default = "default_join_field")]
    pub join_field: String,
    /// The related tables.
    #[serde(default)]
    pub relations: Vec<RelationSpec>,
    /// `validate` refuses a `many_to_one` or `many_to_many` relation whose busiest related
    /// row is shared by more parent rows than this: one change to it rebuilds them all.
    /// Default 100,000.
    #[serde(default = "default_max_fan_out")]
    pub max_fan_out: u64,
    /// Roots per batch (one query per relation per batch). Default 500.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Change streams: milliseconds during which changes are gathered and their documents
    /// deduplicated before they are rebuilt. Default 50.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Change streams: batches of documents rebuilt at the same time. Default 2.
    #[serde(default = "default_concurrency")]
    pub rebuild_concurrency: usize,
}

impl DocumentSpec {
    /// A document named `name` rooted at `table`, with the default settings.
    pub fn new(name: impl Into<String>, table: impl Into<String>) -> Self {
        DocumentSpec {
            name: name.into(),
            table: table.into(),
            key: Vec::new(),
            columns: Vec::new(),
            transforms: Vec::new(),
            routing: None,
            join_field: default_join_field(),
            relations: Vec::new(),
            max_fan_out: default_max_fan_out(),
            batch_size: default_batch_size(),
            window_ms: default_window_ms(),
            rebuild_concurrency: default_concurrency(),
        }
    }

    /// Adds a relation.
    pub fn relation(mut self, r: RelationSpec) -> Self {
        self.relations.push(r);
        self
    }

    /// Keeps only these root columns.
    pub fn columns<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.columns = cols.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a transform of the root row.
    pub fn transform(mut self, t: TransformSpec) -> Self {
        self.transforms.push(t);
        self
    }

    /// Routes documents by a root field.
    pub fn routing(mut self, field: impl Into<String>) -> Self {
        self.routing = Some(field.into());
        self
    }

    /// Roots per batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// The largest fan-out `validate` accepts.
    pub fn max_fan_out(mut self, n: u64) -> Self {
        self.max_fan_out = n;
        self
    }
}

impl RelationSpec {
    fn new(field: impl Into<String>, table: impl Into<String>, kind: RelationKind) -> Self {
        RelationSpec {
            field: field.into(),
            name: None,
            parent: None,
            table: table.into(),
            kind,
            foreign_key: Vec::new(),
            references: Vec::new(),
            through: None,
            key: Vec::new(),
            columns: Vec::new(),
            transforms: Vec::new(),
            scalar: None,
            nested: false,
            order_by: Vec::new(),
            child_documents: false,
        }
    }

    fn strings<S: Into<String>>(v: impl IntoIterator<Item = S>) -> Vec<String> {
        v.into_iter().map(Into::into).collect()
    }

    /// `table` holds `foreign_key` referencing the parent; at most one row per parent.
    pub fn one_to_one<S: Into<String>>(
        field: impl Into<String>,
        table: impl Into<String>,
        foreign_key: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut r = RelationSpec::new(field, table, RelationKind::OneToOne);
        r.foreign_key = Self::strings(foreign_key);
        r
    }

    /// The parent holds `foreign_key` referencing `table`.
    pub fn many_to_one<S: Into<String>>(
        field: impl Into<String>,
        table: impl Into<String>,
        foreign_key: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut r = RelationSpec::new(field, table, RelationKind::ManyToOne);
        r.foreign_key = Self::strings(foreign_key);
        r
    }

    /// `table` holds `foreign_key` referencing the parent: an array.
    pub fn one_to_many<S: Into<String>>(
        field: impl Into<String>,
        table: impl Into<String>,
        foreign_key: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut r = RelationSpec::new(field, table, RelationKind::OneToMany);
        r.foreign_key = Self::strings(foreign_key);
        r
    }

    /// Rows of `table` related through `through`, whose `foreign_key` references the parent
    /// and `target_key` references `table`: an array.
    pub fn many_to_many<S: Into<String>, T: Into<String>>(
        field: impl Into<String>,
        table: impl Into<String>,
        through: impl Into<String>,
        foreign_key: impl IntoIterator<Item = S>,
        target_key: impl IntoIterator<Item = T>,
    ) -> Self {
        let mut r = RelationSpec::new(field, table, RelationKind::ManyToMany);
        r.through = Some(ThroughSpec {
            table: through.into(),
            foreign_key: Self::strings(foreign_key),
            target_key: Self::strings(target_key),
            target_references: Vec::new(),
        });
        r
    }

    /// Hangs the relation under the relation named `parent`.
    pub fn under(mut self, parent: impl Into<String>) -> Self {
        self.parent = Some(parent.into());
        self
    }

    /// Names the relation (for `parent` references) when its field name is not unique.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The columns the foreign key references (default: the key).
    pub fn references<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.references = Self::strings(cols);
        self
    }

    /// Keeps only these columns of the related table.
    pub fn columns<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.columns = Self::strings(cols);
        self
    }

    /// Adds a transform of each related row.
    pub fn transform(mut self, t: TransformSpec) -> Self {
        self.transforms.push(t);
        self
    }

    /// Writes only this column's values.
    pub fn scalar(mut self, column: impl Into<String>) -> Self {
        self.scalar = Some(column.into());
        self
    }

    /// Maps the field as `nested`.
    pub fn nested(mut self) -> Self {
        self.nested = true;
        self
    }

    /// Orders array elements by these columns (`-col` descending), then the key.
    pub fn order_by<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.order_by = Self::strings(cols);
        self
    }

    /// Writes the related rows as child documents with a join field.
    pub fn child_documents(mut self) -> Self {
        self.child_documents = true;
        self
    }

    /// The relation's name (`name`, else `field`).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormal_job_file_form_parses_with_defaults() {
        let spec: DocumentSpec = serde_json::from_value(serde_json::json!({
            "name": "orders", "table": "orders",
            "relations": [
                {"field": "items", "table": "order_items", "kind": "one_to_many",
                 "foreign_key": ["order_id"], "nested": true},
                {"field": "tags", "parent": "items", "table": "tags", "kind": "many_to_many",
                 "through": {"table": "t", "foreign_key": ["a"], "target_key": ["b"]},
                 "scalar": "name"}
            ]
        }))
        .unwrap();
        assert_eq!(spec.batch_size, 500);
        assert_eq!(spec.join_field, "doc_join");
        assert_eq!(spec.relations[1].name(), "tags");
        assert!(spec.relations[0].nested);
        let bad = serde_json::from_value::<DocumentSpec>(serde_json::json!({
            "name": "o", "table": "o", "relations": [{"field": "x", "table": "t", "kind": "many"}]
        }));
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }
}

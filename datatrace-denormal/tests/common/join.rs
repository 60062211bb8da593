//! The shop's customers with their orders as child documents (a join field), and the
//! expected documents of that shape.

use std::collections::BTreeMap;

use datatrace_denormal::DocumentSpec;
use serde_json::{json, Value as Json};

use super::{canon, customers_spec, index_docs, pick, Tables};

/// customers with their orders as child documents (join field `doc_join`), each order
/// embedding its lines, products and tags.
pub fn customers_with_child_orders(name: &str) -> DocumentSpec {
    let mut spec = customers_spec(name);
    spec.relations[0].nested = false;
    spec.relations[0].order_by.clear();
    spec.relations[0].child_documents = true;
    spec.relations[1].nested = true;
    spec
}

impl Tables {
    /// The expected documents of [`customers_with_child_orders`]: id -> (source, routing).
    pub fn customers_join_docs(&self, name: &str) -> BTreeMap<String, (Json, Option<String>)> {
        let mut out = BTreeMap::new();
        for (id, c) in &self.customers {
            let mut doc = c.as_object().unwrap().clone();
            doc.insert("doc_join".into(), json!({"name": name}));
            out.insert(format!("{name}#{id}"), (Json::Object(doc), None));
        }
        for (oid, (cust, o)) in &self.orders {
            let Some(cid) = cust.filter(|c| self.customers.contains_key(c)) else {
                continue;
            };
            let mut m = pick(o, &["id", "status", "placed_on"]);
            let lines: Vec<Json> = self
                .items
                .iter()
                .filter(|(_, (order, _, _))| order == oid)
                .map(|(_, (_, product, item))| {
                    let mut l = pick(item, &["id", "qty"]);
                    l.insert(
                        "product".into(),
                        self.product(*product, &["id", "sku", "price"]),
                    );
                    Json::Object(l)
                })
                .collect();
            m.insert("lines".into(), Json::Array(lines));
            let parent = format!("{name}#{cid}");
            m.insert(
                "doc_join".into(),
                json!({"name": "orders", "parent": parent}),
            );
            out.insert(format!("orders#{oid}"), (Json::Object(m), Some(parent)));
        }
        out
    }
}

/// Asserts the index holds exactly `expected`, routings included.
pub fn assert_routed_docs(index: &str, expected: &BTreeMap<String, (Json, Option<String>)>) {
    let got = index_docs(index);
    for (id, (want, routing)) in expected {
        let Some((have, r)) = got.get(id) else {
            panic!("{index}: document {id} is missing; expected {want}");
        };
        assert_eq!(canon(have), canon(want), "{index}: document {id} differs");
        assert_eq!(r, routing, "{index}: document {id} has another routing");
    }
    for id in got.keys() {
        assert!(
            expected.contains_key(id),
            "{index}: document {id} should not exist: {}",
            got[id].0
        );
    }
}

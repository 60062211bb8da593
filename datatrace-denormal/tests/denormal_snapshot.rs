//! Snapshots of denormalized documents against the real engine: the documents equal an
//! independent oracle, the generated mapping has `nested` and `object` fields, and nested
//! queries find the roots SQL finds.

mod common;

use common::*;
use datatrace_testkit::engine;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_snapshot_of_orders_equals_the_oracle() {
    let db = shop(300);
    let idx = index("denormal-orders");
    let s = sink(&idx).await;
    let docs = documents(&db, vec![orders_spec("orders")], &s).await;
    let written = copy(docs.snapshot("orders").unwrap(), "orders", s.clone()).await;
    let want = tables(&db).await.orders_docs();
    assert_eq!(written, want.len() as u64);
    assert_docs(&idx, &want);

    // The mapping: items nested, product and customer objects, tags keyword text.
    let m = engine()
        .request("GET", &format!("/{idx}/_mapping"), None)
        .json();
    let props = &m[&idx]["mappings"]["properties"];
    assert_eq!(props["items"]["type"], "nested", "{props}");
    // Objects are the default type: the engine shows their properties only.
    assert!(props["items"]["properties"]["product"]["type"].is_null());
    assert_eq!(
        props["items"]["properties"]["product"]["properties"]["price"]["type"],
        "scaled_float"
    );
    assert_eq!(
        props["items"]["properties"]["product"]["properties"]["tags"]["type"],
        "text"
    );
    assert_eq!(props["customer"]["properties"]["tier"]["type"], "text");
    assert_eq!(props["placed_on"]["type"], "date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_snapshot_of_customers_four_levels_deep() {
    let db = shop(200);
    let idx = index("denormal-customers");
    let s = sink(&idx).await;
    let docs = documents(&db, vec![customers_spec("customers")], &s).await;
    copy(docs.snapshot("customers").unwrap(), "customers", s.clone()).await;
    assert_docs(&idx, &tables(&db).await.customers_docs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_nested_queries_find_what_sql_finds() {
    let db = shop(200);
    let idx = index("denormal-nested");
    let s = sink(&idx).await;
    let docs = documents(&db, vec![orders_spec("orders")], &s).await;
    copy(docs.snapshot("orders").unwrap(), "orders", s.clone()).await;
    engine().refresh(&idx);
    let pairs: Vec<(String, i64)> = exec(
        &db,
        "SELECT p.sku, i.qty FROM order_items i JOIN products p ON p.id = i.product_id GROUP BY 1, 2 ORDER BY COUNT(*) DESC, 1, 2 LIMIT 3",
    )
    .lines()
    .map(|l| {
        let (s, q) = l.split_once('\t').unwrap();
        (s.to_string(), q.trim().parse().unwrap())
    })
    .collect();
    assert_eq!(pairs.len(), 3);
    for (sku, qty) in pairs {
        // One item with both this product and this quantity (nested: not across items).
        let q = json!({"size": 1000, "_source": false, "query": {"nested": {"path": "items", "query": {"bool": {"must": [
            {"term": {"items.product.sku.keyword": sku}},
            {"term": {"items.qty": qty}}
        ]}}}}});
        let r = engine().request("POST", &format!("/{idx}/_search"), Some(&q.to_string()));
        assert_eq!(r.status, 200, "{}", r.body);
        let mut got: Vec<i64> = r.json()["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().parse().unwrap())
            .collect();
        got.sort();
        let want: Vec<i64> = exec(
            &db,
            &format!("SELECT DISTINCT i.order_id FROM order_items i JOIN products p ON p.id = i.product_id WHERE p.sku = '{sku}' AND i.qty = {qty} ORDER BY 1"),
        )
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
        assert!(!want.is_empty(), "the shop has an item of {sku} x {qty}");
        assert_eq!(got, want, "orders with an item of {sku} x {qty}");
    }
}

//! Routing and child documents under change streams, on an index of 3 shards: a document
//! whose routing column changes moves to its new shard and leaves nothing on the old one;
//! child documents (join field) follow their parents, and `has_child` queries find what SQL
//! finds.

mod common;

use common::changes::Changer;
use common::*;
use datatrace_testkit::engine;
use serde_json::json;

fn seed() -> u64 {
    std::env::var("DENORMAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_routing_follows_the_routing_column_across_shards() {
    let seed = seed();
    eprintln!("denormal seed: {seed} (DENORMAL_SEED={seed} reproduces it)");
    let db = shop(320);
    let idx = index("denormal-routed");
    let s = sink(&idx).await;
    let docs = documents(&db, vec![orders_spec("orders").routing("customer_id")], &s).await;
    let cdc = cdc_from_now(&db).await;
    copy(docs.snapshot("orders").unwrap(), "orders", s.clone()).await;
    let run = run_stream(
        docs.binlog_stream("documents", cdc).unwrap(),
        s.clone(),
        stream_config(),
    );
    // Orders move between customers (and to none): their documents move between shards.
    exec(
        &db,
        "UPDATE orders SET customer_id = 1 + (customer_id + 7) % 80 WHERE id % 5 = 0",
    );
    exec(&db, "UPDATE orders SET customer_id = NULL WHERE id % 7 = 1");
    let mut changer = Changer::new(mysql(&db).await, seed);
    changer.run(400).await;
    exec(
        &db,
        "UPDATE orders SET customer_id = 3 WHERE customer_id IS NULL AND id % 2 = 0",
    );
    run.catch_up(&db).await;
    let t = tables(&db).await;
    let want = t
        .orders_docs()
        .into_iter()
        .map(|(id, d)| {
            let routing = d["customer_id"].as_i64().map(|c| c.to_string());
            (id, (d, routing))
        })
        .collect();
    assert_routed_docs(&idx, &want);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_child_documents_follow_their_parents() {
    let seed = seed();
    eprintln!("denormal seed: {seed} (DENORMAL_SEED={seed} reproduces it)");
    let db = shop(320);
    let idx = index("denormal-join");
    let s = sink(&idx).await;
    let docs = documents(&db, vec![customers_with_child_orders("customers")], &s).await;
    assert_eq!(docs.units(), ["customers", "customers.orders"]);
    let cdc = cdc_from_now(&db).await;
    for (unit, source) in docs.snapshots().unwrap() {
        copy(source, &unit, s.clone()).await;
    }
    assert_routed_docs(&idx, &tables(&db).await.customers_join_docs("customers"));
    let run = run_stream(
        docs.binlog_stream("documents", cdc).unwrap(),
        s.clone(),
        stream_config(),
    );
    let mut changer = Changer::new(mysql(&db).await, seed);
    changer.run(500).await;
    run.catch_up(&db).await;
    assert_routed_docs(&idx, &tables(&db).await.customers_join_docs("customers"));
    run.stop().await;

    // has_child: customers with a shipped order holding a line of quantity 3.
    engine().refresh(&idx);
    let q = json!({"size": 1000, "_source": false, "query": {"has_child": {"type": "orders", "query": {"bool": {"must": [
        {"term": {"status.keyword": "shipped"}},
        {"nested": {"path": "lines", "query": {"term": {"lines.qty": 3}}}}
    ]}}}}});
    let r = engine().request("POST", &format!("/{idx}/_search"), Some(&q.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut got: Vec<String> = r.json()["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = exec(
        &db,
        "SELECT DISTINCT c.id FROM customers c JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id WHERE o.status = 'shipped' AND i.qty = 3",
    )
    .lines()
    .map(|l| format!("customers#{}", l.trim()))
    .collect();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

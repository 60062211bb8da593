//! `check` of denormalized documents: a damaged index (a document lost, one changed, one
//! left on a stale routing, extras) is found different, and `repair` makes it equal again.

mod common;

use std::time::Duration;

use common::*;
use datatrace_denormal::check::{check_unit, CheckOptions};
use datatrace_testkit::engine;

/// Writes (or with `body: None` deletes) a document as an older writer would: with an
/// external version a little above the one it has, below the binlog's current position.
fn damage(index: &str, id: &str, routing: Option<&str>, version: u64, body: Option<&str>) {
    // Child document ids and routings hold `#`, which would start a URL's fragment.
    let enc = |s: &str| s.replace('#', "%23");
    let r = routing
        .map(|r| format!("&routing={}", enc(r)))
        .unwrap_or_default();
    let id = enc(id);
    let method = if body.is_some() { "PUT" } else { "DELETE" };
    let reply = engine().request(
        method,
        &format!("/{index}/_doc/{id}?version={version}&version_type=external{r}"),
        body,
    );
    assert!(reply.status < 300, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_check_finds_damage_and_repair_fixes_it() {
    let db = shop(80);
    let idx = index("denormal-check");
    let es = sink(&idx).await;
    let docs = documents(&db, vec![orders_spec("orders").routing("customer_id")], &es).await;
    copy(docs.snapshot("orders").unwrap(), "orders", es.clone()).await;
    let opts = CheckOptions {
        recheck_delay: Duration::from_millis(200),
        page: 30,
        ..Default::default()
    };
    let clean = check_unit(&docs, "orders", &es, &opts).await.unwrap();
    assert!(clean.equal(), "{clean:?}");
    assert_eq!(clean.expected, 80);
    assert_eq!(clean.found, 80);

    // The binlog moves on (other work on the server); then an older writer damages the
    // index: order 3 lost, order 4 changed, order 5 also on a stale routing, and two
    // documents that should not exist.
    let v = now_ordinal(&db).await;
    exec(
        &db,
        "CREATE TABLE unrelated (id INT PRIMARY KEY); INSERT INTO unrelated VALUES (1), (2), (3)",
    );
    let docs_now = index_docs(&idx);
    let (mut d4, r4) = docs_now["4"].clone();
    d4["status"] = serde_json::json!("tampered");
    damage(&idx, "3", docs_now["3"].1.as_deref(), v + 1, None);
    damage(&idx, "4", r4.as_deref(), v + 1, Some(&d4.to_string()));
    damage(
        &idx,
        "5",
        Some("stale-routing"),
        v + 1,
        Some(&docs_now["5"].0.to_string()),
    );
    damage(&idx, "999999", Some("1"), v + 1, Some(r#"{"id": 999999}"#));
    damage(&idx, "not-an-order", None, v + 1, Some(r#"{"id": -1}"#));
    let found = check_unit(&docs, "orders", &es, &opts).await.unwrap();
    assert_eq!(
        (found.missing, found.different, found.extra),
        (1, 1, 3),
        "{found:#?}"
    );
    assert!(!found.shown.is_empty());

    let repair = CheckOptions {
        repair: true,
        delete_extra: true,
        ..opts.clone()
    };
    let repaired = check_unit(&docs, "orders", &es, &repair).await.unwrap();
    assert_eq!(repaired.rewritten, 2, "{repaired:#?}");
    assert_eq!(repaired.deleted, 3, "{repaired:#?}");
    let after = check_unit(&docs, "orders", &es, &opts).await.unwrap();
    assert!(after.equal(), "{after:#?}");
    let t = tables(&db).await;
    assert_docs(&idx, &t.orders_docs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_check_and_repair_child_documents() {
    let db = shop(80);
    let idx = index("denormal-check-join");
    let es = sink(&idx).await;
    let docs = documents(&db, vec![customers_with_child_orders("customers")], &es).await;
    for (unit, source) in docs.snapshots().unwrap() {
        copy(source, &unit, es.clone()).await;
    }
    let opts = CheckOptions {
        recheck_delay: Duration::from_millis(200),
        page: 30,
        ..Default::default()
    };
    for unit in ["customers", "customers.orders"] {
        let clean = check_unit(&docs, unit, &es, &opts).await.unwrap();
        assert!(clean.equal(), "{unit}: {clean:?}");
    }

    // An older writer damages the child documents: one lost, one changed, one orphan (its
    // order does not exist) and one child of a parent that does not exist.
    let v = now_ordinal(&db).await;
    exec(
        &db,
        "CREATE TABLE unrelated (id INT PRIMARY KEY); INSERT INTO unrelated VALUES (1), (2)",
    );
    let now = index_docs(&idx);
    let children: Vec<&String> = now
        .keys()
        .filter(|k| k.starts_with("orders#") && *k != "orders#1")
        .collect();
    assert!(now.contains_key("orders#1"), "order 1 has a customer");
    let (lost, changed) = (children[0].clone(), children[1].clone());
    damage(&idx, &lost, now[&lost].1.as_deref(), v + 1, None);
    let (mut d, r) = now[&changed].clone();
    d["status"] = serde_json::json!("tampered");
    damage(&idx, &changed, r.as_deref(), v + 1, Some(&d.to_string()));
    let orphan = serde_json::json!({"id": 999999, "status": "new", "lines": [],
        "doc_join": {"name": "orders", "parent": "customers#1"}});
    damage(
        &idx,
        "orders#999999",
        Some("customers#1"),
        v + 1,
        Some(&orphan.to_string()),
    );
    let stray = serde_json::json!({"id": 1, "status": "new", "lines": [],
        "doc_join": {"name": "orders", "parent": "customers#999999"}});
    damage(
        &idx,
        "orders#1",
        Some("customers#999999"),
        v + 1,
        Some(&stray.to_string()),
    );

    // The parents are untouched; the children's unit finds each damage.
    let parents = check_unit(&docs, "customers", &es, &opts).await.unwrap();
    assert!(parents.equal(), "{parents:#?}");
    let found = check_unit(&docs, "customers.orders", &es, &opts)
        .await
        .unwrap();
    assert_eq!(found.missing, 1, "{found:#?}");
    assert!(found.different >= 1, "{found:#?}");
    assert!(found.extra >= 1, "{found:#?}");

    let repair = CheckOptions {
        repair: true,
        delete_extra: true,
        ..opts.clone()
    };
    check_unit(&docs, "customers.orders", &es, &repair)
        .await
        .unwrap();
    let after = check_unit(&docs, "customers.orders", &es, &opts)
        .await
        .unwrap();
    assert!(after.equal(), "{after:#?}");
    assert_routed_docs(&idx, &tables(&db).await.customers_join_docs("customers"));
}

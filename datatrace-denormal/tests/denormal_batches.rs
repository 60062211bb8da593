//! Batching, measured on the source server: a snapshot reads one statement per relation per
//! batch of roots (never one per root), each statement's result bounded by the batch (not
//! by the table); a change stream deduplicates the documents of a window, rebuilding a
//! document changed many times once.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use datatrace_denormal::{Documents, IndexShape};
use datatrace_mysql::{ConnectionConfig, MySqlConnection, SourceOptions};
use datatrace_testkit::MariaDb;

/// What the server's slow log (every statement, `long_query_time = 0`) says about the
/// statements whose text contains `needle`: how many ran, and the most rows one returned.
fn logged(server: &MariaDb, needle: &str) -> (usize, u64) {
    let out = server.exec(&format!(
        "SELECT COUNT(*), COALESCE(MAX(rows_sent), 0) FROM mysql.slow_log WHERE sql_text LIKE '%{}%'",
        needle.replace('\'', "''")
    ));
    let mut f = out.split_whitespace();
    let n = f.next().and_then(|s| s.parse().ok()).expect("count");
    let max = f.next().and_then(|s| s.parse().ok()).expect("max rows");
    (n, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_snapshot_reads_one_statement_per_relation_per_batch() {
    // A server of its own, so that its log holds this test's statements only.
    let server = MariaDb::dedicated();
    const N: usize = 300;
    const B: usize = 16;
    let db = shop_on(&server, N as u32);
    let items_rows: u64 = server
        .exec(&format!("SELECT COUNT(*) FROM `{db}`.order_items"))
        .trim()
        .parse()
        .unwrap();
    server.exec(
        "SET GLOBAL log_output = 'TABLE'; SET GLOBAL long_query_time = 0; \
         SET GLOBAL slow_query_log = 1; TRUNCATE mysql.slow_log",
    );

    let idx = index("denormal-batches");
    let s = sink(&idx).await;
    let conn = MySqlConnection::connect(&ConnectionConfig::new(server.url_for(&db)))
        .await
        .expect("connect");
    let opts = SourceOptions {
        chunk_rows: 100,
        ..Default::default()
    };
    let docs = Documents::resolve_with(
        &conn,
        vec![orders_spec("orders").batch_size(B)],
        IndexShape::of(&s),
        opts,
    )
    .await
    .expect("resolve");
    let written = copy(docs.snapshot("orders").unwrap(), "orders", s.clone()).await;
    server.exec("SET GLOBAL slow_query_log = 0");
    assert_eq!(written, N as u64);
    // The documents are right (the count alone would not show it).
    assert_docs(&idx, &tables_on(&server, &db).await.orders_docs());

    // Pages: at least ceil(N / B); at most that plus one partial page per part of the
    // table (parts of about 100 roots: a handful).
    let pages = N.div_ceil(B);
    let most = pages + 8;
    let t = |name: &str| format!("`{db}`.`{name}` AS `c`");
    let tops = logged(&server, &format!("FROM `{db}`.`orders` WHERE"));
    let tops_first = logged(&server, &format!("FROM `{db}`.`orders` ORDER BY"));
    let customer = logged(&server, &t("customers"));
    let items = logged(&server, &t("order_items"));
    let product = logged(&server, &t("products"));
    let tags = logged(&server, &format!("`{db}`.`product_tags` AS `j` JOIN"));
    let report = format!(
        "statements (count, max rows): tops {tops:?} + {tops_first:?}, customer {customer:?}, \
         items {items:?}, product {product:?}, tags {tags:?}; {N} roots in batches of {B}"
    );
    eprintln!("{report}");
    for (name, (n, _)) in [
        ("customer", customer),
        ("items", items),
        ("product", product),
        ("tags", tags),
    ] {
        assert!(
            (pages..=most).contains(&n),
            "{name}: {n} statements for {N} roots in batches of {B}, expected one per batch \
             ({pages} to {most}); one per root would be {N}: {report}"
        );
    }
    let top_statements = tops.0 + tops_first.0;
    assert!(
        (pages..=most + 8).contains(&top_statements),
        "{top_statements} page statements of orders: {report}"
    );
    // Memory: every statement returns a batch's rows, never a table's.
    assert!(tops.1.max(tops_first.1) <= B as u64, "{report}");
    assert!(customer.1 <= B as u64, "{report}");
    assert!(
        items.1 <= 4 * B as u64 && items.1 * 4 < items_rows,
        "an order has at most 4 lines; the table has {items_rows}: {report}"
    );
}

/// The stream's counters now: (changes, windows, lookups, batches, documents).
fn counters(s: &datatrace_denormal::StreamStats) -> [u64; 5] {
    [
        s.changes.load(Ordering::Relaxed),
        s.windows.load(Ordering::Relaxed),
        s.lookups.load(Ordering::Relaxed),
        s.batches.load(Ordering::Relaxed),
        s.documents.load(Ordering::Relaxed),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_stream_rebuilds_a_document_changed_many_times_in_a_window_once() {
    let db = shop(40);
    let idx = index("denormal-dedup");
    let s = sink(&idx).await;
    // Batches of 2 and a long window (the changes below come in well within it): without
    // deduplication the repeated document would fill several batches and the window's
    // limit (8 batches: 16 documents or lookups), which flushes it early.
    let mut spec = orders_spec("orders").batch_size(2);
    spec.window_ms = 10_000;
    let docs = documents(&db, vec![spec], &s).await;
    let cdc = cdc_from_now(&db).await;
    copy(docs.snapshot("orders").unwrap(), "orders", s.clone()).await;
    let stream = run_stream(
        docs.binlog_stream("documents", cdc).unwrap(),
        s.clone(),
        stream_config(),
    );
    let lines: u64 = exec(&db, "SELECT COUNT(*) FROM order_items WHERE order_id = 7")
        .trim()
        .parse()
        .unwrap();
    assert!(lines >= 2, "order 7 has lines");

    // Order 7's row and every one of its lines, updated 20 times, in 40 transactions.
    let mut sql = String::new();
    for i in 0..20 {
        sql.push_str(&format!(
            "UPDATE orders SET status = 's{i}' WHERE id = 7; \
             UPDATE order_items SET qty = qty + 1 WHERE order_id = 7;"
        ));
    }
    let before = counters(&stream.stats);
    exec(&db, &sql);
    stream.catch_up(&db).await;
    let after = counters(&stream.stats);
    let d: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let report = format!("changes, windows, lookups, batches, documents: {d:?}");
    eprintln!("one order: {report}");
    assert!(
        d[0] >= 20 * (1 + lines),
        "every change reached the stream: {report}"
    );
    assert_eq!(d[1], 1, "one window: {report}");
    assert_eq!(
        d[2], 0,
        "the lines' order is known without a lookup: {report}"
    );
    assert_eq!(d[3], 1, "one batch: {report}");
    assert_eq!(d[4], 1, "one rebuild of order 7: {report}");

    // A shared row (order 7's customer) renamed 20 times, in 20 transactions: one lookup,
    // each of the customer's orders rebuilt once.
    let customer = exec(&db, "SELECT customer_id FROM orders WHERE id = 7");
    let customer: i64 = customer.trim().parse().expect("order 7 has a customer");
    let orders: u64 = exec(
        &db,
        &format!("SELECT COUNT(*) FROM orders WHERE customer_id = {customer}"),
    )
    .trim()
    .parse()
    .unwrap();
    assert!(orders >= 2, "customer {customer} has several orders");
    let mut sql = String::new();
    for i in 0..20 {
        sql.push_str(&format!(
            "UPDATE customers SET name = 'renamed {i}' WHERE id = {customer};"
        ));
    }
    let before = counters(&stream.stats);
    exec(&db, &sql);
    stream.catch_up(&db).await;
    let after = counters(&stream.stats);
    let d: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let report = format!("changes, windows, lookups, batches, documents: {d:?}");
    eprintln!("one customer: {report}");
    assert!(d[0] >= 20, "every change reached the stream: {report}");
    assert_eq!(d[1], 1, "one window: {report}");
    assert_eq!(d[2], 1, "one lookup of the customer's orders: {report}");
    assert_eq!(d[3], orders.div_ceil(2), "batches of 2: {report}");
    assert_eq!(
        d[4], orders,
        "each of the customer's orders rebuilt once: {report}"
    );

    assert_docs(&idx, &tables(&db).await.orders_docs());
    stream.stop().await;
}

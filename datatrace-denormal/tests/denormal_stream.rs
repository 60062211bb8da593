//! Change streams of denormalized documents against the real engine: after a random
//! stream of inserts, updates (foreign-key moves and key changes included) and deletes on
//! every table, the documents equal an independent oracle and a fresh snapshot, exactly.

mod common;

use common::changes::Changer;
use common::*;

fn seed() -> u64 {
    std::env::var("DENORMAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_random_changes_on_every_table_end_equal_to_a_fresh_snapshot() {
    let seed = seed();
    eprintln!("denormal seed: {seed} (DENORMAL_SEED={seed} reproduces it)");
    let db = shop(320);
    let (oi, ci) = (index("denormal-s-orders"), index("denormal-s-customers"));
    let (os, cs) = (sink(&oi).await, sink(&ci).await);
    let odocs = documents(&db, vec![orders_spec("orders")], &os).await;
    let cdocs = documents(&db, vec![customers_spec("customers")], &cs).await;
    // The stream starts at a position taken before the snapshots (the handoff).
    let cdc = cdc_from_now(&db).await;
    copy(odocs.snapshot("orders").unwrap(), "orders", os.clone()).await;
    copy(
        cdocs.snapshot("customers").unwrap(),
        "customers",
        cs.clone(),
    )
    .await;
    let ostream = run_stream(
        odocs.binlog_stream("documents", cdc.clone()).unwrap(),
        os.clone(),
        stream_config(),
    );
    let mut cdc2 = cdc.clone();
    cdc2.server_id += 500;
    let cstream = run_stream(
        cdocs.binlog_stream("documents", cdc2).unwrap(),
        cs.clone(),
        stream_config(),
    );

    let mut changer = Changer::new(mysql(&db).await, seed);
    changer.run(600).await;
    ostream.catch_up(&db).await;
    cstream.catch_up(&db).await;
    let t = tables(&db).await;
    assert_docs(&oi, &t.orders_docs());
    assert_docs(&ci, &t.customers_docs());
    eprintln!(
        "orders stream: {} changes, {} windows, {} lookups, {} batches, {} documents, {} deletes",
        ostream
            .stats
            .changes
            .load(std::sync::atomic::Ordering::Relaxed),
        ostream
            .stats
            .windows
            .load(std::sync::atomic::Ordering::Relaxed),
        ostream
            .stats
            .lookups
            .load(std::sync::atomic::Ordering::Relaxed),
        ostream
            .stats
            .batches
            .load(std::sync::atomic::Ordering::Relaxed),
        ostream
            .stats
            .documents
            .load(std::sync::atomic::Ordering::Relaxed),
        ostream
            .stats
            .deletes
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    ostream.stop().await;
    cstream.stop().await;

    // A fresh snapshot gives the very same documents, byte for byte.
    let fresh = index("denormal-s-fresh");
    let fs = sink(&fresh).await;
    let fdocs = documents(&db, vec![orders_spec("orders")], &fs).await;
    copy(fdocs.snapshot("orders").unwrap(), "orders", fs.clone()).await;
    let (a, b) = (index_docs(&oi), index_docs(&fresh));
    assert_eq!(a.len(), b.len());
    for (id, (doc, _)) in &b {
        assert_eq!(&a[id].0, doc, "document {id} (seed {seed})");
    }
}

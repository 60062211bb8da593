//! Every MySQL type through the binlog path equals the same row through the snapshot path
//! (the table and edge values of the round-trip test, plus updates and deletes of them).

mod all_types;
mod cdc;

use std::sync::Arc;

use all_types::{ALL_TYPES, ROWS};
use cdc::*;
use datatrace_core::{Emitted, Emitter, Op, Record, Source, Value};
use datatrace_mysql::{table_info, MySqlSource, SourceOptions, ZeroDate};

async fn snapshot_rows(database: &str, zero_date: ZeroDate) -> Vec<Record> {
    let conn = connect(database).await;
    let info = table_info(&conn, database, "all_types")
        .await
        .expect("info");
    let s = Arc::new(
        MySqlSource::new(
            conn,
            info,
            SourceOptions {
                zero_date,
                ..Default::default()
            },
        )
        .expect("source"),
    );
    let mut out = Vec::new();
    for p in s.split(1).await.expect("split") {
        let (mut em, mut rx) = Emitter::for_test(100, 1_000_000);
        let s2 = s.clone();
        let t = tokio::spawn(async move {
            let r = s2.read(&p, None, &mut em).await;
            em.flush().await.expect("flush");
            r
        });
        while let Some(m) = rx.recv().await {
            if let Emitted::Records(r) = m {
                out.extend(r);
            }
        }
        t.await.expect("join").expect("read");
    }
    out.sort_by_key(|r| r.values[0].as_i64());
    out
}

fn by_id(rows: &[Record], id: i64) -> &Record {
    rows.iter()
        .find(|r| r.values[0] == Value::Int(id))
        .expect("row")
}

async fn every_type(zero_date: ZeroDate) {
    let d = db().create_database("cdc_types");
    exec(&format!("USE `{d}`; {ALL_TYPES}"));
    let start = now().await;
    exec(&format!("USE `{d}`; SET sql_mode=''; {ROWS}"));
    // Updates of every column (row 3 takes row 2's values and back) and a delete.
    exec(&format!(
        "USE `{d}`; SET sql_mode=''; UPDATE all_types SET id = 6 WHERE id = 4; UPDATE all_types SET id = 4 WHERE id = 6; DELETE FROM all_types WHERE id = 1;"
    ));
    let o = datatrace_mysql::binlog::CdcOptions {
        zero_date,
        ..opts(&d, &start)
    };
    let got = capture(o, None, |c| c.records.len() >= 8).await;
    let snap = snapshot_rows(&d, zero_date).await;
    let inserts: Vec<&Record> = got.records.iter().filter(|r| r.op == Op::Insert).collect();
    assert_eq!(inserts.len(), 5);
    // Inserted rows 2, 3, 5 are unchanged since: equal to the snapshot, column by column.
    for id in [2, 3, 5] {
        let b = inserts
            .iter()
            .find(|r| r.values[0] == Value::Int(id))
            .expect("insert");
        let s = by_id(&snap, id);
        assert_eq!(b.schema.columns(), s.schema.columns(), "schema of row {id}");
        for (i, col) in s.schema.columns().iter().enumerate() {
            assert_eq!(b.values[i], s.values[i], "row {id}, column {}", col.name);
        }
    }
    // Row 4 went to 6 and back: the second update's after-image is the snapshot's row 4,
    // its before-image the first update's after-image.
    let ups: Vec<&Record> = got.records.iter().filter(|r| r.op == Op::Update).collect();
    assert_eq!(ups.len(), 2);
    let s4 = by_id(&snap, 4);
    assert_eq!(ups[1].values, s4.values);
    assert_eq!(ups[1].before.as_ref().expect("before")[0], Value::Int(6));
    assert_eq!(ups[0].before.as_ref().expect("before"), &s4.values);
    let del = got
        .records
        .iter()
        .find(|r| r.op == Op::Delete)
        .expect("delete");
    assert_eq!(del.values[0], Value::Int(1));
    assert!(del.values[1..].iter().all(Value::is_null));
    // Every record has an ordinal and a commit time; ordinals never go down.
    let ords: Vec<u64> = got
        .records
        .iter()
        .map(|r| {
            r.position
                .as_ref()
                .and_then(|p| p.ordinal)
                .expect("ordinal")
        })
        .collect();
    assert!(ords.windows(2).all(|w| w[0] <= w[1]), "{ords:?}");
    assert!(got
        .records
        .iter()
        .all(|r| r.position.as_ref().and_then(|p| p.ts_ms).is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_through_the_binlog_equals_the_snapshot() {
    every_type(ZeroDate::Keep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_dates_follow_the_same_policy() {
    every_type(ZeroDate::Null).await;
}

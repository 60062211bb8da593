//! Sink features against the test run's search engine: index creation from a table schema, naming patterns,
//! deletes, partial updates, external versioning, bulk-load settings, gzip.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use datatrace_core::testing::MemorySource;
use datatrace_core::{
    Column, DataType, Op, Pipeline, PipelineConfig, Position, Record, RunStatus, Schema, Sink,
    Value,
};
use datatrace_es::{
    EsSink, EsSource, IndexSettings, RefreshPolicy, SinkConfig, SourceConfig, VersionSource,
    WriteAction,
};
use datatrace_testkit::{engine, unique_name};
use serde_json::json;

fn table(name: &str) -> Arc<Schema> {
    Arc::new(
        Schema::new(
            name,
            vec![
                // INT UNSIGNED: below 2^63, so `long` where the cluster has no unsigned_long
                // (64-bit ones: tests/unsigned.rs).
                Column::new("id", DataType::UInt)
                    .not_null()
                    .native("int(10) unsigned"),
                Column::new("region", DataType::String).not_null(),
                Column::new(
                    "price",
                    DataType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                Column::new(
                    "exact",
                    DataType::Decimal {
                        precision: 30,
                        scale: 10,
                    },
                ),
                Column::new("at", DataType::DateTime),
                Column::new("ts", DataType::Timestamp),
                Column::new("day", DataType::Date),
                Column::new("dur", DataType::Time),
                Column::new("raw", DataType::Bytes),
                Column::new("doc", DataType::Json),
                Column::new("ok", DataType::Bool),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id", "region"])
        .unwrap(),
    )
}

fn row(s: &Arc<Schema>, id: u64, region: &str) -> Record {
    Record::read(
        s.clone(),
        vec![
            Value::UInt(id),
            Value::from(region),
            Value::Decimal(format!("{id}.25").parse().unwrap()),
            Value::Decimal("12345678901234567890.0123456789".parse().unwrap()),
            Value::DateTime("2024-02-29T01:02:03.000004".parse().unwrap()),
            Value::Timestamp("2024-02-29T01:02:03.5Z".parse().unwrap()),
            Value::Date("2024-02-29".parse().unwrap()),
            Value::Time("-12:00:01".parse().unwrap()),
            Value::Bytes(vec![0u8, 1, 254, 255].into()),
            Value::Json(json!({"k": [1, 2], "z": {"q": null}})),
            Value::Bool(id.is_multiple_of(2)),
        ],
    )
}

async fn run(sink: Arc<EsSink>, records: Vec<Record>) -> datatrace_core::RunReport {
    let unit = records[0].schema.name().to_string();
    Pipeline::new(unit, Arc::new(MemorySource::new(records)), sink)
        .config(PipelineConfig {
            batch_size: 50,
            ..Default::default()
        })
        .run()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_indices_from_table_schemas_and_reads_them_back() {
    let name = unique_name("orders");
    let s = table(&name);
    let sink = EsSink::connect(
        &conn(&engine().url()),
        SinkConfig {
            index: "{prefix}-{db}-{table}".into(),
            prefix: "dt".into(),
            id_separator: ":".into(),
            settings: IndexSettings {
                shards: Some(2),
                replicas: Some(0),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let records: Vec<Record> = (0..40)
        .map(|i| row(&s, i, if i % 2 == 0 { "eu" } else { "us" }))
        .collect();
    let report = run(Arc::new(sink), records.clone()).await;
    assert_eq!(report.written, 40);
    let index = format!("dt-shop-{name}");
    let docs = all_docs(&index);
    assert_eq!(docs.len(), 40);
    let d = &docs["3:us"];
    assert_eq!(d["id"], json!(3));
    assert_eq!(d["price"], json!(3.25));
    assert_eq!(d["exact"], json!("12345678901234567890.0123456789"));
    assert_eq!(d["at"], json!("2024-02-29T01:02:03.000004"));
    assert_eq!(d["ts"], json!("2024-02-29T01:02:03.500000Z"));
    assert_eq!(d["dur"], json!("-12:00:01"));
    assert_eq!(d["raw"], json!("AAH+/w=="));
    assert_eq!(d["doc"], json!({"k": [1, 2], "z": {"q": null}}));
    let m = os("GET", &format!("/{index}/_mapping"), None);
    let p = &m[&index]["mappings"]["properties"];
    // unsigned_long is an x-pack type on Elasticsearch: the testkit's Elasticsearch 7.17 has
    // no x-pack (build_flavor "unknown"), and an INT UNSIGNED column fits a long there.
    let unsigned = if engine().flavor() == datatrace_testkit::EngineFlavor::Elasticsearch {
        "long"
    } else {
        "unsigned_long"
    };
    assert_eq!(p["id"]["type"], unsigned);
    assert_eq!(p["price"]["type"], "scaled_float");
    assert_eq!(p["exact"]["type"], "keyword");
    assert_eq!(p["raw"]["type"], "binary");
    let settings = os(
        "GET",
        &format!("/{index}/_settings?flat_settings=true"),
        None,
    );
    assert_eq!(settings[&index]["settings"]["index.number_of_shards"], "2");

    // Reading the index back restores the table's column types from the mapping's _meta.
    let source = EsSource::connect(&conn(&engine().url()), SourceConfig::new(index.clone()))
        .await
        .unwrap();
    let back = source.inferred_schema().await.unwrap();
    for c in s.columns() {
        assert_eq!(
            back.column(&c.name).unwrap().data_type,
            c.data_type,
            "column {}",
            c.name
        );
    }
    let collected = Arc::new(datatrace_core::testing::CollectingSink::new());
    Pipeline::new(index.as_str(), Arc::new(source), collected.clone())
        .run()
        .await
        .unwrap();
    let got = collected.records();
    let r = got
        .iter()
        .find(|r| r.values[0] == Value::from("3:us"))
        .unwrap();
    let orig = &records[3];
    for c in s.columns() {
        assert_eq!(r.get(&c.name), orig.get(&c.name), "column {}", c.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_updates_upserts_and_routing() {
    let name = unique_name("ops");
    let s = Arc::new(
        Schema::new(
            name.clone(),
            vec![
                Column::new("id", DataType::Int),
                Column::new("a", DataType::Int),
                Column::new("b", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    let rec = |op: Op, id: i64, a: Value, b: Value| {
        Record::new(op, s.clone(), vec![Value::Int(id), a, b])
    };
    let conn = conn(&engine().url());
    let sink = Arc::new(
        EsSink::connect(
            &conn,
            SinkConfig {
                refresh: RefreshPolicy::WaitFor,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let first: Vec<Record> = (0..10)
        .map(|i| rec(Op::Insert, i, Value::Int(i), Value::from("x")))
        .collect();
    run(sink.clone(), first).await;
    // Deletes (also of an id that never existed), and a routed record.
    let mut second = vec![
        rec(Op::Delete, 1, Value::Null, Value::Null),
        rec(Op::Delete, 12345, Value::Null, Value::Null),
    ];
    let mut routed = rec(Op::Insert, 50, Value::Int(50), Value::from("r"));
    let other = unique_name("routed");
    routed.target = Some(other.as_str().into());
    second.push(routed);
    let report = run(sink.clone(), second).await;
    assert_eq!(report.written, 3);
    let docs = all_docs(&name);
    assert_eq!(docs.len(), 9);
    assert!(!docs.contains_key("1"));
    assert_eq!(all_docs(&other).len(), 1);

    // Partial updates: only the given fields change; missing documents are rejected.
    let upd = Arc::new(
        EsSink::connect(
            &conn,
            SinkConfig {
                action: WriteAction::Update,
                write_nulls: false,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let mut batch = datatrace_core::Batch::new(vec![
        rec(Op::Update, 2, Value::Int(200), Value::Null),
        rec(Op::Update, 999, Value::Int(1), Value::Null),
    ]);
    let out = upd.write(&batch).await.unwrap();
    assert_eq!(out[0], datatrace_core::Outcome::Written);
    assert!(
        matches!(&out[1], datatrace_core::Outcome::Rejected(m) if m.contains("document 999") && m.contains("document_missing")),
        "{out:?}"
    );
    let up = EsSink::connect(
        &conn,
        SinkConfig {
            action: WriteAction::Upsert,
            write_nulls: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    batch.records[0].values[1] = Value::Int(201);
    let out = up.write(&batch).await.unwrap();
    assert!(
        out.iter().all(|o| *o == datatrace_core::Outcome::Written),
        "{out:?}"
    );
    let docs = all_docs(&name);
    assert_eq!(docs["2"], json!({"id": 2, "a": 201, "b": "x"}));
    assert_eq!(docs["999"], json!({"id": 999, "a": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_versions_never_let_older_changes_win() {
    let name = unique_name("ver");
    let s = Arc::new(
        Schema::new(
            name.clone(),
            vec![
                Column::new("id", DataType::Int),
                Column::new("v", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    let change = |id: i64, v: &str, ordinal: u64, op: Op| {
        let mut r = Record::new(op, s.clone(), vec![Value::Int(id), Value::from(v)]);
        r.position = Some(Position {
            state: json!(ordinal),
            ordinal: Some(ordinal),
            ts_ms: None,
        });
        r
    };
    let sink = Arc::new(
        EsSink::connect(
            &conn(&engine().url()),
            SinkConfig {
                version: Some(VersionSource::Position),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    // Newer first, then an older change of the same document replayed late.
    let report = run(
        sink.clone(),
        vec![
            change(1, "new", 20, Op::Update),
            change(2, "keep", 5, Op::Insert),
            change(1, "old", 10, Op::Update),
            change(2, "stale delete", 4, Op::Delete),
        ],
    )
    .await;
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(
        report.written, 4,
        "a 409 on an older version counts as written"
    );
    assert_eq!(report.rejected, 0);
    let docs = all_docs(&name);
    assert_eq!(docs["1"]["v"], "new");
    assert_eq!(docs["2"]["v"], "keep");
    let v = os("GET", &format!("/{name}/_doc/1"), None);
    assert_eq!(v["_version"], 20);
    // A record without an ordinal is rejected, naming the document.
    let out = sink
        .write(&datatrace_core::Batch::new(vec![Record::new(
            Op::Insert,
            s.clone(),
            vec![Value::Int(3), Value::from("x")],
        )]))
        .await
        .unwrap();
    assert!(
        matches!(&out[0], datatrace_core::Outcome::Rejected(m) if m.contains("document 3") && m.contains("ordinal")),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_load_settings_are_switched_and_restored() {
    let name = unique_name("load");
    os(
        "PUT",
        &format!("/{name}"),
        Some(&json!({"settings": {"number_of_replicas": 2, "refresh_interval": "7s"}}).to_string()),
    );
    let s = Arc::new(
        Schema::new(name.clone(), vec![Column::new("id", DataType::Int)])
            .with_primary_key(&["id"])
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(None));
    let probe = {
        let seen = seen.clone();
        let name = name.clone();
        move |r: Record| {
            let mut s = seen.lock().unwrap();
            if s.is_none() {
                let v = engine()
                    .request(
                        "GET",
                        &format!("/{name}/_settings?flat_settings=true"),
                        None,
                    )
                    .json();
                *s = Some(v[&name]["settings"].clone());
            }
            Some(r)
        }
    };
    let mut c = conn(&engine().url());
    c.gzip = true; // compressed bodies on the way
    let sink = Arc::new(
        EsSink::connect(
            &c,
            SinkConfig {
                bulk_load: true,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let records: Vec<Record> = (0..300)
        .map(|i| Record::read(s.clone(), vec![Value::Int(i)]))
        .collect();
    let report = Pipeline::new(
        name.as_str(),
        Arc::new(MemorySource::new(records)),
        sink.clone(),
    )
    .transform(probe)
    .config(PipelineConfig {
        batch_size: 50,
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(report.written, 300);
    assert!(sink.stats().requests >= 6);
    let during = seen.lock().unwrap().clone().unwrap();
    assert_eq!(during["index.refresh_interval"], "-1", "{during}");
    assert_eq!(during["index.number_of_replicas"], "0", "{during}");
    let after = os(
        "GET",
        &format!("/{name}/_settings?flat_settings=true"),
        None,
    );
    let after = &after[&name]["settings"];
    assert_eq!(after["index.refresh_interval"], "7s", "{after}");
    assert_eq!(after["index.number_of_replicas"], "2", "{after}");
    let meta = os("GET", &format!("/{name}/_mapping"), None);
    assert!(
        meta[&name]["mappings"]["_meta"]
            .get("datatrace_restore")
            .is_none(),
        "{meta}"
    );
    // Visible without an explicit refresh: the sink refreshed at the end.
    let c = os("GET", &format!("/{name}/_count"), None);
    assert_eq!(c["count"], 300);
}

//! The sink on its own: write modes, deletes and order within a batch, key-changing updates,
//! table creation from a neutral schema, truncate, pre/post SQL, routing and statement sizing.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::testing::MemorySource;
use datatrace_core::{
    Batch, Column, DataType, Op, Outcome, Pipeline, PipelineConfig, PrepareContext, Record, Schema,
    Sink, Value,
};
use datatrace_mysql::{SinkOptions, WriteMode};

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(
            "items",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("name", DataType::String),
                Column::new(
                    "price",
                    DataType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

fn rec(op: Op, id: i64, name: &str) -> Record {
    Record::new(
        op,
        schema(),
        vec![
            Value::Int(id),
            Value::from(name),
            Value::Decimal("1.50".parse().unwrap()),
        ],
    )
}

async fn write(d: &str, opts: SinkOptions, records: Vec<Record>) -> Vec<Outcome> {
    let s = sink(d, opts).await;
    s.prepare(&PrepareContext {
        unit: "u".into(),
        schema: Some(schema()),
        resumed: false,
    })
    .await
    .unwrap();
    s.write(&Batch::new(records)).await.unwrap()
}

fn rows(d: &str) -> String {
    exec(&format!(
        "SELECT id, name, price FROM `{d}`.items ORDER BY id"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_modes() {
    for (mode, expect) in [
        (WriteMode::Upsert, "1\tnew\t1.50\n"),
        (WriteMode::Replace, "1\tnew\t1.50\n"),
        (WriteMode::InsertIgnore, "1\told\t1.50\n"),
    ] {
        let d = db().create_database("sink_mode");
        let opts = SinkOptions {
            mode,
            create_table: true,
            ..Default::default()
        };
        write(&d, opts.clone(), vec![rec(Op::Insert, 1, "old")]).await;
        let out = write(&d, opts, vec![rec(Op::Insert, 1, "new")]).await;
        assert_eq!(out, vec![Outcome::Written]);
        assert_eq!(rows(&d), expect, "{mode:?}");
    }
    // Plain insert: a duplicate is a rejected row naming the key, the other row lands.
    let d = db().create_database("sink_ins");
    let opts = SinkOptions {
        mode: WriteMode::Insert,
        create_table: true,
        ..Default::default()
    };
    write(&d, opts.clone(), vec![rec(Op::Insert, 1, "old")]).await;
    let out = write(
        &d,
        opts,
        vec![rec(Op::Insert, 2, "two"), rec(Op::Insert, 1, "dup")],
    )
    .await;
    assert_eq!(out[0], Outcome::Written);
    match &out[1] {
        Outcome::Rejected(m) => {
            assert!(m.contains("key 1") && m.contains("Duplicate entry"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rows(&d), "1\told\t1.50\n2\ttwo\t1.50\n");
    // Updates are upserts whatever the mode.
    let opts = SinkOptions {
        mode: WriteMode::Insert,
        ..Default::default()
    };
    assert_eq!(
        write(&d, opts, vec![rec(Op::Update, 1, "upd")]).await,
        vec![Outcome::Written]
    );
    assert_eq!(rows(&d), "1\tupd\t1.50\n2\ttwo\t1.50\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_updates_keep_batch_order() {
    let d = db().create_database("sink_order");
    let mut moved = rec(Op::Update, 3, "moved");
    moved.before = Some(vec![Value::Int(2), Value::from("two"), Value::Null]);
    let out = write(
        &d,
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
        vec![
            rec(Op::Insert, 1, "one"),
            rec(Op::Delete, 1, ""),
            rec(Op::Read, 2, "two"),
            moved,
            rec(Op::Insert, 4, "four"),
            rec(Op::Update, 4, "four again"),
            rec(Op::Delete, 5, "never existed"),
        ],
    )
    .await;
    assert!(out.iter().all(|o| *o == Outcome::Written), "{out:?}");
    assert_eq!(rows(&d), "3\tmoved\t1.50\n4\tfour again\t1.50\n");
    // A key-changing update whose new row is refused leaves the old row in place.
    let mut bad = Record::new(
        Op::Update,
        schema(),
        vec![
            Value::Int(9),
            Value::from("x"),
            Value::Decimal("123456789012".parse().unwrap()),
        ],
    );
    bad.before = Some(vec![Value::Int(3), Value::from("moved"), Value::Null]);
    let out = write(
        &d,
        SinkOptions::default(),
        vec![bad, rec(Op::Insert, 10, "ten")],
    )
    .await;
    match &out[0] {
        Outcome::Rejected(m) => assert!(
            m.contains("column price, key 9") && m.contains("Out of range"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(out[1], Outcome::Written);
    assert_eq!(
        rows(&d),
        "3\tmoved\t1.50\n4\tfour again\t1.50\n10\tten\t1.50\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_tables_from_neutral_schemas() {
    let d = db().create_database("sink_ddl");
    let s = Arc::new(
        Schema::new(
            "docs",
            vec![
                Column::new("_id", DataType::String)
                    .not_null()
                    .native("keyword"),
                Column::new("title", DataType::String).native("text"),
                Column::new("n", DataType::Int).native("long"),
                Column::new("u", DataType::UInt),
                Column::new("score", DataType::Float).native("double"),
                Column::new("at", DataType::Timestamp).native("date"),
                Column::new("tags", DataType::Json),
                Column::new("ok", DataType::Bool).native("boolean"),
                Column::new("raw", DataType::Bytes).native("binary"),
                Column::new(
                    "amount",
                    DataType::Decimal {
                        precision: 0,
                        scale: 0,
                    },
                ),
            ],
        )
        .with_primary_key(&["_id"])
        .unwrap(),
    );
    let k = sink(
        &d,
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
    )
    .await;
    k.prepare(&PrepareContext {
        unit: "docs".into(),
        schema: Some(s.clone()),
        resumed: false,
    })
    .await
    .unwrap();
    let types = exec(&format!(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{d}' AND TABLE_NAME='docs' ORDER BY ORDINAL_POSITION"
    ));
    assert_eq!(
        types,
        "_id\tvarchar(255)\ntitle\tlongtext\nn\tbigint(20)\nu\tbigint(20) unsigned\nscore\tdouble\nat\tdatetime(6)\ntags\tlongtext\nok\ttinyint(1)\nraw\tlongblob\namount\tdecimal(65,30)\n"
    );
    let r = Record::read(
        s,
        vec![
            Value::from("doc-1"),
            Value::from("Hello 🎉"),
            Value::Int(-5),
            Value::UInt(u64::MAX),
            Value::Float(0.5),
            Value::Timestamp("2024-05-01T10:00:00.25Z".parse().unwrap()),
            Value::Json(serde_json::json!(["a", "b"])),
            Value::Bool(true),
            Value::Bytes(bytes::Bytes::from_static(b"\x00\x01")),
            Value::Decimal("12345.678".parse().unwrap()),
        ],
    );
    assert_eq!(
        k.write(&Batch::new(vec![r])).await.unwrap(),
        vec![Outcome::Written]
    );
    assert_eq!(
        exec(&format!("SELECT _id, title, n, u, score, at, tags, ok, HEX(raw), amount FROM `{d}`.docs")),
        "doc-1\tHello 🎉\t-5\t18446744073709551615\t0.5\t2024-05-01 10:00:00.250000\t[\"a\",\"b\"]\t1\t0001\t12345.678000000000000000000000000000\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_pre_post_sql() {
    let d = db().create_database("sink_sql");
    exec(&format!(
        "USE `{d}`; CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price DECIMAL(10,2));
         INSERT INTO items VALUES (99, 'stale', 0); CREATE TABLE log (what VARCHAR(10));"
    ));
    let opts = SinkOptions {
        truncate: true,
        pre_sql: vec![format!("INSERT INTO `{d}`.log VALUES ('pre')")],
        post_sql: vec![format!("INSERT INTO `{d}`.log VALUES ('post')")],
        ..Default::default()
    };
    let source = Arc::new(MemorySource::new(
        (1..=3).map(|i| rec(Op::Read, i, "x")).collect(),
    ));
    Pipeline::new("sql", source.clone(), sink(&d, opts.clone()).await)
        .run()
        .await
        .unwrap();
    assert_eq!(
        exec(&format!("SELECT COUNT(*), MIN(id) FROM `{d}`.items")),
        "3\t1\n"
    );
    assert_eq!(exec(&format!("SELECT what FROM `{d}`.log")), "pre\npost\n");
    // A resumed unit is never truncated.
    exec(&format!("INSERT INTO `{d}`.items VALUES (99, 'kept', 0)"));
    let k = sink(&d, opts).await;
    k.prepare(&PrepareContext {
        unit: "sql".into(),
        schema: Some(schema()),
        resumed: true,
    })
    .await
    .unwrap();
    assert_eq!(exec(&format!("SELECT COUNT(*) FROM `{d}`.items")), "4\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_targets_and_statement_sizing() {
    let d = db().create_database("sink_route");
    let other = db().create_database("sink_route_other");
    let mut routed = rec(Op::Insert, 7, "routed");
    routed.target = Some(format!("{other}.items").into());
    let big = Record::new(
        Op::Insert,
        schema(),
        vec![Value::Int(8), Value::from("x".repeat(6000)), Value::Null],
    );
    let mut records: Vec<Record> = (1..=300)
        .map(|i| rec(Op::Insert, i + 100, "many small rows"))
        .collect();
    records.push(routed);
    records.push(big);
    let out = write(
        &d,
        SinkOptions {
            create_table: true,
            max_statement_bytes: 4096,
            ..Default::default()
        },
        records,
    )
    .await;
    assert!(out[..301].iter().all(|o| *o == Outcome::Written));
    match &out[301] {
        Outcome::Rejected(m) => assert!(
            m.contains("key 8") && m.contains("above the limit of 4096"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(exec(&format!("SELECT COUNT(*) FROM `{d}`.items")), "300\n");
    assert_eq!(
        exec(&format!("SELECT id, name FROM `{other}`.items")),
        "7\trouted\n"
    );
    // Many writers in parallel through the pipeline.
    let source = Arc::new(MemorySource::new(
        (1..=5000).map(|i| rec(Op::Read, i, "p")).collect(),
    ));
    let report = Pipeline::new("par", source, sink(&d, SinkOptions::default()).await)
        .config(PipelineConfig {
            batch_size: 250,
            sink_concurrency: 4,
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(report.written, 5000);
    assert_eq!(exec(&format!("SELECT COUNT(*) FROM `{d}`.items")), "5000\n");
}

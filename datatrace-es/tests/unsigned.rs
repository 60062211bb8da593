//! Unsigned 64-bit columns (MySQL's `BIGINT UNSIGNED`) on every engine (`cargo test unsigned`):
//! exact where the cluster has `unsigned_long` (OpenSearch 2.8+, Elasticsearch with x-pack),
//! refused before anything is written where it has not (the testkit's Elasticsearch 7.17 has
//! no x-pack), and exact or refused per record under the `keyword` and `long` settings on
//! both. Each test asserts what the engine of the run must do: `DATATRACE_SEARCH_ENGINE`.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::testing::MemorySource;
use datatrace_core::{
    Column, DataType, ErrorPolicy, Op, Pipeline, PipelineConfig, Record, Schema, Sink, Value,
};
use datatrace_es::{EsSink, EsSource, MappingConfig, SinkConfig, SourceConfig, UnsignedMapping};
use datatrace_testkit::{engine, unique_name, EngineFlavor};
use serde_json::json;

/// Values at the edges of a `u64`, around `i64::MAX` and small ones.
const EDGES: [u64; 6] = [
    0,
    1,
    i64::MAX as u64,
    i64::MAX as u64 + 1,
    u64::MAX - 1,
    u64::MAX,
];

/// Whether the engine of this run has `unsigned_long` (the testkit's Elasticsearch is an OSS
/// node: no x-pack field types).
fn has_unsigned_long() -> bool {
    engine().flavor() != EngineFlavor::Elasticsearch
}

/// `name` with a 64-bit key (`bigint(20) unsigned`), a 32-bit column and a `BIT(64)`.
fn table(name: &str) -> Arc<Schema> {
    Arc::new(
        Schema::new(
            name,
            vec![
                Column::new("id", DataType::UInt)
                    .not_null()
                    .native("bigint(20) unsigned"),
                Column::new("small", DataType::UInt).native("int(10) unsigned"),
                Column::new("bits", DataType::UInt).native("bit(64)"),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

fn rows(s: &Arc<Schema>) -> Vec<Record> {
    EDGES
        .iter()
        .map(|&u| {
            Record::read(
                s.clone(),
                vec![
                    Value::UInt(u),
                    Value::UInt(u % (u32::MAX as u64 + 1)),
                    Value::UInt(u.reverse_bits()),
                ],
            )
        })
        .collect()
}

async fn sink(index: &str, unsigned: UnsignedMapping) -> Arc<EsSink> {
    let cfg = SinkConfig {
        index: index.into(),
        mapping: MappingConfig {
            unsigned,
            ..Default::default()
        },
        ..Default::default()
    };
    Arc::new(EsSink::connect(&conn(&engine().url()), cfg).await.unwrap())
}

async fn copy(
    sink: Arc<EsSink>,
    records: Vec<Record>,
    policy: ErrorPolicy,
) -> datatrace_core::Result<datatrace_core::RunReport> {
    let unit = records[0].schema.qualified_name();
    Pipeline::new(unit, Arc::new(MemorySource::new(records)), sink)
        .config(PipelineConfig {
            batch_size: 4,
            error_policy: policy,
            ..Default::default()
        })
        .run()
        .await
}

fn exists(index: &str) -> bool {
    engine().request("HEAD", &format!("/{index}"), None).status == 200
}

/// Reads `index` back with the source and checks every row's values.
async fn read_back_exactly(index: &str, expected: &[Record]) {
    let source = EsSource::connect(&conn(&engine().url()), SourceConfig::new(index))
        .await
        .unwrap();
    let schema = source.inferred_schema().await.unwrap();
    for c in ["id", "small", "bits"] {
        assert_eq!(
            schema.column(c).unwrap().data_type,
            DataType::UInt,
            "column {c}"
        );
    }
    let collected = Arc::new(datatrace_core::testing::CollectingSink::new());
    Pipeline::new(index, Arc::new(source), collected.clone())
        .run()
        .await
        .unwrap();
    let mut back: Vec<Vec<Value>> = collected
        .records()
        .iter()
        .map(|r| {
            ["id", "small", "bits"]
                .iter()
                .map(|c| r.get(c).cloned().unwrap())
                .collect()
        })
        .collect();
    back.sort_by_key(|v| v[0].as_u64());
    let want: Vec<Vec<Value>> = expected.iter().map(|r| r.values.to_vec()).collect();
    assert_eq!(back, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_64_bit_columns_are_exact_or_refused_before_anything_is_written() {
    let name = unique_name("ubig");
    let index = format!("{name}-auto");
    let s = table(&name);
    let records = rows(&s);
    let result = copy(
        sink(&index, UnsignedMapping::Auto).await,
        records.clone(),
        ErrorPolicy::Fail,
    )
    .await;
    if has_unsigned_long() {
        let report = result.unwrap();
        assert_eq!(report.written, EDGES.len() as u64);
        let docs = all_docs(&index);
        assert_eq!(docs[&u64::MAX.to_string()]["id"], json!(u64::MAX));
        let m = os("GET", &format!("/{index}/_mapping"), None);
        let p = &m[&index]["mappings"]["properties"];
        for c in ["id", "small", "bits"] {
            assert_eq!(p[c]["type"], "unsigned_long", "{c}");
        }
        read_back_exactly(&index, &records).await;
    } else {
        let err = result.unwrap_err().to_string();
        for part in [
            format!("shop.{name}"),
            "column id".to_string(),
            "bigint(20) unsigned".to_string(),
            format!("Elasticsearch {}", engine().version()),
            "mapping.unsigned = \"keyword\"".to_string(),
            "mapping.unsigned = \"long\"".to_string(),
        ] {
            assert!(err.contains(&part), "{part:?} is not in: {err}");
        }
        assert!(!exists(&index), "the index was created: {err}");

        // A table whose unsigned columns are all narrower than 64 bits maps them as long.
        let narrow = Arc::new(
            Schema::new(
                unique_name("unarrow"),
                vec![
                    Column::new("id", DataType::UInt)
                        .not_null()
                        .native("int(10) unsigned"),
                    Column::new("b", DataType::UInt).native("bit(63)"),
                ],
            )
            .with_primary_key(&["id"])
            .unwrap(),
        );
        let index = unique_name("unarrow");
        let max = Record::read(
            narrow.clone(),
            vec![Value::UInt(u32::MAX as u64), Value::UInt(i64::MAX as u64)],
        );
        let report = copy(
            sink(&index, UnsignedMapping::Auto).await,
            vec![max],
            ErrorPolicy::Fail,
        )
        .await
        .unwrap();
        assert_eq!(report.written, 1);
        let m = os("GET", &format!("/{index}/_mapping"), None);
        assert_eq!(m[&index]["mappings"]["properties"]["id"]["type"], "long");
        assert_eq!(m[&index]["mappings"]["properties"]["b"]["type"], "long");
        let docs = all_docs(&index);
        assert_eq!(docs[&u32::MAX.to_string()]["b"], json!(i64::MAX));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_as_keyword_keeps_every_value_on_every_engine() {
    let name = unique_name("ukw");
    let s = table(&name);
    let records = rows(&s);
    let report = copy(
        sink(&name, UnsignedMapping::Keyword).await,
        records.clone(),
        ErrorPolicy::Fail,
    )
    .await
    .unwrap();
    assert_eq!(report.written, EDGES.len() as u64);
    let m = os("GET", &format!("/{name}/_mapping"), None);
    for c in ["id", "small", "bits"] {
        assert_eq!(m[&name]["mappings"]["properties"][c]["type"], "keyword");
    }
    // The documents hold the JSON numbers, as unsigned_long ones would.
    let docs = all_docs(&name);
    for u in EDGES {
        assert_eq!(docs[&u.to_string()]["id"], json!(u), "{u}");
        assert_eq!(docs[&u.to_string()]["bits"], json!(u.reverse_bits()), "{u}");
    }
    // A term query finds the largest value exactly, not its neighbour.
    let q = json!({"query": {"term": {"id": u64::MAX.to_string()}}}).to_string();
    let hits = os("POST", &format!("/{name}/_search"), Some(&q));
    assert_eq!(hits["hits"]["total"]["value"], 1, "{hits}");
    assert_eq!(hits["hits"]["hits"][0]["_id"], u64::MAX.to_string());
    read_back_exactly(&name, &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_as_long_rejects_only_the_values_above_i64_max() {
    let name = unique_name("ulong");
    let s = table(&name);
    let records = rows(&s);
    let report = copy(
        sink(&name, UnsignedMapping::Long).await,
        records.clone(),
        ErrorPolicy::Skip,
    )
    .await
    .unwrap();
    // id or bits above i64::MAX: 0 (bits 0), 1 (bits 2^63), i64::MAX (bits 2^64-2) and the
    // three ids above it are refused; none is changed.
    let fits = |r: &Record| {
        r.values
            .iter()
            .all(|v| v.as_u64().is_some_and(|u| u <= i64::MAX as u64))
    };
    let expected: Vec<&Record> = records.iter().filter(|r| fits(r)).collect();
    assert_eq!(report.written as usize, expected.len());
    assert_eq!(
        report.rejected as usize,
        records.len() - expected.len(),
        "{report:?}"
    );
    let m = os("GET", &format!("/{name}/_mapping"), None);
    assert_eq!(m[&name]["mappings"]["properties"]["id"]["type"], "long");
    let docs = all_docs(&name);
    assert_eq!(docs.len(), expected.len());
    for r in expected {
        let id = r.values[0].as_u64().unwrap();
        assert_eq!(docs[&id.to_string()]["id"], json!(id));
    }

    // Under the `fail` policy the first such record stops the copy, naming the cluster's
    // reason.
    let index = unique_name("ulongfail");
    let big = Record::read(
        s.clone(),
        vec![Value::UInt(u64::MAX), Value::UInt(1), Value::UInt(1)],
    );
    let err = copy(
        sink(&index, UnsignedMapping::Long).await,
        vec![big],
        ErrorPolicy::Fail,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains(&u64::MAX.to_string()), "{err}");
    assert!(err.contains("long"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_columns_added_by_a_stream_are_mapped_or_stop_it() {
    let name = unique_name("uadd");
    let before = Arc::new(
        Schema::new(
            name.as_str(),
            vec![
                Column::new("id", DataType::Int)
                    .not_null()
                    .native("int(11)"),
                Column::new("v", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    let after = Arc::new(
        Schema::new(
            name.as_str(),
            vec![
                Column::new("id", DataType::Int)
                    .not_null()
                    .native("int(11)"),
                Column::new("v", DataType::String),
                Column::new("big", DataType::UInt).native("bigint(20) unsigned"),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    let sink = sink(&name, UnsignedMapping::Auto).await;
    let first = Record::read(before.clone(), vec![Value::Int(1), Value::from("a")]);
    let mut second = Record::read(
        after.clone(),
        vec![Value::Int(2), Value::from("b"), Value::UInt(u64::MAX)],
    );
    second.op = Op::Insert;
    let ctx = datatrace_core::PrepareContext {
        unit: name.clone(),
        schema: Some(before.clone()),
        resumed: false,
    };
    sink.prepare(&ctx).await.unwrap();
    let written = sink
        .write(&datatrace_core::Batch::new(vec![first]))
        .await
        .unwrap();
    assert!(matches!(written[..], [datatrace_core::Outcome::Written]));
    let result = sink
        .write(&datatrace_core::Batch::new(vec![second.clone()]))
        .await;
    if has_unsigned_long() {
        result.unwrap();
        let m = os("GET", &format!("/{name}/_mapping"), None);
        assert_eq!(
            m[&name]["mappings"]["properties"]["big"]["type"],
            "unsigned_long"
        );
        assert_eq!(all_docs(&name)["2"]["big"], json!(u64::MAX));
    } else {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("column big"), "{err}");
        assert!(err.contains("mapping.unsigned"), "{err}");
        // Refused again, and nothing of it was written.
        assert!(sink
            .write(&datatrace_core::Batch::new(vec![second]))
            .await
            .is_err());
        assert_eq!(count(&name), 1);
    }

    // A field the index already has keeps its mapping, whatever the cluster: no refusal.
    let index = unique_name("uhas");
    os(
        "PUT",
        &format!("/{index}"),
        Some(&json!({"mappings": {"properties": {"big": {"type": "keyword"}}}}).to_string()),
    );
    let sink2 = self::sink(&index, UnsignedMapping::Auto).await;
    let first = Record::read(before, vec![Value::Int(1), Value::from("a")]);
    let second = Record::read(
        after,
        vec![Value::Int(2), Value::from("b"), Value::UInt(u64::MAX)],
    );
    for r in [first, second] {
        let out = sink2
            .write(&datatrace_core::Batch::new(vec![r]))
            .await
            .unwrap();
        assert!(
            matches!(out[..], [datatrace_core::Outcome::Written]),
            "{out:?}"
        );
    }
    assert_eq!(all_docs(&index)["2"]["big"], json!(u64::MAX));
}

//! Elasticsearch -> Elasticsearch copies through the source and the sink, against
//! the test run's search engine: every JSON shape must survive.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::{Pipeline, PipelineConfig, RunStatus};
use datatrace_es::{EsSink, EsSource, SinkConfig, SourceConfig};
use datatrace_testkit::{engine, unique_name, EngineFlavor};
use serde_json::{json, Value as Json};

/// Whether the engine of this run has the `unsigned_long` field type: OpenSearch does; the
/// testkit's Elasticsearch 7.17 is an OSS node (no x-pack field types).
fn has_unsigned_long() -> bool {
    engine().flavor() != EngineFlavor::Elasticsearch
}

/// A `u64` as the fixture stores it: a JSON number in an `unsigned_long` field, or where the
/// engine has none, its digits in a `keyword` field (what such clusters hold them in).
fn big(u: u64) -> Json {
    if has_unsigned_long() {
        json!(u)
    } else {
        json!(u.to_string())
    }
}

fn big_type() -> &'static str {
    if has_unsigned_long() {
        "unsigned_long"
    } else {
        "keyword"
    }
}

/// Documents with every JSON shape: nested objects, arrays of scalars and objects, nulls at
/// every depth, big and negative integers, floats, unicode, empty containers.
fn corpus(n: usize) -> Vec<(String, Json)> {
    (0..n)
        .map(|i| {
            let mut d = json!({
                "title": format!("héllo wörld 🎉 \"{i}\" \\ \n\t line"),
                "n": i as i64 - 50,
                "neg": i64::MIN + i as i64,
                "big": big(u64::MAX - i as u64),
                "ratio": (i as f64) * 0.25 + 1.5e-7,
                "huge": 1.5e300,
                "ok": i % 2 == 0,
                "when": format!("2024-02-{:02}T01:02:03.{:06}Z", i % 28 + 1, i + 1),
                "tags": ["a", "β", format!("t{i}")],
                "nums": [1, -2, 3],
                "nested": {"a": {"b": [1, "x", null, {"c": []}], "d": null}, "e": "ü"},
                "objs": [{"k": 1}, {"k": 2, "z": {"deep": [[1, 2], []]}}],
                "maybe": null,
                "empty": {},
                "none": [],
            });
            if i % 3 == 0 {
                d.as_object_mut().unwrap().remove("title");
            }
            if i % 5 == 0 {
                d["n"] = Json::Null;
            }
            (format!("doc-{i:04}"), d)
        })
        .collect()
}

fn source_index(docs: &[(String, Json)]) -> String {
    let index = unique_name("rt-src");
    let mapping = json!({
        "settings": {"number_of_shards": 2},
        "mappings": {"properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "n": {"type": "long"},
            "neg": {"type": "long"},
            "big": {"type": big_type()},
            "ratio": {"type": "double"},
            "huge": {"type": "double"},
            "ok": {"type": "boolean"},
            "when": {"type": "date"},
            "tags": {"type": "keyword"},
            "nums": {"type": "integer"},
            "nested": {"type": "object", "enabled": false},
            "objs": {"type": "nested"}
        }}
    });
    os("PUT", &format!("/{index}"), Some(&mapping.to_string()));
    load(&index, docs);
    index
}

/// Drops top-level nulls: a typed read cannot tell a top-level `null` from a missing field.
fn without_top_nulls(d: &Json) -> Json {
    let mut d = d.clone();
    if let Some(m) = d.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    d
}

async fn copy(src: &str, dst: &str, source_cfg: SourceConfig) -> datatrace_core::RunReport {
    let url = engine().url();
    let source = EsSource::connect(&conn(&url), source_cfg).await.unwrap();
    let sink = EsSink::connect(
        &conn(&url),
        SinkConfig {
            index: dst.into(),
            max_docs: 70,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let report = Pipeline::new(src, Arc::new(source), Arc::new(sink))
        .config(PipelineConfig {
            batch_size: 200,
            read_parallelism: 2,
            sink_concurrency: 2,
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_copy_keeps_every_json_shape() {
    let docs = corpus(300);
    let src = source_index(&docs);
    let dst = unique_name("rt-dst");
    let cfg = SourceConfig {
        page_size: 64,
        slices: 2,
        ..SourceConfig::new(src.clone())
    };
    let report = copy(&src, &dst, cfg).await;
    assert_eq!(report.read, 300);
    assert_eq!(report.written, 300);

    let before = all_docs(&src);
    let after = all_docs(&dst);
    assert_eq!(before.len(), 300);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (id, d) in &before {
        assert_eq!(
            without_top_nulls(&after[id]),
            without_top_nulls(d),
            "document {id}"
        );
    }
    // Big integers stay exact, not through f64.
    assert_eq!(after["doc-0000"]["big"], big(u64::MAX));
    assert_eq!(after["doc-0000"]["neg"], json!(i64::MIN));
    // The target mapping is the source's for mapped fields.
    let m = os("GET", &format!("/{dst}/_mapping"), None);
    let p = &m[&dst]["mappings"]["properties"];
    assert_eq!(p["big"]["type"], big_type());
    assert_eq!(p["objs"]["type"], "nested");
    assert_eq!(p["title"]["fields"]["raw"]["type"], "keyword");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_copy_is_exact() {
    let docs = corpus(120);
    let src = source_index(&docs);
    let dst = unique_name("rt-raw");
    let cfg = SourceConfig {
        raw: true,
        page_size: 50,
        slices: 3,
        ..SourceConfig::new(src.clone())
    };
    let report = copy(&src, &dst, cfg).await;
    assert_eq!(report.written, 120);
    let before = all_docs(&src);
    let after = all_docs(&dst);
    assert_eq!(before, after);
    for (id, d) in &docs {
        assert_eq!(&after[id], d, "document {id} differs from what was loaded");
    }
    let m = os("GET", &format!("/{dst}/_mapping"), None);
    assert_eq!(m[&dst]["mappings"]["properties"]["big"]["type"], big_type());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_reports_schema_and_count() {
    let docs = corpus(10);
    let src = source_index(&docs);
    let source = EsSource::connect(&conn(&engine().url()), SourceConfig::new(src.clone()))
        .await
        .unwrap();
    use datatrace_core::{DataType, Source};
    let schema = source.schema().await.unwrap().unwrap();
    assert_eq!(schema.primary_key_names(), ["_id"]);
    let big = if has_unsigned_long() {
        DataType::UInt
    } else {
        DataType::String
    };
    assert_eq!(schema.column("big").unwrap().data_type, big);
    assert_eq!(
        schema.column("when").unwrap().data_type,
        DataType::Timestamp
    );
    assert_eq!(schema.column("nested").unwrap().data_type, DataType::Json);
    assert_eq!(schema.column("_extra").unwrap().data_type, DataType::Json);
    assert_eq!(source.estimate_rows().await, Some(10));
    // Slices default to the number of primary shards. OpenSearch orders each slice by
    // `_seq_no`, unique only within a shard, so it reads one slice per shard whatever the
    // parallelism; Elasticsearch's `_shard_doc` allows fewer.
    assert_eq!(source.split(8).await.unwrap().len(), 2);
    let fewest = if engine().flavor().is_opensearch_family() {
        2
    } else {
        1
    };
    assert_eq!(source.split(1).await.unwrap().len(), fewest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flattened_objects_become_dotted_columns_and_unmapped_fields_go_to_extra() {
    let index = unique_name("flat");
    let mapping = json!({"mappings": {"dynamic": false, "properties": {
        "o": {"properties": {"x": {"type": "keyword"}, "y": {"properties": {"z": {"type": "long"}}}}},
        "n": {"type": "long"}
    }}});
    os("PUT", &format!("/{index}"), Some(&mapping.to_string()));
    load(
        &index,
        &[(
            "1".into(),
            json!({"o": {"x": "a", "y": {"z": 5}, "free": true}, "n": 1, "unmapped": [1, {"q": 2}]}),
        )],
    );
    let cfg = SourceConfig {
        flatten_objects: true,
        ..SourceConfig::new(index.clone())
    };
    let source = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg)
            .await
            .unwrap(),
    );
    let sink = Arc::new(datatrace_core::testing::CollectingSink::new());
    Pipeline::new(index.as_str(), source, sink.clone())
        .run()
        .await
        .unwrap();
    let r = &sink.records()[0];
    use datatrace_core::Value;
    assert_eq!(r.get("o.x"), Some(&Value::from("a")));
    assert_eq!(r.get("o.y.z"), Some(&Value::Int(5)));
    assert_eq!(r.get("n"), Some(&Value::Int(1)));
    assert_eq!(
        r.get("_extra"),
        Some(&Value::Json(
            json!({"o.free": true, "unmapped": [1, {"q": 2}]})
        ))
    );
}

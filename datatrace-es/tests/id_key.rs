//! Reading an index whose documents' `_source` lacks the key columns, with the id column
//! switched off: the key comes back from each document's id, decoded by the key the sink
//! recorded in the mapping (`_meta.datatrace.key`, `id_separator`), value for value, even
//! when the values contain the separator or the escape character.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::doc_id;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{Pipeline, Value};
use datatrace_es::{EsSource, SourceConfig};
use datatrace_testkit::{engine, unique_name};
use serde_json::json;

/// The keys (`a` text, `n` integer, `b` text) of the documents, with separators inside.
fn keys() -> Vec<(String, i64, String)> {
    [
        ("a_b", 1, "c"),
        ("a", 1, "b_c"),
        ("a\\", -5, "_"),
        ("\\_x_", 0, "\\"),
        ("", 9_007_199_254_740_993, "plain"),
        ("naïve_😀", i64::MIN, "__"),
    ]
    .into_iter()
    .map(|(a, n, b)| (a.to_string(), n, b.to_string()))
    .collect()
}

/// Reads `index` with the id column off (and `_source` without `excludes`), returning
/// `(a, n, b, v)` per document, sorted.
async fn read(index: &str, excludes: &[&str]) -> Vec<(Value, Value, Value, Value)> {
    let cfg = SourceConfig {
        id_column: None,
        extra_column: None,
        source_excludes: excludes.iter().map(|s| s.to_string()).collect(),
        ..SourceConfig::new(index)
    };
    let source = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg)
            .await
            .expect("source"),
    );
    let sink = Arc::new(CollectingSink::new());
    Pipeline::new(index, source, sink.clone())
        .run()
        .await
        .expect("read");
    let records = sink.records();
    let schema = records.first().expect("documents").schema.clone();
    assert_eq!(schema.primary_key_names(), ["a", "n", "b"]);
    let at = |n: &str| schema.index_of(n).unwrap();
    let mut out: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.values[at("a")].clone(),
                r.values[at("n")].clone(),
                r.values[at("b")].clone(),
                r.values[at("v")].clone(),
            )
        })
        .collect();
    out.sort_by_key(|t| format!("{t:?}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_columns_missing_from_source_are_decoded_from_ids() {
    let index = unique_name("idkey");
    os(
        "PUT",
        &format!("/{index}"),
        Some(
            &json!({"mappings": {
                "_meta": {"datatrace": {"key": ["a", "n", "b"], "id_separator": "_"}},
                "properties": {
                    "a": {"type": "keyword"},
                    "n": {"type": "long"},
                    "b": {"type": "keyword"},
                    "v": {"type": "keyword"}
                }
            }})
            .to_string(),
        ),
    );
    let mut docs = Vec::new();
    let mut expected = Vec::new();
    for (i, (a, n, b)) in keys().into_iter().enumerate() {
        let key = [
            Value::from(a.as_str()),
            Value::Int(n),
            Value::from(b.as_str()),
        ];
        let id = doc_id::encode(&key, "_").unwrap();
        // Every other document has its key in `_source` too (the same values).
        let source = if i % 2 == 0 {
            json!({"v": format!("v{i}")})
        } else {
            json!({"v": format!("v{i}"), "a": a, "n": n, "b": b})
        };
        docs.push((id, source));
        let [a, n, b] = key;
        expected.push((a, n, b, Value::from(format!("v{i}").as_str())));
    }
    // The encoding is the documented one: escapes keep the parts apart.
    assert_eq!(docs[0].0, "a\\_b_1_c");
    assert_eq!(docs[1].0, "a_1_b\\_c");
    load(&index, &docs);
    expected.sort_by_key(|t| format!("{t:?}"));

    assert_eq!(read(&index, &[]).await, expected);
    // With the key columns excluded from `_source`, every key comes from the id alone.
    assert_eq!(read(&index, &["a", "n", "b"]).await, expected);
}

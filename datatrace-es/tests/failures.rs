//! Partial bulk failures, injected 429/503 and dropped connections, and the errors users
//! see: unreachable cluster, wrong credentials, documents too large.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use datatrace_core::testing::{GeneratorSource, MemorySource};
use datatrace_core::Sink;
use datatrace_core::{
    Column, DataType, DeadLetterQueue, ErrorPolicy, MemoryDeadLetterQueue, Pipeline,
    PipelineConfig, Record, RetryPolicy, RunStatus, Schema, Value,
};
use datatrace_es::{EsClient, EsError, EsSink, SinkConfig};
use datatrace_testkit::{engine, unique_name, FaultProxy};
use serde_json::json;

fn quick_retry() -> RetryPolicy {
    RetryPolicy::new(30, Duration::from_millis(5), Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_violations_go_to_the_dead_letter_queue_and_the_rest_lands() {
    let index = unique_name("partial");
    os(
        "PUT",
        &format!("/{index}"),
        Some(
            &json!({"mappings": {"properties": {"n": {"type": "long"}, "s": {"type": "keyword"}}}})
                .to_string(),
        ),
    );
    let schema = Arc::new(
        Schema::new(
            index.clone(),
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("n", DataType::String),
                Column::new("s", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    );
    let records: Vec<Record> = (0..500)
        .map(|i| {
            let n = if i % 7 == 3 {
                format!("not-a-number-{i}")
            } else {
                i.to_string()
            };
            Record::read(
                schema.clone(),
                vec![
                    Value::Int(i),
                    Value::String(n),
                    Value::from(format!("s{i}")),
                ],
            )
        })
        .collect();
    let bad: Vec<i64> = (0..500).filter(|i| i % 7 == 3).collect();
    let dlq = Arc::new(MemoryDeadLetterQueue::new());
    let sink = EsSink::connect(
        &conn(&engine().url()),
        SinkConfig {
            max_docs: 64,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let sink = Arc::new(sink);
    let report = Pipeline::new(
        index.as_str(),
        Arc::new(MemorySource::new(records)),
        sink.clone(),
    )
    .dead_letters(dlq.clone())
    .config(PipelineConfig {
        batch_size: 100,
        error_policy: ErrorPolicy::DeadLetter,
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.dead_lettered, bad.len() as u64);
    assert_eq!(report.written + report.dead_lettered, 500);
    assert_eq!(count(&index), 500 - bad.len() as u64);
    let letters = dlq.list().await.unwrap();
    assert_eq!(letters.len(), bad.len());
    let mut ids: Vec<i64> = letters
        .iter()
        .map(|l| l.record.values[0].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, bad);
    let l = &letters[0];
    let id = l.record.values[0].as_i64().unwrap();
    assert!(l.error.contains("mapper_parsing_exception"), "{}", l.error);
    assert!(
        l.error.contains(&format!("index {index}, document {id}")),
        "{}",
        l.error
    );
    assert_eq!(l.stage, "sink");
    assert_eq!(sink.stats().rejected, bad.len() as u64);

    // Under the fail policy the run stops with the reason and the document id.
    let records: Vec<Record> = vec![Record::read(
        schema.clone(),
        vec![Value::Int(9999), Value::from("nope"), Value::Null],
    )];
    let e = Pipeline::new(index.as_str(), Arc::new(MemorySource::new(records)), sink)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("9999") && e.contains("mapper_parsing_exception"),
        "{e}"
    );
}

async fn generated_copy(proxy: &FaultProxy, index: &str, rows: u64) -> datatrace_core::RunReport {
    let sink = EsSink::connect(
        &conn(&proxy.url()),
        SinkConfig {
            index: index.into(),
            max_docs: 50,
            max_in_flight: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Pipeline::new(
        index,
        Arc::new(GeneratorSource::new(rows, 6, 40)),
        Arc::new(sink),
    )
    .config(PipelineConfig {
        batch_size: 200,
        sink_concurrency: 2,
        retry: quick_retry(),
        ..Default::default()
    })
    .run()
    .await
    .unwrap()
}

fn check_landed_once(index: &str, rows: u64) {
    let docs = all_docs(index);
    assert_eq!(docs.len() as u64, rows, "index {index}");
    assert_eq!(count(index), rows, "duplicates in {index}");
    let gen = GeneratorSource::new(rows, 6, 40);
    let by_id: BTreeMap<_, _> = docs.into_iter().collect();
    for i in (0..rows).step_by(97) {
        let d = &by_id[&i.to_string()];
        let r = gen.row(i);
        assert_eq!(d["id"], json!(i));
        assert_eq!(d["c2"].as_str(), r.values[2].as_str(), "document {i}");
        assert_eq!(
            d["c4"].as_f64().unwrap().to_string(),
            r.values[4].to_string(),
            "document {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_429_503_and_drops_are_retried_and_everything_lands_once() {
    let proxy = FaultProxy::start(engine().addr());
    let rows = 1500;
    for (what, status, share) in [("429", 429, 0.3), ("503", 503, 0.25), ("drop", 0, 0.2)] {
        proxy.clear();
        let index = unique_name(&format!("fault-{what}"));
        if status > 0 {
            proxy.set_http_error_rate(status, share);
        } else {
            proxy.set_drop_rate(share);
        }
        let before = proxy.stats();
        let report = generated_copy(&proxy, &index, rows).await;
        proxy.clear();
        let after = proxy.stats();
        assert_eq!(report.status, RunStatus::Completed);
        assert_eq!(report.written, rows, "{what}");
        assert!(report.retried > 0, "{what}: nothing was retried");
        if status > 0 {
            assert!(
                after.injected > before.injected,
                "{what}: the proxy injected nothing"
            );
        } else {
            assert!(
                after.dropped > before.dropped,
                "{what}: the proxy dropped nothing"
            );
        }
        check_landed_once(&index, rows);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_and_wrong_credentials_are_clear() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut c = conn(&format!("http://127.0.0.1:{port}"));
    c.retry.max_attempts = 2;
    let e = EsClient::connect(&c).await.unwrap_err();
    assert!(matches!(e, EsError::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");

    let proxy = FaultProxy::start(engine().addr());
    proxy.set_http_error_rate(401, 1.0);
    let mut c = conn(&proxy.url());
    c.username = Some("elastic".into());
    c.password = Some(datatrace_es::Secret::new("wrong-password-123"));
    let e = EsClient::connect(&c).await.unwrap_err();
    assert!(matches!(e, EsError::Auth { status: 401, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("authentication failed") && !msg.contains("wrong-password-123"),
        "{msg}"
    );
    assert!(!format!("{e:?}").contains("wrong-password-123"));

    // Connected fine, then the credentials stop working: the sink fails with a clear error.
    proxy.clear();
    let sink = EsSink::connect(
        &c,
        SinkConfig {
            index: unique_name("auth"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    proxy.set_http_error_rate(403, 1.0);
    let err = Pipeline::new(
        "auth",
        Arc::new(GeneratorSource::new(10, 3, 4)),
        Arc::new(sink),
    )
    .run()
    .await
    .unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains("authentication failed") && !e.contains("wrong-password-123"),
        "{e}"
    );
    // The connector's typed error reaches the run's error, not just its text.
    assert!(
        matches!(
            err.find_source::<EsError>(),
            Some(EsError::Auth { status: 403, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_header_reaches_the_outcomes() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("retry_after");
    let sink = EsSink::connect(
        &conn(&proxy.url()),
        SinkConfig {
            index: index.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let source = GeneratorSource::new(3, 3, 4);
    let schema = source.row(0).schema;
    sink.prepare(&datatrace_core::PrepareContext {
        unit: index.clone(),
        schema: Some(schema),
        resumed: false,
    })
    .await
    .unwrap();
    proxy.set_http_error_rate(429, 1.0);
    proxy.set_retry_after(Some(7));
    let batch = datatrace_core::Batch::new((0..3).map(|i| source.row(i)).collect());
    let outcomes = sink.write(&batch).await.unwrap();
    for o in &outcomes {
        let datatrace_core::Outcome::Retryable(cause) = o else {
            panic!("{o:?}");
        };
        assert_eq!(
            cause.suggested_delay(),
            Some(Duration::from_secs(7)),
            "{cause:?}"
        );
        assert!(cause.contains("429"), "{cause}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_documents_are_rejected_naming_index_and_id() {
    let index = unique_name("large");
    let sink = EsSink::connect(
        &conn(&engine().url()),
        SinkConfig {
            index: index.clone(),
            max_document_bytes: 2_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dlq = Arc::new(MemoryDeadLetterQueue::new());
    // Rows of ~40 bytes and one of ~5 KB.
    let small = GeneratorSource::new(20, 3, 10);
    let big = GeneratorSource::new(1, 3, 5_000);
    let mut records: Vec<Record> = (0..20).map(|i| small.row(i)).collect();
    let mut b = big.row(0);
    b.values[0] = Value::Int(777);
    records.push(b);
    let report = Pipeline::new(
        index.as_str(),
        Arc::new(MemorySource::new(records)),
        Arc::new(sink),
    )
    .dead_letters(dlq.clone())
    .config(PipelineConfig {
        error_policy: ErrorPolicy::DeadLetter,
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(report.written, 20);
    assert_eq!(report.dead_lettered, 1);
    let l = &dlq.list().await.unwrap()[0];
    assert!(
        l.error.contains(&format!("index {index}, document 777"))
            && l.error.contains("max_document_bytes"),
        "{}",
        l.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_items_inside_a_200_are_retried_alone() {
    use datatrace_testkit::bulk::BulkEndpoint;
    let ep = BulkEndpoint::start();
    ep.set_item_error_rate(429, 0.2);
    let rows = 2_000;
    let sink = EsSink::connect(
        &conn(&ep.url()),
        SinkConfig {
            index: "items".into(),
            max_docs: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let report = Pipeline::new(
        "items",
        Arc::new(GeneratorSource::new(rows, 4, 20)),
        Arc::new(sink),
    )
    .config(PipelineConfig {
        batch_size: 500,
        retry: quick_retry(),
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(report.written, rows);
    let s = ep.stats();
    assert!(s.failed_items > 0);
    assert_eq!(
        report.retried, s.failed_items,
        "every failed item retried once per failure"
    );
    // Only the failed items were sent again, never the whole request.
    assert_eq!(s.docs, rows + s.failed_items);

    // Items failing for good (400) are rejected with the reason, the rest is written.
    ep.set_item_error_rate(400, 0.1);
    let dlq = Arc::new(MemoryDeadLetterQueue::new());
    let sink = EsSink::connect(
        &conn(&ep.url()),
        SinkConfig {
            index: "items2".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let report = Pipeline::new(
        "items2",
        Arc::new(GeneratorSource::new(rows, 4, 20)),
        Arc::new(sink),
    )
    .dead_letters(dlq.clone())
    .config(PipelineConfig {
        error_policy: ErrorPolicy::DeadLetter,
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert!(report.dead_lettered > 0);
    assert_eq!(report.written + report.dead_lettered, rows);
    assert_eq!(report.retried, 0);
    assert!(dlq.list().await.unwrap()[0]
        .error
        .contains("document_parsing_exception"));
}

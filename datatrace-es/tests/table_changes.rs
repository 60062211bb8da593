//! Table changes of a change stream (`TRUNCATE`, `DROP TABLE`, `RENAME TABLE`) applied by the
//! sink against osmem: each behaviour, idempotence, the refusal for shared indices, the
//! `fail` and `ignore` policies, and the order through a pipeline with several sink workers.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use datatrace_core::{
    Batch, Column, DataType, Emitter, Op, Part, Pipeline, PipelineConfig, Position, Record,
    RunStatus, Schema, Sink, SinkError, Source, TableChange, TableChangeKind, TableChanges, Value,
};
use datatrace_es::{EsSink, SinkConfig};
use datatrace_testkit::{engine, unique_name, FaultProxy};
use serde_json::{json, Value as Json};

fn table(name: &str) -> Arc<Schema> {
    Arc::new(
        Schema::new(
            name,
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("name", DataType::String),
                Column::new("qty", DataType::Int),
                Column::new("raw", DataType::Bytes),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

fn rows(s: &Arc<Schema>, ids: std::ops::Range<i64>) -> Vec<Record> {
    ids.map(|i| {
        Record::new(
            Op::Insert,
            s.clone(),
            vec![
                Value::Int(i),
                Value::from(format!("n{i}")),
                Value::Int(i * 10),
                Value::Bytes(vec![1u8, 2].into()),
            ],
        )
    })
    .collect()
}

async fn sink(cfg: SinkConfig) -> EsSink {
    EsSink::connect(&conn(&engine().url()), cfg).await.unwrap()
}

async fn write(sink: &EsSink, records: Vec<Record>) {
    let n = records.len();
    let out = sink.write(&Batch::new(records)).await.unwrap();
    assert_eq!(out.len(), n);
    assert!(
        out.iter().all(|o| *o == datatrace_core::Outcome::Written),
        "{out:?}"
    );
}

fn change(kind: TableChangeKind, s: &Arc<Schema>) -> TableChange {
    TableChange::new(kind, s.clone())
}

fn rename_to(to: &Arc<Schema>) -> TableChangeKind {
    TableChangeKind::Rename {
        to: to.clone(),
        to_target: None,
    }
}

fn exists(index: &str) -> bool {
    match engine().request("HEAD", &format!("/{index}"), None).status {
        200 => true,
        404 => false,
        s => panic!("HEAD /{index}: {s}"),
    }
}

/// The `properties` of an index's mapping.
fn properties(index: &str) -> Json {
    let m = os("GET", &format!("/{index}/_mapping"), None);
    let props = m
        .as_object()
        .and_then(|m| m.values().next())
        .map(|i| i["mappings"]["properties"].clone())
        .unwrap_or(Json::Null);
    assert!(props.is_object(), "{index}: {m}");
    props
}

fn shards(index: &str) -> Json {
    let s = os(
        "GET",
        &format!("/{index}/_settings?flat_settings=true"),
        None,
    );
    s[index]["settings"]["index.number_of_shards"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_deletes_the_documents_and_keeps_mapping_and_settings() {
    let name = unique_name("trunc");
    let s = table(&name);
    let sink = sink(SinkConfig {
        settings: datatrace_es::IndexSettings {
            shards: Some(3),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    write(&sink, rows(&s, 0..25)).await;
    assert_eq!(count(&name), 25);
    let mapping = properties(&name);
    assert_eq!(mapping["qty"]["type"], json!("long"), "{mapping}");
    let truncate = change(TableChangeKind::Truncate, &s);
    sink.table_change(&truncate).await.unwrap();
    assert_eq!(count(&name), 0);
    assert_eq!(properties(&name), mapping);
    assert_eq!(shards(&name), json!("3"));
    // Twice (a replay after a crash) is fine, and writes go on into the same index.
    sink.table_change(&truncate).await.unwrap();
    write(&sink, rows(&s, 100..105)).await;
    assert_eq!(
        all_docs(&name).keys().cloned().collect::<Vec<_>>(),
        ["100", "101", "102", "103", "104"]
    );
    assert_eq!(properties(&name), mapping);
    // A table whose index was never created: nothing to do.
    let never = table(&unique_name("never"));
    sink.table_change(&change(TableChangeKind::Truncate, &never))
        .await
        .unwrap();
    assert!(!exists(never.name()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_deletes_the_index_and_later_writes_create_it_again() {
    let name = unique_name("drop");
    let s = table(&name);
    let sink = sink(SinkConfig::default()).await;
    write(&sink, rows(&s, 0..10)).await;
    assert!(exists(&name));
    let drop = change(TableChangeKind::Drop, &s);
    sink.table_change(&drop).await.unwrap();
    assert!(!exists(&name));
    sink.table_change(&drop).await.unwrap();
    // CREATE TABLE again: the sink no longer takes the index as known and creates it from
    // the schema (`binary` for the bytes column, where a dynamic mapping has `text`).
    write(&sink, rows(&s, 50..53)).await;
    assert_eq!(count(&name), 3);
    let props = properties(&name);
    assert_eq!(props["raw"]["type"], json!("binary"), "{props}");
    assert_eq!(props["qty"]["type"], json!("long"), "{props}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_moves_the_documents_to_the_new_names_index() {
    let a = table(&unique_name("ren_a"));
    let b = table(&unique_name("ren_b"));
    let (ia, ib) = (a.name().to_string(), b.name().to_string());
    let sink = sink(SinkConfig {
        settings: datatrace_es::IndexSettings {
            shards: Some(2),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    write(&sink, rows(&a, 0..30)).await;
    let mapping = properties(&ia);
    let rename = change(rename_to(&b), &a);
    sink.table_change(&rename).await.unwrap();
    assert!(!exists(&ia));
    assert_eq!(count(&ib), 30);
    assert_eq!(
        all_docs(&ib)["7"],
        json!({"id": 7, "name": "n7", "qty": 70, "raw": "AQI="})
    );
    assert_eq!(properties(&ib), mapping);
    assert_eq!(shards(&ib), json!("2"));
    // Applied again (a replay): already done.
    sink.table_change(&rename).await.unwrap();
    assert_eq!(count(&ib), 30);
    assert!(!exists(&ia));
    // Later changes under the new name work on the moved documents.
    write(&sink, rows(&b, 30..35)).await;
    assert_eq!(count(&ib), 35);
    sink.table_change(&change(TableChangeKind::Truncate, &b))
        .await
        .unwrap();
    assert_eq!(count(&ib), 0);
    write(&sink, rows(&b, 40..42)).await;
    assert_eq!(count(&ib), 2);
    sink.table_change(&change(TableChangeKind::Drop, &b))
        .await
        .unwrap();
    assert!(!exists(&ib));
    // The old name is free again: a new table `a` gets a fresh index of its own.
    write(&sink, rows(&a, 0..1)).await;
    assert_eq!(count(&ia), 1);
    assert!(!exists(&ib));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rename_is_finished_and_routed_targets_are_used() {
    let a = table(&unique_name("part_a"));
    let b = table(&unique_name("part_b"));
    let sink = sink(SinkConfig {
        index: "{prefix}-{table}".into(),
        prefix: "dt".into(),
        ..Default::default()
    })
    .await;
    let (ia, ib) = (format!("dt-{}", a.name()), format!("dt-{}", b.name()));
    write(&sink, rows(&a, 0..8)).await;
    // A crash after the new index was created and part of the documents copied.
    os("PUT", &format!("/{ib}"), None);
    load(
        &ib,
        &[("3".into(), json!({"id": 3, "name": "n3", "qty": 30}))],
    );
    sink.table_change(&change(rename_to(&b), &a)).await.unwrap();
    assert!(!exists(&ia));
    assert_eq!(count(&ib), 8);

    // Routed targets: the change's target names the index, not the table name.
    let routed_from = unique_name("routed_from");
    let routed_to = unique_name("routed_to");
    let mut r = rows(&a, 0..4);
    for rec in &mut r {
        rec.target = Some(routed_from.as_str().into());
    }
    write(&sink, r).await;
    let mut c = change(
        TableChangeKind::Rename {
            to: b.clone(),
            to_target: Some(routed_to.as_str().into()),
        },
        &a,
    );
    c.target = Some(routed_from.as_str().into());
    sink.table_change(&c).await.unwrap();
    assert!(!exists(&format!("dt-{routed_from}")));
    assert_eq!(count(&format!("dt-{routed_to}")), 4);
    // Same index for both names: nothing to do.
    let mut same = c.clone();
    same.target = Some(routed_to.as_str().into());
    sink.table_change(&same).await.unwrap();
    assert_eq!(count(&format!("dt-{routed_to}")), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_index_is_never_truncated_or_dropped() {
    let shared = unique_name("shared");
    let a = table(&unique_name("sa"));
    let b = table(&unique_name("sb"));
    let sink = sink(SinkConfig {
        index: shared.clone(),
        ..Default::default()
    })
    .await;
    write(&sink, rows(&a, 0..5)).await;
    write(&sink, rows(&b, 100..103)).await;
    assert_eq!(count(&shared), 8);
    for kind in [TableChangeKind::Truncate, TableChangeKind::Drop] {
        let c = change(kind, &a);
        let e = sink.table_change(&c).await.unwrap_err();
        let SinkError::Fatal(m) = &e else {
            panic!("not fatal: {e:?}")
        };
        assert!(
            m.contains(&c.to_string())
                && m.contains(&format!("index {shared}"))
                && m.contains("{table}")
                && m.contains("table_changes = \"ignore\""),
            "{m}"
        );
    }
    assert_eq!(count(&shared), 8);
    // A rename keeps the documents in the same index: nothing to do.
    sink.table_change(&change(rename_to(&b), &a)).await.unwrap();
    assert_eq!(count(&shared), 8);

    // Time-based names: only the current index is known, so refused as well.
    let daily = sink_for(&format!(
        "{}-{{table}}-{{now:yyyy.MM.dd}}",
        unique_name("logs")
    ))
    .await;
    let e = daily
        .table_change(&change(TableChangeKind::Truncate, &a))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Fatal(m) if m.contains("time-based") && m.contains("table_changes = \"ignore\"")),
        "{e:?}"
    );
}

async fn sink_for(pattern: &str) -> EsSink {
    sink(SinkConfig {
        index: pattern.into(),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_and_ignore_leave_the_index_alone() {
    let a = table(&unique_name("pol_a"));
    let b = table(&unique_name("pol_b"));
    let failing = sink(SinkConfig {
        table_changes: TableChanges::Fail,
        ..Default::default()
    })
    .await;
    write(&failing, rows(&a, 0..6)).await;
    for c in [
        change(TableChangeKind::Truncate, &a),
        change(TableChangeKind::Drop, &a),
        change(rename_to(&b), &a),
    ] {
        let e = failing.table_change(&c).await.unwrap_err();
        let SinkError::Fatal(m) = &e else {
            panic!("not fatal: {e:?}")
        };
        assert!(
            m.contains(&c.to_string())
                && m.contains(&format!("index {}", a.name()))
                && m.contains("table_changes = \"fail\""),
            "{m}"
        );
    }
    assert_eq!(count(a.name()), 6);

    let ignoring = sink(SinkConfig {
        table_changes: TableChanges::Ignore,
        ..Default::default()
    })
    .await;
    for c in [
        change(TableChangeKind::Truncate, &a),
        change(TableChangeKind::Drop, &a),
        change(rename_to(&b), &a),
    ] {
        ignoring.table_change(&c).await.unwrap();
    }
    assert_eq!(count(a.name()), 6);
    assert!(!exists(b.name()));

    // The setting as it appears in job files.
    let cfg: SinkConfig = serde_json::from_str(r#"{"table_changes": "ignore"}"#).unwrap();
    assert_eq!(cfg.table_changes, TableChanges::Ignore);
    assert_eq!(SinkConfig::default().table_changes, TableChanges::Apply);
    assert!(serde_json::from_str::<SinkConfig>(r#"{"table_changes": "drop"}"#).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_and_busy_requests_are_transient_other_errors_fatal() {
    let proxy = FaultProxy::start(engine().addr());
    let mut c = conn(&proxy.url());
    c.retry.max_attempts = 2;
    let sink = EsSink::connect(&c, SinkConfig::default()).await.unwrap();
    let s = table(&unique_name("busy"));
    write(&sink, rows(&s, 0..4)).await;
    let truncate = change(TableChangeKind::Truncate, &s);
    for (what, status) in [("429", 429), ("503", 503), ("drop", 0)] {
        if status > 0 {
            proxy.set_http_error_rate(status, 1.0);
        } else {
            proxy.set_drop_rate(1.0);
        }
        let e = sink.table_change(&truncate).await.unwrap_err();
        proxy.clear();
        assert!(
            matches!(&e, SinkError::Transient(m) if m.contains(&truncate.to_string()) && m.contains(s.name())),
            "{what}: {e:?}"
        );
    }
    proxy.set_http_error_rate(500, 1.0);
    let drop = change(TableChangeKind::Drop, &s);
    let e = sink.table_change(&drop).await.unwrap_err();
    proxy.clear();
    assert!(
        matches!(&e, SinkError::Fatal(m) if m.contains("DROP TABLE") && m.contains(&format!("index {}", s.name())) && m.contains("HTTP 500")),
        "{e:?}"
    );
    // Retried once the cluster answers again.
    sink.table_change(&truncate).await.unwrap();
    assert_eq!(count(s.name()), 0);
}

/// A change stream in miniature: rows of `a`, `TRUNCATE a`, more rows of `a`,
/// `RENAME a TO b`, rows of `b`, with a checkpoint after each step.
struct Stream {
    a: Arc<Schema>,
    b: Arc<Schema>,
}

#[async_trait]
impl Source for Stream {
    async fn read(
        &self,
        _part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        assert!(from.is_none(), "a fresh run starts at the beginning");
        let mut step = 0;
        macro_rules! checkpoint {
            () => {{
                step += 1;
                out.checkpoint(Position::new(json!(step))).await?;
            }};
        }
        for r in rows(&self.a, 0..200) {
            out.emit(r).await?;
        }
        checkpoint!();
        out.table_change(change(TableChangeKind::Truncate, &self.a))
            .await?;
        checkpoint!();
        for r in rows(&self.a, 200..260) {
            out.emit(r).await?;
        }
        checkpoint!();
        out.table_change(change(rename_to(&self.b), &self.a))
            .await?;
        checkpoint!();
        for r in rows(&self.b, 300..340) {
            out.emit(r).await?;
        }
        checkpoint!();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_applies_table_changes_between_the_records_around_them() {
    let a = table(&unique_name("pipe_a"));
    let b = table(&unique_name("pipe_b"));
    let sink = Arc::new(
        sink(SinkConfig {
            max_docs: 7,
            ..Default::default()
        })
        .await,
    );
    let report = Pipeline::new(
        "stream",
        Arc::new(Stream {
            a: a.clone(),
            b: b.clone(),
        }),
        sink,
    )
    .config(PipelineConfig {
        batch_size: 10,
        sink_concurrency: 4,
        ..Default::default()
    })
    .run()
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.written, 300);
    // Every row before the truncate was written before it (none survives), none after it
    // was deleted by it, and the rename moved exactly the rows written before it.
    assert!(!exists(a.name()));
    let ids: Vec<i64> = all_docs(b.name())
        .keys()
        .map(|k| k.parse().unwrap())
        .collect::<std::collections::BTreeSet<i64>>()
        .into_iter()
        .collect();
    let expected: Vec<i64> = (200..260).chain(300..340).collect();
    assert_eq!(ids, expected);
}

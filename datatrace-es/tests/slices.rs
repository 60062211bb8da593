//! Sliced reads (point-in-time and scroll): each document exactly once, resume after a
//! cancel from the last sort values, contexts always released.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    Batch, CancellationToken, MemoryCheckpointStore, Outcome, Pipeline, PipelineConfig, RunStatus,
    Sink, SinkError, Value,
};
use datatrace_es::{EsSource, ReadMethod, SourceConfig};
use datatrace_testkit::{engine, unique_name};
use serde_json::json;

fn make_index(n: usize, shards: u32) -> String {
    let index = unique_name("sl");
    os(
        "PUT",
        &format!("/{index}"),
        Some(&json!({"settings": {"number_of_shards": shards}}).to_string()),
    );
    let docs: Vec<_> = (0..n)
        .map(|i| (format!("{i:05}"), json!({"i": i, "s": format!("v{i}")})))
        .collect();
    load(&index, &docs);
    index
}

fn ids_of(sink: &CollectingSink) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in sink.records() {
        let Value::String(id) = &r.values[0] else {
            panic!("id column is not a string: {:?}", r.values[0]);
        };
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    seen
}

async fn read_all(
    index: &str,
    cfg: SourceConfig,
    parallel: usize,
) -> (Arc<CollectingSink>, Arc<EsSource>) {
    let source = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg)
            .await
            .unwrap(),
    );
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new(index, source.clone(), sink.clone())
        .config(PipelineConfig {
            batch_size: 100,
            read_parallelism: parallel,
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    (sink, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_document_once_with_1_2_4_slices() {
    let index = make_index(1000, 2);
    for slices in [1, 2, 4] {
        for parallel in [1, slices] {
            let cfg = SourceConfig {
                slices,
                page_size: 77,
                ..SourceConfig::new(index.clone())
            };
            let (sink, source) = read_all(&index, cfg, parallel).await;
            let seen = ids_of(&sink);
            assert_eq!(seen.len(), 1000, "slices {slices}, parallel {parallel}");
            assert!(
                seen.values().all(|&c| c == 1),
                "a document read twice with {slices} slices"
            );
            // One point-in-time for the whole split, closed at the end.
            let history = source.pit_history();
            assert!(!history.is_empty());
            assert!(history.iter().all(|(_, closed)| *closed), "{history:?}");
            let open = open_pits();
            assert!(
                history.iter().all(|(id, _)| !open.contains(id)),
                "a point-in-time was left open"
            );
            // Typed values: `i` is a long.
            let r = &sink.records()[0];
            assert!(
                matches!(r.get("i"), Some(Value::Int(_))),
                "{:?}",
                r.get("i")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_slices_read_each_document_once() {
    let index = make_index(500, 2);
    for slices in [1, 2, 4] {
        let cfg = SourceConfig {
            slices,
            page_size: 60,
            method: ReadMethod::Scroll,
            ..SourceConfig::new(index.clone())
        };
        let (sink, source) = read_all(&index, cfg, 2).await;
        assert!(source.uses_scroll());
        let seen = ids_of(&sink);
        assert_eq!(seen.len(), 500, "slices {slices}");
        assert!(seen.values().all(|&c| c == 1));
    }
}

/// Acknowledges writes slowly and cancels the run after `stop_after` records.
struct StopAfter {
    inner: CollectingSink,
    written: AtomicU64,
    stop_after: u64,
    cancel: CancellationToken,
}

#[async_trait]
impl Sink for StopAfter {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let out = self.inner.write(batch).await?;
        let n = self.written.fetch_add(batch.len() as u64, Ordering::SeqCst) + batch.len() as u64;
        if n >= self.stop_after {
            self.cancel.cancel();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        Ok(out)
    }
}

async fn resume_case(method: ReadMethod) {
    let index = make_index(1200, 2);
    let store = Arc::new(MemoryCheckpointStore::new());
    let cfg = SourceConfig {
        slices: 2,
        page_size: 50,
        method,
        ..SourceConfig::new(index.clone())
    };
    let config = PipelineConfig {
        batch_size: 50,
        read_parallelism: 2,
        checkpoint_interval: std::time::Duration::ZERO,
        channel_capacity: 1,
        ..Default::default()
    };
    // First run: cancelled part-way.
    let cancel = CancellationToken::new();
    let first = Arc::new(StopAfter {
        inner: CollectingSink::new(),
        written: AtomicU64::new(0),
        stop_after: 400,
        cancel: cancel.clone(),
    });
    let source1 = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg.clone())
            .await
            .unwrap(),
    );
    let r1 = Pipeline::new(index.as_str(), source1.clone(), first.clone())
        .checkpoints(store.clone())
        .config(config.clone())
        .cancel_token(cancel)
        .run()
        .await
        .unwrap();
    assert_eq!(r1.status, RunStatus::Stopped);
    assert!(r1.written >= 400 && r1.written < 1200, "{r1:?}");
    let kept: Vec<String> = source1
        .pit_history()
        .into_iter()
        .filter(|(_, closed)| !closed)
        .map(|(id, _)| id)
        .collect();
    if engine().flavor() == datatrace_testkit::EngineFlavor::Elasticsearch
        && method == ReadMethod::Pit
    {
        // `_shard_doc` positions need their context: a cancel leaves it open for the resume.
        assert_eq!(kept.len(), 1, "{:?}", source1.pit_history());
    } else {
        assert!(kept.is_empty(), "cancel left a context open");
    }
    drop(source1);

    // Second run, new source (the old point-in-time is gone): continues where it stopped.
    let second = Arc::new(CollectingSink::new());
    let source2 = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg)
            .await
            .unwrap(),
    );
    let r2 = Pipeline::new(index.as_str(), source2.clone(), second.clone())
        .checkpoints(store)
        .config(config)
        .run()
        .await
        .unwrap();
    assert_eq!(r2.status, RunStatus::Completed);
    assert!(r2.resumed);
    assert!(
        r2.read <= 1200 - r1.written + 200,
        "the second run re-read too much: {r1:?} {r2:?}"
    );

    let mut seen = ids_of(&first.inner);
    for (id, c) in ids_of(&second) {
        *seen.entry(id).or_insert(0) += c;
    }
    assert_eq!(seen.len(), 1200, "documents missing after the resume");
    // Replays are limited to the records after the last checkpoint of the first run.
    let replayed = seen.values().filter(|&&c| c > 1).count() as u64;
    assert!(replayed <= 200, "replayed {replayed}");
    // every context closed at the end, the one adopted from the first run too
    assert!(source2.pit_history().iter().all(|(_, c)| *c));
    for id in kept {
        assert!(
            source2.pit_history().iter().any(|(i, _)| *i == id),
            "{id} not adopted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_cancel_continues_from_sort_values() {
    resume_case(ReadMethod::Pit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_resume_skips_what_was_delivered() {
    resume_case(ReadMethod::Scroll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_source_filtering_apply() {
    let index = make_index(300, 1);
    let cfg = SourceConfig {
        query: Some(json!({"range": {"i": {"gte": 100, "lt": 150}}})),
        source_includes: vec!["i".into()],
        ..SourceConfig::new(index.clone())
    };
    let (sink, _) = read_all(&index, cfg, 1).await;
    let records = sink.records();
    assert_eq!(records.len(), 50);
    for r in &records {
        let i = r.get("i").and_then(|v| v.as_i64()).unwrap();
        assert!((100..150).contains(&i));
        assert_eq!(
            r.get("s"),
            Some(&Value::Null),
            "excluded by _source includes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_index_is_named() {
    let source = EsSource::connect(
        &conn(&engine().url()),
        SourceConfig::new("no-such-index-xyz"),
    )
    .await
    .unwrap();
    use datatrace_core::Source;
    let e = source.schema().await.unwrap_err().to_string();
    assert!(
        e.contains("no-such-index-xyz") && e.contains("does not exist"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_are_released_when_a_read_fails() {
    let index = make_index(50, 1);
    for method in [ReadMethod::Pit, ReadMethod::Scroll] {
        let cfg = SourceConfig {
            query: Some(json!({"no_such_query_type": {}})),
            slices: 2,
            method,
            ..SourceConfig::new(index.clone())
        };
        let source = Arc::new(
            EsSource::connect(&conn(&engine().url()), cfg)
                .await
                .unwrap(),
        );
        let e = Pipeline::new(
            index.as_str(),
            source.clone(),
            Arc::new(CollectingSink::new()),
        )
        .config(PipelineConfig {
            read_parallelism: 2,
            ..Default::default()
        })
        .run()
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains(&index) && e.contains("HTTP 400"), "{e}");
        let history = source.pit_history();
        if method == ReadMethod::Pit {
            assert!(!history.is_empty());
        }
        assert!(history.iter().all(|(_, closed)| *closed), "{history:?}");
        let open = open_pits();
        assert!(history.iter().all(|(id, _)| !open.contains(id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_pit_api_against_the_bulk_endpoint() {
    // The testkit's bulk endpoint answers like Elasticsearch 8: `_pit` with `id`, `_shard_doc`.
    use datatrace_testkit::bulk::BulkEndpoint;
    let ep = BulkEndpoint::with_corpus(2_345, 200);
    for slices in [1, 2, 4] {
        let cfg = SourceConfig {
            slices,
            page_size: 100,
            ..SourceConfig::new("corpus")
        };
        let source = Arc::new(EsSource::connect(&conn(&ep.url()), cfg).await.unwrap());
        assert_eq!(
            source
                .inferred_schema()
                .await
                .unwrap()
                .column("price")
                .unwrap()
                .data_type,
            datatrace_core::DataType::Float
        );
        let sink = Arc::new(CollectingSink::new());
        let before = ep.stats();
        Pipeline::new("corpus", source, sink.clone())
            .config(PipelineConfig {
                read_parallelism: slices,
                ..Default::default()
            })
            .run()
            .await
            .unwrap();
        let seen = ids_of(&sink);
        assert_eq!(seen.len(), 2_345);
        assert!(seen.values().all(|&c| c == 1));
        let after = ep.stats();
        assert_eq!(
            after.pits_opened - before.pits_opened,
            1,
            "one PIT shared by the slices"
        );
        assert_eq!(
            after.pits_closed - before.pits_closed,
            1,
            "and closed with DELETE /_pit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_tiebreaker_and_slice_field() {
    let index = make_index(700, 2);
    let cfg = SourceConfig {
        slices: 3,
        page_size: 64,
        tiebreaker: Some("i".into()),
        slice_field: Some("i".into()),
        ..SourceConfig::new(index.clone())
    };
    let (sink, _) = read_all(&index, cfg, 3).await;
    let seen = ids_of(&sink);
    assert_eq!(seen.len(), 700);
    assert!(seen.values().all(|&c| c == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_slices_are_whole_shards_and_a_slice_field_needs_a_tiebreaker() {
    let index = make_index(900, 3);
    let plain = EsSource::connect(&conn(&engine().url()), SourceConfig::new(index.clone()))
        .await
        .unwrap();
    let by_field = SourceConfig {
        slices: 4,
        slice_field: Some("i".into()),
        ..SourceConfig::new(index.clone())
    };
    let auto = EsSource::connect(&conn(&engine().url()), by_field.clone())
        .await
        .unwrap();
    let pit_only = EsSource::connect(
        &conn(&engine().url()),
        SourceConfig {
            method: ReadMethod::Pit,
            ..by_field.clone()
        },
    )
    .await;
    use datatrace_core::Source;
    if engine().flavor().is_opensearch_family() {
        // `_seq_no` is unique only within a shard: one slice per shard, whatever is asked.
        assert!(!plain.uses_scroll());
        assert_eq!(plain.split(1).await.unwrap().len(), 3);
        // Slices cut by a field cross shards: a scroll, or a clear refusal for method pit.
        assert!(auto.uses_scroll());
        let e = pit_only.unwrap_err().to_string();
        assert!(e.contains("tiebreaker") && e.contains("slice_field"), "{e}");
    }
    let (sink, _) = read_all(&index, by_field, 4).await;
    let seen = ids_of(&sink);
    assert_eq!(seen.len(), 900);
    assert!(seen.values().all(|&c| c == 1));
}

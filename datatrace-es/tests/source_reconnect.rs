//! The search source through a real engine restart and dropped connections
//! (`cargo test source_reconnect`): a point-in-time read and a scroll read of an index of 3
//! shards, each stopped mid-read by a restart of its own engine (`DedicatedEngine`: down for
//! a while, then up again on the same port with the same data, its search contexts gone and
//! its shards recovering), deliver every document exactly once; so does a scroll read
//! whose connections are dropped (answers lost after the engine moved the scroll on).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::conn;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    Batch, Outcome, Pipeline, PipelineConfig, RetryPolicy, RunStatus, Sink, SinkError, Value,
};
use datatrace_es::{EsSource, ReadMethod, SourceConfig};
use datatrace_testkit::{engine, unique_name, DedicatedEngine, FaultProxy, SearchEngine};
use serde_json::json;
use tokio::sync::Notify;

const DOCS: usize = 3000;

/// An index of 3 shards with `DOCS` documents on `es`.
fn make_index(es: &SearchEngine) -> String {
    let index = unique_name("reconnect");
    let r = es.request(
        "PUT",
        &format!("/{index}"),
        Some(&json!({"settings": {"number_of_shards": 3, "number_of_replicas": 0}}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let docs: Vec<_> = (0..DOCS)
        .map(|i| (format!("{i:05}"), json!({"i": i, "s": format!("v{i}")})))
        .collect();
    for chunk in docs.chunks(500) {
        let mut body = String::new();
        for (id, d) in chunk {
            body.push_str(&json!({"index": {"_index": index, "_id": id}}).to_string());
            body.push('\n');
            body.push_str(&d.to_string());
            body.push('\n');
        }
        let r = es.request("POST", "/_bulk?refresh=true", Some(&body));
        assert!(r.status == 200 && r.json()["errors"] == false, "{}", r.body);
    }
    index
}

/// Asserts every document was delivered exactly once with its values.
fn assert_exactly_once(sink: &CollectingSink) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in sink.records() {
        let Value::String(id) = &r.values[0] else {
            panic!("id column is not a string: {:?}", r.values[0]);
        };
        let i: usize = id.parse().unwrap();
        let values = format!("{:?}", r.values);
        assert!(
            values.contains(&format!("\"v{i}\"")),
            "document {id} has other values: {values}"
        );
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(seen.len(), DOCS, "documents missing");
}

/// Holds its first write until released, so that a read stands still mid-way.
struct Gate {
    inner: CollectingSink,
    entered: Notify,
    release: Notify,
    first: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Sink for Gate {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        if !self.first.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.write(batch).await
    }
}

fn source_config(index: &str, method: ReadMethod) -> SourceConfig {
    SourceConfig {
        page_size: 50,
        method,
        keep_alive: "10m".into(),
        reconnect: RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Some(Duration::from_secs(300)),
        },
        ..SourceConfig::new(index)
    }
}

fn small_batches() -> PipelineConfig {
    PipelineConfig {
        batch_size: 50,
        channel_capacity: 1,
        read_parallelism: 3,
        sink_concurrency: 1,
        ..Default::default()
    }
}

/// Reads `index` of `es` while the engine restarts under the read.
async fn read_through_a_restart(es: &Arc<DedicatedEngine>, index: &str, method: ReadMethod) {
    let mut cfg = source_config(index, method);
    if es.flavor() == datatrace_testkit::EngineFlavor::Elasticsearch {
        // `_shard_doc` values mean nothing in the point-in-time replacing a lost one (the
        // slice would be read again from its start); a unique field holds in any.
        cfg.tiebreaker = Some("i".into());
    }
    let source = Arc::new(EsSource::connect(&conn(&es.url()), cfg).await.unwrap());
    if method == ReadMethod::Auto && es.flavor() == datatrace_testkit::EngineFlavor::OpenSearch {
        assert!(
            !source.uses_scroll(),
            "OpenSearch reads with a point-in-time"
        );
    }
    let gate = Arc::new(Gate {
        inner: CollectingSink::new(),
        entered: Notify::new(),
        release: Notify::new(),
        first: Default::default(),
    });
    let run = tokio::spawn(
        Pipeline::new(index, source.clone(), gate.clone())
            .config(small_batches())
            .run(),
    );
    // The read stands still with its contexts open: the engine goes down...
    gate.entered.notified().await;
    let e = es.clone();
    tokio::task::spawn_blocking(move || e.stop()).await.unwrap();
    // ... the readers go on and find it gone ...
    gate.release.notify_one();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // ... and it comes back without the contexts, its shards recovering.
    let e = es.clone();
    tokio::task::spawn_blocking(move || e.start_again())
        .await
        .unwrap();
    let report = run.await.unwrap().expect("the read survives the restart");
    assert_eq!(report.status, RunStatus::Completed);
    assert_exactly_once(&gate.inner);
    if !source.uses_scroll() {
        assert!(
            source.pit_history().len() >= 2,
            "a new point-in-time replaced the lost one: {:?}",
            source.pit_history()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_reconnect_pit_and_scroll_reads_survive_an_engine_restart() {
    let es = Arc::new(DedicatedEngine::start());
    let index = make_index(&es);
    // A point-in-time read where the engine has one (else a scroll), then a scroll.
    read_through_a_restart(&es, &index, ReadMethod::Auto).await;
    read_through_a_restart(&es, &index, ReadMethod::Scroll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_reconnect_scroll_survives_dropped_connections() {
    let index = make_index(engine());
    let proxy = FaultProxy::start(engine().addr());
    // A share of the answers is lost after the engine served the request: a scroll
    // continuation sent again would skip a page.
    proxy.set_drop_rate(0.15);
    let cfg = SourceConfig {
        // Answers lost on first pages leave contexts behind: let them go soon.
        keep_alive: "1m".into(),
        ..source_config(&index, ReadMethod::Scroll)
    };
    let source = Arc::new(EsSource::connect(&conn(&proxy.url()), cfg).await.unwrap());
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new(index.as_str(), source, sink.clone())
        .config(small_batches())
        .run()
        .await
        .expect("the read survives dropped connections");
    assert_eq!(report.status, RunStatus::Completed);
    assert!(proxy.stats().dropped > 0, "{:?}", proxy.stats());
    assert_exactly_once(&sink);
}

//! `snapshot+cdc` while the source is being written to: snapshots of every table after the
//! stream's start position P0, then the stream from P0; after the writer stops and the
//! stream catches up, the target equals the source exactly (MySQL) / document for document
//! (Elasticsearch with external versions).

mod cdc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdc::*;
use datatrace_core::{CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, Sink};
use datatrace_mysql::binlog::handoff::{prepare_stream_start, stamp_snapshot};
use datatrace_mysql::binlog::{BinlogSource, CdcOptions};
use datatrace_mysql::{table_info, MySqlSink, MySqlSource, SinkOptions, SourceOptions};

const TABLES: [&str; 3] = ["a", "b", "c"];

/// Runs `snapshot+cdc` from `src` into `sink` with a writer running throughout.
async fn handoff(src: &str, sink: Arc<dyn Sink>) {
    seed(src, 300);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let w = tokio::spawn(writer_counting(
        src.to_string(),
        stop.clone(),
        count.clone(),
    ));
    // Changes before the start position, during the snapshots and during the stream: the
    // writer's own count says when there were enough of each (a fixed time gave a loaded
    // machine's writer too few).
    wait_for_count(&count, 20).await;

    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let job = "handoff";
    let conn = connect(src).await;
    let p0 = prepare_stream_start(&conn, &store, job, "binlog")
        .await
        .expect("P0");
    for t in TABLES {
        let info = table_info(&conn, src, t).await.expect("info");
        let s = Arc::new(
            MySqlSource::new(
                conn.clone(),
                info,
                SourceOptions {
                    chunk_rows: 100,
                    ..Default::default()
                },
            )
            .expect("source"),
        );
        Pipeline::new(format!("{src}.{t}"), s, sink.clone())
            .job(job)
            .checkpoints(store.clone())
            .transform(stamp_snapshot(&p0))
            .config(PipelineConfig {
                read_parallelism: 2,
                sink_concurrency: 2,
                ..Default::default()
            })
            .run()
            .await
            .expect("snapshot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cdc = CdcOptions {
        heartbeat_secs: 1,
        ..opts(src, &p0)
    };
    let stream = Pipeline::new(
        "binlog",
        Arc::new(BinlogSource::new(conn.clone(), cdc).expect("binlog")),
        sink.clone(),
    )
    .job(job)
    .checkpoints(store.clone())
    .config(PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 3,
        batch_size: 100,
        linger: Duration::from_millis(20),
        checkpoint_interval: Duration::from_millis(50),
        ..Default::default()
    });
    let cancel = stream.canceller();
    let running = tokio::spawn(stream.run());
    let streamed_from = count.load(Ordering::Relaxed);
    wait_for_count(&count, (streamed_from + 100).max(101)).await;
    stop.store(true, Ordering::Relaxed);
    let statements = w.await.expect("writer");
    assert!(
        statements > 100,
        "the writer ran only {statements} statements"
    );
    let end = now().await;
    let waited = tokio::spawn({
        let store = store.clone();
        async move { wait_for_checkpoint(&store, job, "binlog", &end).await }
    })
    .await;
    cancel.cancel();
    let report = running.await.expect("join");
    waited.unwrap_or_else(|e| panic!("{e:?}; stream: {report:?}"));
    let report = report.expect("stream");
    assert_eq!(report.status, datatrace_core::RunStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_stream_meet_without_gap_into_mysql() {
    let src = db().create_database("ho_src");
    let dst = db().create_database("ho_dst");
    let sink = Arc::new(
        MySqlSink::new(
            connect(&dst).await,
            SinkOptions {
                database: Some(dst.clone()),
                create_table: true,
                ..Default::default()
            },
        )
        .expect("sink"),
    );
    handoff(&src, sink).await;
    for (t, order) in [("a", "id"), ("b", "k1, k2"), ("c", "id")] {
        let q = |d: &str| exec(&format!("SELECT * FROM `{d}`.`{t}` ORDER BY {order}"));
        let (a, b) = (q(&src), q(&dst));
        assert!(a.lines().count() > 100, "{t}: {}", a.lines().count());
        assert!(a == b, "{t} differs:\n{}", diff(&a, &b));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_stream_meet_without_gap_into_elasticsearch() {
    use datatrace_es::{ConnectionConfig, EsSink, SinkConfig, VersionSource};
    let src = db().create_database("ho_es");
    let prefix = datatrace_testkit::unique_name("ho");
    let cfg = SinkConfig {
        index: format!("{prefix}-{{table}}"),
        version: Some(VersionSource::Position),
        mapping: cdc::es_mapping(),
        ..Default::default()
    };
    let sink = EsSink::connect(
        &ConnectionConfig::new([datatrace_testkit::engine().url()]),
        cfg,
    )
    .await
    .expect("es sink");
    handoff(&src, Arc::new(sink)).await;
    for (t, key) in [("a", "id"), ("b", "CONCAT(k1, '_', k2)"), ("c", "id")] {
        let rows = exec(&format!("SELECT {key}, v, n FROM `{src}`.`{t}` ORDER BY 1"));
        let want: BTreeMap<String, (String, i64)> = rows
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), (f[1].to_string(), f[2].parse().unwrap()))
            })
            .collect();
        let got: BTreeMap<String, (String, i64)> = es_docs(&format!("{prefix}-{t}"))
            .into_iter()
            .map(|(id, d)| {
                (
                    id,
                    (
                        d["v"].as_str().unwrap_or("?").to_string(),
                        d["n"].as_i64().unwrap_or(i64::MIN),
                    ),
                )
            })
            .collect();
        assert!(want.len() > 100);
        assert_eq!(want.len(), got.len(), "{t}: document count");
        for (id, w) in &want {
            assert_eq!(got.get(id), Some(w), "{t}: document {id}");
        }
    }
}

fn es_docs(index: &str) -> BTreeMap<String, serde_json::Value> {
    let os = datatrace_testkit::engine();
    os.request("POST", &format!("/{index}/_refresh"), None);
    let r = os.request(
        "POST",
        &format!("/{index}/_search"),
        Some(r#"{"size": 10000}"#),
    );
    assert!(r.status < 300, "{} {}", r.status, r.body);
    let v: serde_json::Value = r.json();
    v["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
        .collect()
}

fn diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let only_a: Vec<&&str> = al.iter().filter(|l| !bl.contains(l)).take(5).collect();
    let only_b: Vec<&&str> = bl.iter().filter(|l| !al.contains(l)).take(5).collect();
    format!("source only: {only_a:?}\ntarget only: {only_b:?}")
}

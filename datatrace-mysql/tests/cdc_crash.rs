//! kill -9 of the pipeline mid-stream (and mid-snapshot), restarted each time, while the
//! source is written to: afterwards the target equals the source exactly, with no duplicate
//! rows and (Elasticsearch) no document left at an older version than its last change.
//!
//! The pipeline runs in a child process: this test binary run again with `CDC_CHILD` set,
//! which runs only [`child_pipeline`].

mod cdc;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdc::*;
use datatrace_core::{CheckpointStore, FileCheckpointStore, Pipeline, PipelineConfig, Sink};
use datatrace_mysql::binlog::handoff::{prepare_stream_start, stamp_snapshot};
use datatrace_mysql::binlog::{BinlogSource, CdcOptions};
use datatrace_mysql::{table_info, MySqlSink, MySqlSource, SinkOptions, SourceOptions};

const TABLES: [&str; 3] = ["a", "b", "c"];
const JOB: &str = "crash";

/// The child: `snapshot+cdc` from `CDC_SRC` into MySQL `CDC_DST` or the index prefix
/// `CDC_ES`, checkpoints in `CDC_DIR`, forever.
#[test]
fn child_pipeline() {
    let Ok(dir) = std::env::var("CDC_CHILD") else {
        return;
    };
    let src = std::env::var("CDC_SRC").expect("CDC_SRC");
    let url = std::env::var("CDC_URL").expect("CDC_URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let conn = datatrace_mysql::MySqlConnection::connect(
            &datatrace_mysql::ConnectionConfig::new(format!("{url}/{src}")),
        )
        .await
        .expect("connect");
        let sink: Arc<dyn Sink> = match (std::env::var("CDC_DST"), std::env::var("CDC_ES")) {
            (Ok(dst), _) => {
                let c = datatrace_mysql::MySqlConnection::connect(
                    &datatrace_mysql::ConnectionConfig::new(format!("{url}/{dst}")),
                )
                .await
                .expect("connect dst");
                Arc::new(
                    MySqlSink::new(
                        c,
                        SinkOptions {
                            database: Some(dst),
                            create_table: true,
                            ..Default::default()
                        },
                    )
                    .unwrap(),
                )
            }
            (_, Ok(prefix)) => {
                use datatrace_es::{ConnectionConfig, EsSink, SinkConfig, VersionSource};
                let cfg = SinkConfig {
                    index: format!("{prefix}-{{table}}"),
                    version: Some(VersionSource::Position),
                    // The child inherits DATATRACE_SEARCH_ENGINE: the parent's engine.
                    mapping: datatrace_es::MappingConfig {
                        unsigned: cdc::es_unsigned(datatrace_testkit::EngineFlavor::selected()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let es = std::env::var("CDC_ES_URL").unwrap();
                Arc::new(
                    EsSink::connect(&ConnectionConfig::new([es]), cfg)
                        .await
                        .expect("es"),
                )
            }
            _ => panic!("no target"),
        };
        let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&dir));
        let p0 = prepare_stream_start(&conn, &store, JOB, "binlog")
            .await
            .expect("P0");
        for t in TABLES {
            let info = table_info(&conn, &src, t).await.expect("info");
            let s = Arc::new(
                MySqlSource::new(
                    conn.clone(),
                    info,
                    SourceOptions {
                        chunk_rows: 100,
                        page_rows: 50,
                        checkpoint_rows: 25,
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            Pipeline::new(format!("{src}.{t}"), s, sink.clone())
                .job(JOB)
                .checkpoints(store.clone())
                .transform(stamp_snapshot(&p0))
                .config(PipelineConfig {
                    batch_size: 50,
                    checkpoint_interval: Duration::from_millis(20),
                    ..Default::default()
                })
                .run()
                .await
                .expect("snapshot");
        }
        let cdc = CdcOptions {
            heartbeat_secs: 1,
            server_id: std::env::var("CDC_SERVER_ID").unwrap().parse().unwrap(),
            ..CdcOptions::tables([format!("{src}.*")])
        };
        Pipeline::new(
            "binlog",
            Arc::new(BinlogSource::new(conn.clone(), cdc).unwrap()),
            sink,
        )
        .job(JOB)
        .checkpoints(store)
        .config(PipelineConfig {
            partition_by_key: true,
            sink_concurrency: 3,
            batch_size: 50,
            linger: Duration::from_millis(20),
            checkpoint_interval: Duration::from_millis(20),
            ..Default::default()
        })
        .run()
        .await
        .expect("stream");
    });
}

fn spawn_child(dir: &str, src: &str, target: (&str, &str), server_id: u32) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_pipeline",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CDC_CHILD", dir)
        .env("CDC_SRC", src)
        .env("CDC_URL", db().url())
        .env("CDC_ES_URL", datatrace_testkit::engine().url())
        .env("CDC_SERVER_ID", server_id.to_string())
        .env(target.0, target.1)
        .spawn()
        .expect("spawn the child pipeline")
}

/// Writer running; child started, killed with SIGKILL at `kills` moments, restarted; then
/// the writer stops and the last child catches up.
async fn crash_and_resume(src: &str, target: (&str, &str), server_id: u32) {
    seed(src, 300);
    let dir = std::env::temp_dir().join(datatrace_testkit::unique_name("cdc_crash"));
    let dir_s = dir.display().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(writer(src.to_string(), stop.clone()));
    for pause in [300u64, 1500, 1200] {
        let mut child = spawn_child(&dir_s, src, target, server_id);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let mut child = spawn_child(&dir_s, src, target, server_id);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    w.await.expect("writer");
    let end = now().await;
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&dir));
    wait_for_checkpoint(&store, JOB, "binlog", &end).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_resume_into_mysql() {
    let src = db().create_database("crash_src");
    let dst = db().create_database("crash_dst");
    crash_and_resume(&src, ("CDC_DST", &dst), 8101).await;
    for (t, order) in [("a", "id"), ("b", "k1, k2"), ("c", "id")] {
        let q = |d: &str| exec(&format!("SELECT * FROM `{d}`.`{t}` ORDER BY {order}"));
        let (a, b) = (q(&src), q(&dst));
        assert!(a.lines().count() > 100);
        assert!(
            a == b,
            "{t}: source {} rows, target {} rows",
            a.lines().count(),
            b.lines().count()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_resume_into_elasticsearch() {
    let src = db().create_database("crash_es");
    let prefix = datatrace_testkit::unique_name("crash");
    crash_and_resume(&src, ("CDC_ES", &prefix), 8102).await;
    for (t, key) in [("a", "id"), ("b", "CONCAT(k1, '_', k2)"), ("c", "id")] {
        let rows = exec(&format!("SELECT {key}, v, n FROM `{src}`.`{t}` ORDER BY 1"));
        let want: BTreeMap<String, (String, i64)> = rows
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), (f[1].to_string(), f[2].parse().unwrap()))
            })
            .collect();
        let os = datatrace_testkit::engine();
        let index = format!("{prefix}-{t}");
        os.request("POST", &format!("/{index}/_refresh"), None);
        let r = os.request(
            "POST",
            &format!("/{index}/_search"),
            Some(r#"{"size": 10000, "version": true}"#),
        );
        let v: serde_json::Value = r.json();
        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
        let got: BTreeMap<String, (String, i64)> = hits
            .iter()
            .map(|h| {
                let d = &h["_source"];
                (
                    h["_id"].as_str().unwrap().to_string(),
                    (
                        d["v"].as_str().unwrap_or("?").to_string(),
                        d["n"].as_i64().unwrap_or(i64::MIN),
                    ),
                )
            })
            .collect();
        assert_eq!(want.len(), got.len(), "{t}: document count");
        for (id, w) in &want {
            assert_eq!(got.get(id), Some(w), "{t}: document {id}");
        }
        // Versions are binlog ordinals (or the snapshot's P0): never a plain counter of writes.
        assert!(
            hits.iter()
                .all(|h| h["_version"].as_u64().unwrap_or(0) > 1 << 32),
            "{t}: versions {:?}",
            hits.iter()
                .take(3)
                .map(|h| &h["_version"])
                .collect::<Vec<_>>()
        );
    }
}

//! Kill mid-copy at random points and resume: the target ends up identical, and a resumed
//! run continues from its last acknowledged key rather than from the start.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use datatrace_core::{
    CancellationToken, CheckpointStore, FileCheckpointStore, MemoryCheckpointStore, Pipeline,
    PipelineConfig, Record, RunStatus,
};
use datatrace_mysql::{SinkOptions, SourceOptions};

const ROWS: u64 = 6000;

fn opts() -> SourceOptions {
    SourceOptions {
        chunk_rows: 1000,
        page_rows: 300,
        checkpoint_rows: 100,
        ..Default::default()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        batch_size: 100,
        read_parallelism: 3,
        sink_concurrency: 2,
        checkpoint_interval: Duration::ZERO,
        ..Default::default()
    }
}

fn make_source_table(prefix: &str, key: &str) -> String {
    let src = db().create_database(prefix);
    let ddl = match key {
        "int" => "CREATE TABLE t (id BIGINT PRIMARY KEY, a VARCHAR(30), b DECIMAL(12,3), c DATETIME(6))",
        _ => "CREATE TABLE t (k1 VARCHAR(8), k2 INT, a VARCHAR(30), b DECIMAL(12,3), c DATETIME(6), PRIMARY KEY (k1, k2))",
    };
    let fill = match key {
        "int" => format!(
            "INSERT INTO t SELECT CAST(seq AS SIGNED) * 7 - 20000, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_{ROWS}"
        ),
        _ => format!(
            "INSERT INTO t SELECT ELT(1 + seq % 4, 'a', 'b', 'c', 'd'), seq, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_{ROWS}"
        ),
    };
    exec(&format!("USE `{src}`; {ddl}; {fill}"));
    src
}

/// Runs the copy, cancelling after `stop_after` records went through the transform.
async fn run_until(
    src: &str,
    dst: &str,
    store: Arc<dyn CheckpointStore>,
    stop_after: Option<u64>,
) -> datatrace_core::RunReport {
    let s = source(src, "t", opts()).await;
    let k = sink(dst, SinkOptions::default()).await;
    let token = CancellationToken::new();
    let seen = Arc::new(AtomicU64::new(0));
    let (t2, s2) = (token.clone(), seen.clone());
    let killer = move |r: Record| {
        let n = s2.fetch_add(1, Ordering::Relaxed) + 1;
        if stop_after.is_some_and(|at| n >= at) {
            t2.cancel();
        }
        Some(r)
    };
    Pipeline::new(format!("{src}.t"), s, k)
        .transform(killer)
        .config(config())
        .checkpoints(store)
        .cancel_token(token)
        .run()
        .await
        .expect("run")
}

async fn kill_and_resume(key: &str, seed: u64) {
    let src = make_source_table(&format!("res_{key}"), key);
    let dst = db().create_database(&format!("res_{key}_dst"));
    clone_table(&src, &dst, "t");
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut total_read = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        let stop = (runs < 5).then(|| rng.u64(1..ROWS / 3));
        let report = run_until(&src, &dst, store.clone(), stop).await;
        total_read += report.read;
        if runs > 1 {
            assert!(report.resumed, "run {runs} did not resume");
        }
        if report.status == RunStatus::Completed {
            break;
        }
        assert_eq!(report.status, RunStatus::Stopped);
        assert!(runs < 10, "never finished");
    }
    assert!(runs > 1, "the copy was never interrupted");
    // Resumed runs continue from their checkpoints: far less than a full read per run.
    assert!(
        total_read < ROWS + (runs as u64) * 1500,
        "read {total_read} rows in {runs} runs for {ROWS} rows"
    );
    assert_same(&src, &dst, "t", if key == "int" { "id" } else { "k1, k2" });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_and_resume_integer_key() {
    for seed in [1, 2, 3] {
        kill_and_resume("int", seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_and_resume_composite_key() {
    for seed in [4, 5] {
        kill_and_resume("comp", seed).await;
    }
}

/// Cancelling at random moments (time-based, so mid-page and mid-batch), with checkpoints
/// in files as the CLI keeps them: each run resumes and the result is exact.
///
/// (Dropping the `run()` future is not used: the runner's spawned tasks outlive it and keep
/// writing checkpoints next to the following run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_at_random_times_and_resume_from_files() {
    let src = make_source_table("res_time", "int");
    let dst = db().create_database("res_time_dst");
    clone_table(&src, &dst, "t");
    let dir = std::env::temp_dir().join(datatrace_testkit::unique_name("dt_mysql_cp"));
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&dir));
    let mut rng = fastrand::Rng::with_seed(42);
    let mut finished = false;
    for attempt in 0..20 {
        let s = source(&src, "t", opts()).await;
        let k = sink(&dst, SinkOptions::default()).await;
        let token = CancellationToken::new();
        if attempt < 4 {
            let (t, ms) = (token.clone(), rng.u64(5..80));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                t.cancel();
            });
        }
        let report = Pipeline::new(format!("{src}.t"), s, k)
            .config(config())
            .checkpoints(store.clone())
            .cancel_token(token)
            .run()
            .await
            .expect("run");
        if report.status == RunStatus::Completed {
            finished = true;
            break;
        }
    }
    assert!(finished);
    assert_same(&src, &dst, "t", "id");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reader whose connection is killed mid-stream reconnects and continues after the last
/// row it read: nothing lost, nothing twice (the target uses plain INSERTs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_reader_connection_continues_after_the_last_row() {
    use async_trait::async_trait;
    use datatrace_core::{Batch, Outcome, PrepareContext, Sink, SinkError};

    struct Slow(Arc<datatrace_mysql::MySqlSink>);
    #[async_trait]
    impl Sink for Slow {
        async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
            self.0.prepare(ctx).await
        }
        async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
            tokio::time::sleep(Duration::from_millis(3)).await;
            self.0.write(batch).await
        }
    }

    let src = db().create_database("res_kill");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, pad TEXT);
         INSERT INTO t SELECT seq, REPEAT(MD5(seq), 40) FROM seq_1_to_20000;"
    ));
    let dst = db().create_database("res_kill_dst");
    clone_table(&src, &dst, "t");
    let s = source(
        &src,
        "t",
        SourceOptions {
            page_rows: 100_000,
            chunk_rows: 100_000,
            ..Default::default()
        },
    )
    .await;
    let k = sink(
        &dst,
        SinkOptions {
            mode: datatrace_mysql::WriteMode::Insert,
            ..Default::default()
        },
    )
    .await;
    let killer = {
        let src = src.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..500 {
                let id = exec(&format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%FROM `{src}`.`t`%' AND ID <> CONNECTION_ID() LIMIT 1"
                ));
                if let Ok(id) = id.trim().parse::<u64>() {
                    std::thread::sleep(Duration::from_millis(100));
                    // A short planning query on the same table may have matched and its
                    // connection closed meanwhile: keep looking for the long read.
                    let db = datatrace_testkit::mariadb();
                    match db.exec_at(db.addr(), &format!("KILL CONNECTION {id}")) {
                        Ok(_) => return true,
                        Err(e) if e.contains("Unknown thread id") => continue,
                        Err(e) => panic!("KILL CONNECTION {id}: {e}"),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let report = Pipeline::new("kill", s, Arc::new(Slow(k)))
        .config(PipelineConfig {
            batch_size: 100,
            channel_capacity: 1,
            ..Default::default()
        })
        .run()
        .await
        .expect("the read survives a killed connection");
    assert!(killer.await.unwrap(), "the reader's query was never seen");
    assert_eq!(report.written, 20_000);
    assert_same(&src, &dst, "t", "id");
}

/// A damaged resume position (or a part spec from another kind of source) is refused with an
/// error naming the table and the part, never read again from the chunk's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_is_refused() {
    use datatrace_core::{
        Error, Part, PartState, Position, Source, Timestamp, UnitCheckpoint, UnitState,
    };
    let src = make_source_table("damaged_cp", "int");
    let dst = db().create_database("damaged_cp_dst");
    let cases = [
        (
            None,
            serde_json::json!({"lsat": [1]}),
            "the resume position of part chunk-0000",
        ),
        (
            None,
            serde_json::json!({"slice": 0, "after": [5]}),
            "is not a MySQL chunk position",
        ),
        (
            Some(serde_json::json!({"slice": 0, "max": 1})),
            serde_json::Value::Null,
            "the spec of part chunk-0000",
        ),
    ];
    for (spec, state, expected) in cases {
        let source = source(&src, "t", opts()).await;
        let mut parts = source.split(4).await.unwrap();
        if let Some(spec) = spec {
            parts[0] = Part {
                id: parts[0].id.clone(),
                spec,
            };
        }
        let store = Arc::new(MemoryCheckpointStore::new());
        let cp = UnitCheckpoint {
            state: UnitState::Running,
            parts: parts
                .into_iter()
                .enumerate()
                .map(|(i, part)| PartState {
                    part,
                    position: (i == 0 && !state.is_null()).then(|| Position::new(state.clone())),
                    done: i > 0,
                })
                .collect(),
            error: None,
            written: 0,
            updated_at: Timestamp::now(),
        };
        store.save("default", "t", &cp).await.unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let w = written.clone();
        let e = Pipeline::new("t", source, sink(&dst, SinkOptions::default()).await)
            .checkpoints(store)
            .transform(move |r: Record| {
                w.fetch_add(1, Ordering::SeqCst);
                Some(r)
            })
            .run()
            .await
            .expect_err("a damaged checkpoint must not be read from the chunk's start");
        assert!(matches!(e, Error::DamagedCheckpoint { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(expected) && msg.contains(&format!("{src}.t")),
            "{msg}"
        );
        assert_eq!(written.load(Ordering::SeqCst), 0, "rows were read: {msg}");
    }
}

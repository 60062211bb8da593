//! Snapshot reads survive lost connections (`cargo test reconnect`): reader sessions killed
//! on the server again and again (far more often than the five reconnects a read used to
//! get in all, never reset), in a keyset read, in a consistent snapshot and in a table
//! without a key; and checkpoints by time: a copy to a slow target killed every second and a
//! half keeps what each run wrote (with checkpoints only every 10,000 rows it never got
//! anywhere).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use datatrace_core::{
    CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, RateLimit, RunStatus,
};
use datatrace_mysql::{SinkOptions, SourceOptions};

/// Kills every session of database `db_name` every `every`, `kills` times (or until `stop`);
/// returns the kills done.
fn killer(
    db_name: String,
    kills: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    use mysql_async::prelude::Queryable;
    tokio::spawn(async move {
        let mut admin = mysql_async::Conn::from_url(db().url_for("mysql"))
            .await
            .expect("admin session");
        let mut done = 0;
        while done < kills && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(every).await;
            // Every session of the source database: the reader streaming a page, idle
            // pooled ones, the sessions of a consistent snapshot.
            let ids: Vec<u64> = admin
                .query(format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{db_name}' AND ID <> CONNECTION_ID()"
                ))
                .await
                .expect("processlist");
            let mut killed = false;
            for id in ids {
                // The session may end meanwhile: a failed KILL is fine.
                if admin
                    .query_drop(format!("KILL CONNECTION {id}"))
                    .await
                    .is_ok()
                {
                    killed = true;
                }
            }
            if killed {
                done += 1;
            }
        }
        done
    })
}

/// Copies `src`.t to `dst`.t at `rate` rows/s while a killer kills the reading sessions
/// `kills` times; returns the report and the kills done.
async fn copy_under_kills(
    src: &str,
    dst: &str,
    opts: SourceOptions,
    kills: usize,
) -> (datatrace_core::RunReport, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let k = killer(
        src.to_string(),
        kills,
        Duration::from_millis(350),
        stop.clone(),
    );
    let report = copy(
        src,
        "t",
        dst,
        opts,
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
        PipelineConfig {
            batch_size: 200,
            rate_limit: RateLimit {
                records_per_sec: Some(4000.0),
                bytes_per_sec: None,
            },
            ..Default::default()
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let killed = k.await.unwrap();
    (report.expect("the copy survives the kills"), killed)
}

fn seed(src: &str, key: &str) {
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT NOT NULL, v VARCHAR(700) NOT NULL{key});
         INSERT INTO t SELECT seq, CONCAT('v', seq, REPEAT('x', 600 + seq % 17)) FROM seq_1_to_24000;"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_keyset_read_survives_many_kills() {
    let src = db().create_database("rc_src");
    let dst = db().create_database("rc_dst");
    seed(&src, ", PRIMARY KEY (id)");
    // Pages of 1,000 rows: a page fits in the socket buffers, so the server's session is
    // there to be killed almost all the time (a kill lands when the next page is asked).
    let opts = SourceOptions {
        page_rows: 1000,
        ..Default::default()
    };
    let (report, killed) = copy_under_kills(&src, &dst, opts, 9).await;
    assert_eq!(report.status, RunStatus::Completed);
    assert!(
        killed >= 6,
        "only {killed} kills landed in {:?}: the test proves nothing",
        report.duration
    );
    assert_same(&src, &dst, "t", "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_consistent_snapshot_survives_many_kills() {
    let src = db().create_database("rc_cs_src");
    let dst = db().create_database("rc_cs_dst");
    seed(&src, ", PRIMARY KEY (id)");
    let opts = SourceOptions {
        consistent_snapshot: true,
        page_rows: 1000,
        ..Default::default()
    };
    let (report, killed) = copy_under_kills(&src, &dst, opts, 9).await;
    assert_eq!(report.status, RunStatus::Completed);
    assert!(
        killed >= 6,
        "only {killed} kills landed in {:?}: the test proves nothing",
        report.duration
    );
    assert_same(&src, &dst, "t", "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_keyless_scan_survives_many_kills() {
    let src = db().create_database("rc_nk_src");
    let dst = db().create_database("rc_nk_dst");
    seed(&src, "");
    // One query for the whole table: a kill lands once the client has read what the
    // socket buffers held (megabytes), so fewer land than in keyset reads; before, the
    // first one failed the table.
    let (report, killed) = copy_under_kills(&src, &dst, SourceOptions::default(), 8).await;
    assert_eq!(report.status, RunStatus::Completed);
    assert!(
        killed >= 2,
        "only {killed} kills landed in {:?}: the test proves nothing",
        report.duration
    );
    // No key on either side: duplicates or gaps would show in the count and the rows.
    assert_eq!(report.written, 24000);
    assert_same(&src, &dst, "t", "id, v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_budget_is_spent_by_failures_in_a_row() {
    // A server that refuses every read (the table is gone after planning) fails fast and
    // names the cause, instead of retrying forever: a missing table is not transient.
    let src = db().create_database("rc_gone");
    let dst = db().create_database("rc_gone_dst");
    seed(&src, ", PRIMARY KEY (id)");
    let s = source(&src, "t", SourceOptions::default()).await;
    exec(&format!("DROP TABLE `{src}`.t"));
    let k = sink(&dst, SinkOptions::default()).await;
    let e = Pipeline::new("gone", s, k)
        .run()
        .await
        .expect_err("a dropped table fails the read");
    assert!(e.to_string().contains("doesn't exist"), "{e}");
}

/// Crash loop: a copy to a slow target (3,000 rows/s) whose checkpoints come by time only
/// (every 500 ms; by rows only after the whole table) is killed (its task aborted, no
/// graceful stop) at least 1.5 s after each start, once it has saved something, and started
/// again from its checkpoints. A run that saves nothing within a minute fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_checkpoints_by_time_make_a_crash_loop_progress() {
    let src = db().create_database("cl_src");
    let dst = db().create_database("cl_dst");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_30000;"
    ));
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let unit = format!("{src}.t");
    let config = PipelineConfig {
        batch_size: 250,
        checkpoint_interval: Duration::from_millis(200),
        rate_limit: RateLimit {
            records_per_sec: Some(3000.0),
            bytes_per_sec: None,
        },
        ..Default::default()
    };
    let saved = |store: Arc<dyn CheckpointStore>, unit: String| async move {
        let cp = store.load("default", &unit).await.unwrap();
        cp.and_then(|c| c.parts.first().and_then(|p| p.position.clone()))
            .and_then(|p| {
                // {"last": [{"type": "int", "value": 123}]}
                p.state.pointer("/last/0/value").and_then(|v| v.as_i64())
            })
            .unwrap_or(0)
    };
    let mut previous = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        // Every run moves the checkpoint (asserted below), so this only stops a runaway.
        assert!(runs <= 200, "no end after 200 runs: at id {previous}");
        let s = source(
            &src,
            "t",
            SourceOptions {
                checkpoint_interval_ms: 500,
                checkpoint_rows: 1_000_000,
                ..Default::default()
            },
        )
        .await;
        let k = sink(
            &dst,
            SinkOptions {
                create_table: true,
                ..Default::default()
            },
        )
        .await;
        let pipeline = Pipeline::new(unit.clone(), s, k)
            .config(config.clone())
            .checkpoints(store.clone());
        let task = tokio::spawn(pipeline.run());
        // The kill comes 1.5 s after the start at the earliest, and only once the run has
        // saved progress: a loaded machine makes runs slower, never the test wrong.
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        while !task.is_finished() && saved(store.clone(), unit.clone()).await <= previous {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "run {runs} saved nothing in a minute: the checkpoint stayed at id {previous}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if task.is_finished() {
            let report = task.await.unwrap().expect("the last run completes");
            assert_eq!(report.status, RunStatus::Completed);
            break;
        }
        task.abort();
        let _ = task.await;
        let now = saved(store.clone(), unit.clone()).await;
        assert!(
            now > previous,
            "run {runs}: the checkpoint went back to {now}"
        );
        previous = now;
    }
    // 3,000 rows/s and one second's burst per run: at most about 7,500 rows a run.
    assert!(runs >= 3, "the copy was too fast to crash ({runs} runs)");
    assert_same(&src, &dst, "t", "id");
}

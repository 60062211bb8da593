//! Unique keys deferred until the copy ends (`defer_indexes`, the default): a table the sink
//! creates gets its primary key only, and one `ALTER TABLE` adds the unique keys when the
//! unit ends; a kill during the load, a build interrupted, or a crash after the build and
//! before the unit was recorded as done all end, when the job runs again, with every key
//! exactly once. Against the testkit's MariaDB.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use datatrace_core::{
    Batch, CheckpointStore, MemoryCheckpointStore, Outcome, Pipeline, PipelineConfig,
    PrepareContext, RunStatus, Sink, SinkError, UnitCheckpoint, UnitState,
};
use datatrace_mysql::ddl::DEFERRED_KEYS_COMMENT;
use datatrace_mysql::{MySqlSink, SinkOptions, SourceOptions};
use mysql_async::prelude::Queryable;

const ROWS: u64 = 4000;

/// A source table with a primary key and two unique keys.
fn source_table() -> String {
    let src = db().create_database("dk_src");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(60) NOT NULL, code INT NOT NULL,
           note TEXT, UNIQUE KEY by_email (email), UNIQUE KEY by_code (code, email)) DEFAULT CHARSET=utf8mb4;
         INSERT INTO t SELECT seq, CONCAT('user', seq, '@example.com'), seq * 7, REPEAT('n', seq % 50)
           FROM seq_1_to_{ROWS}"
    ));
    src
}

/// The unique keys of `db.t` other than the primary key, as their column lists.
fn unique_keys(db: &str) -> Vec<String> {
    let out = exec(&format!(
        "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't' AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' \
         GROUP BY INDEX_NAME ORDER BY 1"
    ));
    out.lines().map(str::to_string).collect()
}

fn comment(db: &str) -> String {
    exec(&format!(
        "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't'"
    ))
    .trim()
    .to_string()
}

fn rows(db: &str) -> u64 {
    exec(&format!("SELECT COUNT(*) FROM `{db}`.t"))
        .trim()
        .parse()
        .unwrap()
}

fn created() -> SinkOptions {
    SinkOptions {
        create_table: true,
        ..Default::default()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        batch_size: 200,
        checkpoint_interval: Duration::from_millis(1),
        ..Default::default()
    }
}

/// Forwards to a MySQL sink; after `after` batches it says so and never returns (the run is
/// then killed in the middle of the load).
struct Hangs {
    inner: Arc<MySqlSink>,
    after: usize,
    written: AtomicUsize,
    reached: tokio::sync::Notify,
}

#[async_trait]
impl Sink for Hangs {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(ctx).await
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        if self.written.fetch_add(1, Ordering::SeqCst) >= self.after {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.write(batch).await
    }
    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.finish_unit(ctx).await
    }
}

async fn run(
    src: &str,
    sink: Arc<dyn Sink>,
    store: Arc<dyn CheckpointStore>,
) -> datatrace_core::Result<datatrace_core::RunReport> {
    Pipeline::new("dk", source(src, "t", SourceOptions::default()).await, sink)
        .config(config())
        .checkpoints(store)
        .run()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_come_after_the_load_even_after_a_kill_mid_load() {
    let src = source_table();
    let dst = db().create_database("dk_kill");
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let hangs = Arc::new(Hangs {
        inner: sink(&dst, created()).await,
        after: 4,
        written: AtomicUsize::new(0),
        reached: tokio::sync::Notify::new(),
    });
    let running = {
        let (src, hangs, store) = (src.clone(), hangs.clone(), store.clone());
        tokio::spawn(async move { run(&src, hangs, store).await })
    };
    tokio::time::timeout(Duration::from_secs(300), hangs.reached.notified())
        .await
        .expect("the load reached its fifth batch");
    // Killed: no graceful stop, no finish.
    running.abort();
    let _ = running.await;
    let loaded = rows(&dst);
    assert!(loaded > 0 && loaded < ROWS, "{loaded} rows after the kill");
    assert_eq!(
        unique_keys(&dst),
        Vec::<String>::new(),
        "keys wait for the end"
    );
    assert_eq!(comment(&dst), DEFERRED_KEYS_COMMENT);

    // The job runs again (a new process: a new sink) and resumes.
    let report = run(&src, sink(&dst, created()).await, store.clone())
        .await
        .expect("resumed copy");
    assert_eq!(report.status, RunStatus::Completed);
    assert!(report.resumed);
    assert_eq!(unique_keys(&dst), vec!["code,email", "email"]);
    assert_eq!(comment(&dst), "");
    assert_same(&src, &dst, "t", "id");
}

/// A checkpoint store that fails to record a unit as done while `fail` is set: a crash after
/// the keys were built and before the unit was recorded as done.
struct FailsDone {
    inner: MemoryCheckpointStore,
    fail: AtomicBool,
}

#[async_trait]
impl CheckpointStore for FailsDone {
    async fn load(&self, job: &str, unit: &str) -> datatrace_core::Result<Option<UnitCheckpoint>> {
        self.inner.load(job, unit).await
    }
    async fn save(&self, job: &str, unit: &str, cp: &UnitCheckpoint) -> datatrace_core::Result<()> {
        if cp.state == UnitState::Done && self.fail.load(Ordering::SeqCst) {
            return Err(datatrace_core::Error::Config("the disk is full".into()));
        }
        self.inner.save(job, unit, cp).await
    }
    async fn clear(&self, job: &str, unit: &str) -> datatrace_core::Result<()> {
        self.inner.clear(job, unit).await
    }
    async fn list(&self, job: &str) -> datatrace_core::Result<Vec<(String, UnitCheckpoint)>> {
        self.inner.list(job).await
    }
}

/// Forwards to a MySQL sink; at the unit's end it locks the table from another session, lets
/// the sink's `ALTER TABLE` wait for the lock, and kills the session running it.
struct KilledAtEnd {
    inner: Arc<MySqlSink>,
    db: String,
}

#[async_trait]
impl Sink for KilledAtEnd {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(ctx).await
    }
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        self.inner.write(batch).await
    }
    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        let conn = connect(&self.db).await;
        let mut locker = conn.dedicated().await.unwrap();
        locker.query_drop("LOCK TABLES t READ").await.unwrap();
        let inner = self.inner.clone();
        let ctx = ctx.clone();
        let build = tokio::spawn(async move { inner.finish_unit(&ctx).await });
        let mut watcher = conn.dedicated().await.unwrap();
        let like = format!("ALTER TABLE `{}`.`t`%", self.db);
        let id = loop {
            let id: Option<u64> = watcher
                .exec_first(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ?",
                    (&like,),
                )
                .await
                .unwrap();
            if let Some(id) = id {
                break id;
            }
            assert!(!build.is_finished(), "the build did not wait for the lock");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        watcher
            .query_drop(format!("KILL CONNECTION {id}"))
            .await
            .unwrap();
        let result = build.await.unwrap();
        locker.query_drop("UNLOCK TABLES").await.unwrap();
        assert!(result.is_err(), "the killed build must fail the unit");
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_build_and_a_build_run_twice_leave_every_key_once() {
    let src = source_table();
    let dst = db().create_database("dk_twice");
    let store = Arc::new(FailsDone {
        inner: MemoryCheckpointStore::new(),
        fail: AtomicBool::new(false),
    });

    // 1. The build is killed: the unit fails with the keys missing and the comment kept.
    let killed = Arc::new(KilledAtEnd {
        inner: sink(&dst, created()).await,
        db: dst.clone(),
    });
    let e = run(&src, killed, store.clone()).await.unwrap_err();
    assert_eq!(rows(&dst), ROWS, "{e}");
    assert_eq!(unique_keys(&dst), Vec::<String>::new());
    assert_eq!(comment(&dst), DEFERRED_KEYS_COMMENT);

    // 2. Run again: the keys are built, then the unit cannot be recorded as done (a crash
    // between the two).
    store.fail.store(true, Ordering::SeqCst);
    let e = run(&src, sink(&dst, created()).await, store.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("disk is full"), "{e}");
    assert_eq!(unique_keys(&dst), vec!["code,email", "email"]);
    assert_eq!(comment(&dst), "");

    // 3. Run again: the unit's end runs a second time and adds nothing.
    store.fail.store(false, Ordering::SeqCst);
    let report = run(&src, sink(&dst, created()).await, store.clone())
        .await
        .expect("third run");
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(unique_keys(&dst), vec!["code,email", "email"]);
    assert_same(&src, &dst, "t", "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_that_break_a_deferred_key_fail_the_unit_naming_it() {
    use datatrace_core::{Column, DataType, Record, Schema, Value};
    let dst = db().create_database("dk_dup");
    let schema = Arc::new(
        Schema::new(
            "t",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("email", DataType::String).not_null(),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap()
        .with_unique_key(&["email"])
        .unwrap(),
    );
    let k = sink(&dst, created()).await;
    let ctx = PrepareContext {
        unit: "dup".into(),
        schema: Some(schema.clone()),
        resumed: false,
    };
    k.prepare(&ctx).await.unwrap();
    let records = (1..=3)
        .map(|i| {
            Record::read(
                schema.clone(),
                vec![Value::Int(i), Value::from("same@example.com")],
            )
        })
        .collect();
    let out = k.write(&Batch::new(records)).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Written)), "{out:?}");
    let e = k.finish_unit(&ctx).await.unwrap_err().to_string();
    assert!(
        e.contains("same@example.com") && e.contains("defer_indexes = false"),
        "{e}"
    );
    assert_eq!(
        comment(&dst),
        DEFERRED_KEYS_COMMENT,
        "the keys are still to be added"
    );
    // With the keys not deferred, the same rows are refused one by one during the copy.
    let dst2 = db().create_database("dk_dup_now");
    let k = sink(
        &dst2,
        SinkOptions {
            defer_indexes: false,
            ..created()
        },
    )
    .await;
    k.prepare(&ctx).await.unwrap();
    assert!(unique_keys(&dst2) == vec!["email"]);
}

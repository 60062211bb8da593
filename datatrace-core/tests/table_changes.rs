//! Table changes (TRUNCATE, DROP TABLE, RENAME TABLE) of a change stream: a barrier between
//! the records before and after them, applied once, never passed by a checkpoint unapplied.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::testing::CollectingSink;
use datatrace_core::transforms::Route;
use datatrace_core::{
    Batch, CheckpointStore, Column, DataType, Emitter, MemoryCheckpointStore, Op, Outcome, Part,
    Pipeline, PipelineConfig, Position, Record, RetryPolicy, RunStatus, Schema, Sink, SinkError,
    Source, TableChange, TableChangeKind, Value,
};
use serde_json::json;

fn table(name: &str) -> Arc<Schema> {
    Arc::new(
        Schema::new(
            name,
            vec![
                Column::new("id", DataType::Int),
                Column::new("v", DataType::String),
            ],
        )
        .with_namespace("shop")
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

/// What the source emits, in order.
#[derive(Clone)]
enum Step {
    Row(Arc<Schema>, i64),
    Change(TableChange),
    Checkpoint,
}

/// Emits its steps in order, resuming after the checkpoint `{"after": i}` (step index).
struct Script(Vec<Step>);

#[async_trait]
impl Source for Script {
    async fn read(
        &self,
        _: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let start = from
            .and_then(|p| p.state["after"].as_u64())
            .map_or(0, |i| i as usize + 1);
        for (i, step) in self.0.iter().enumerate().skip(start) {
            match step {
                Step::Row(s, id) => {
                    let r = Record::new(Op::Insert, s.clone(), vec![Value::Int(*id), "x".into()]);
                    out.emit(r).await?;
                }
                Step::Change(c) => out.table_change(c.clone()).await?,
                Step::Checkpoint => out.checkpoint(Position::new(json!({ "after": i }))).await?,
            }
        }
        Ok(())
    }
}

/// Logs writes and table changes in the order they happen; writes are slow and of uneven
/// duration, so a runner that did not wait for them would apply a change too early.
#[derive(Default)]
struct LogSink {
    log: Mutex<Vec<String>>,
    change_failures: AtomicU32,
    refuse: bool,
}

#[async_trait]
impl Sink for LogSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let first = batch.records[0].values[0].clone();
        if let Value::Int(i) = first {
            tokio::time::sleep(Duration::from_millis(((i * 7) % 13) as u64)).await;
        }
        let mut log = self.log.lock().unwrap();
        for r in &batch.records {
            log.push(format!("{}:{}", r.target_name(), r.values[0]));
        }
        Ok(vec![Outcome::Written; batch.len()])
    }

    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        if self.refuse {
            return Err(SinkError::Fatal(format!("{change}: refused").into()));
        }
        if self.change_failures.load(Ordering::SeqCst) > 0 {
            self.change_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::Transient("lock wait timeout".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.log.lock().unwrap().push(change.to_string());
        Ok(())
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        batch_size: 3,
        sink_concurrency: 4,
        partition_by_key: true,
        retry: RetryPolicy::new(5, Duration::from_millis(1), Duration::from_millis(5)),
        ..Default::default()
    }
}

fn script(a: &Arc<Schema>, b: &Arc<Schema>) -> Vec<Step> {
    let mut steps: Vec<Step> = (0..40).map(|i| Step::Row(a.clone(), i)).collect();
    steps.push(Step::Checkpoint);
    steps.push(Step::Change(TableChange::new(
        TableChangeKind::Truncate,
        a.clone(),
    )));
    steps.push(Step::Checkpoint);
    steps.extend((100..140).map(|i| Step::Row(a.clone(), i)));
    steps.push(Step::Change(TableChange::new(
        TableChangeKind::Rename {
            to: b.clone(),
            to_target: None,
        },
        a.clone(),
    )));
    steps.extend((200..240).map(|i| Step::Row(b.clone(), i)));
    steps.push(Step::Checkpoint);
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_change_waits_for_the_records_before_it_and_holds_back_the_ones_after() {
    let (a, b) = (table("a"), table("b"));
    let sink = Arc::new(LogSink::default());
    sink.change_failures.store(2, Ordering::SeqCst);
    let report = Pipeline::new("stream", Arc::new(Script(script(&a, &b))), sink.clone())
        .config(config())
        .run()
        .await
        .expect("run");
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written, 120);
    let log = sink.log.lock().unwrap().clone();
    let at = |what: &str| log.iter().position(|l| l == what).expect(what);
    let truncate = at("TRUNCATE shop.a");
    let rename = at("RENAME TABLE shop.a TO shop.b");
    for (i, line) in log.iter().enumerate() {
        let Some((t, id)) = line.split_once(':') else {
            continue;
        };
        let id: i64 = id.parse().unwrap();
        match id {
            0..=39 => assert!(i < truncate, "{line} written after the truncate: {log:?}"),
            100..=139 => assert!(
                truncate < i && i < rename,
                "{line} not between truncate and rename: {log:?}"
            ),
            _ => assert!(rename < i && t == "b", "{line} before the rename: {log:?}"),
        }
    }
    // Two transient failures were retried; the change was applied once.
    assert_eq!(log.iter().filter(|l| l.starts_with("TRUNCATE")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_fails_the_unit_and_its_position_is_not_committed() {
    let (a, b) = (table("a"), table("b"));
    let store = Arc::new(MemoryCheckpointStore::new());
    let sink = Arc::new(LogSink {
        refuse: true,
        ..Default::default()
    });
    let err = Pipeline::new("stream", Arc::new(Script(script(&a, &b))), sink.clone())
        .config(config())
        .checkpoints(store.clone())
        .run()
        .await
        .expect_err("the sink refuses the truncate");
    assert!(
        err.to_string().contains("TRUNCATE shop.a: refused"),
        "{err}"
    );
    let log = sink.log.lock().unwrap().clone();
    assert_eq!(log.len(), 40, "rows after the change were written: {log:?}");
    let cp = store.load("default", "stream").await.unwrap().unwrap();
    let pos = cp.parts[0]
        .position
        .clone()
        .expect("a checkpoint before the change");
    assert_eq!(
        pos.state,
        json!({"after": 40}),
        "the checkpoint passed the change"
    );

    // Resumed with a sink that applies it: the change and everything after it arrive.
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new("stream", Arc::new(Script(script(&a, &b))), sink.clone())
        .config(config())
        .checkpoints(store)
        .run()
        .await
        .expect("resume");
    assert_eq!(report.status, RunStatus::Completed);
    let changes: Vec<String> = sink.table_changes().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        changes,
        vec!["TRUNCATE shop.a", "RENAME TABLE shop.a TO shop.b"]
    );
    // The truncate emptied what was collected for a: only rows written after it remain.
    let mut ids: Vec<i64> = sink
        .records()
        .iter()
        .map(|r| match r.values[0] {
            Value::Int(i) => i,
            _ => unreachable!(),
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (100..140).chain(200..240).collect::<Vec<_>>());
}

/// A sink that never implemented table changes.
struct PlainSink;

#[async_trait]
impl Sink for PlainSink {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        Ok(vec![Outcome::Written; batch.len()])
    }
}

#[tokio::test]
async fn sinks_without_table_change_support_refuse_naming_the_change() {
    let (a, b) = (table("a"), table("b"));
    let err = Pipeline::new(
        "stream",
        Arc::new(Script(script(&a, &b))),
        Arc::new(PlainSink),
    )
    .run()
    .await
    .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("TRUNCATE shop.a: this sink does not apply table changes"),
        "{msg}"
    );
}

#[tokio::test]
async fn routing_maps_table_changes_to_targets() {
    let (a, b) = (table("a"), table("b"));
    let sink = Arc::new(CollectingSink::new());
    let route = Route::new("{db}_{table}").unwrap();
    Pipeline::new("stream", Arc::new(Script(script(&a, &b))), sink.clone())
        .transform(route)
        .run()
        .await
        .expect("run");
    let changes = sink.table_changes();
    assert_eq!(changes[0].target.as_deref(), Some("shop_a"));
    match &changes[1].kind {
        TableChangeKind::Rename { to_target, .. } => {
            assert_eq!(to_target.as_deref(), Some("shop_b"))
        }
        other => panic!("{other:?}"),
    }
    assert!(sink
        .records()
        .iter()
        .all(|r| r.target_name().starts_with("shop_")));

    // A pattern that depends on field values cannot place a whole-table change.
    let err = Pipeline::new(
        "stream2",
        Arc::new(Script(script(&a, &b))),
        Arc::new(CollectingSink::new()),
    )
    .transform(Route::new("{table}-{v}").unwrap())
    .run()
    .await
    .expect_err("unroutable");
    assert!(
        err.to_string()
            .contains("TRUNCATE shop.a: route pattern \"{table}-{v}\" depends on field values"),
        "{err}"
    );
}

#[tokio::test]
async fn a_transform_may_drop_table_changes() {
    struct NoChanges;
    impl datatrace_core::Transform for NoChanges {
        fn apply(&self, r: Record) -> Result<Option<Record>, datatrace_core::TransformError> {
            Ok(Some(r))
        }
        fn table_change(&self, _: TableChange) -> Result<Option<TableChange>, String> {
            Ok(None)
        }
    }
    let (a, b) = (table("a"), table("b"));
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new("stream", Arc::new(Script(script(&a, &b))), sink.clone())
        .transform(NoChanges)
        .run()
        .await
        .expect("run");
    assert_eq!(report.status, RunStatus::Completed);
    assert!(sink.table_changes().is_empty());
    assert_eq!(sink.len(), 120);
}

//! A panicking custom source, sink or transform fails its run (and its unit in a job) with an
//! error naming the unit and what panicked; it never ends as a clean stop.

use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::testing::{CollectingSink, GeneratorSource};
use datatrace_core::{
    Batch, CheckpointStore, Emitter, Job, MemoryCheckpointStore, Outcome, Part, Pipeline, Position,
    Sink, SinkError, Source, UnitSpec, UnitState,
};

/// Emits a few rows of part 0, then panics.
struct PanickingSource(GeneratorSource);

#[async_trait]
impl Source for PanickingSource {
    async fn read(
        &self,
        _: &Part,
        _: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for i in 0..10 {
            out.emit(self.0.row(i)).await?;
        }
        panic!("custom source bug");
    }
}

/// Panics on the first write.
struct PanickingSink;

#[async_trait]
impl Sink for PanickingSink {
    async fn write(&self, _: &Batch) -> Result<Vec<Outcome>, SinkError> {
        panic!("custom sink bug");
    }
}

#[tokio::test]
async fn a_panicking_source_fails_the_run() {
    let store = Arc::new(MemoryCheckpointStore::new());
    let r = Pipeline::new(
        "panicky",
        Arc::new(PanickingSource(GeneratorSource::new(10, 2, 4))),
        Arc::new(CollectingSink::new()),
    )
    .checkpoints(store.clone())
    .run()
    .await;
    let e = r.expect_err("a panicking source must fail the run, not stop it");
    let msg = e.to_string();
    assert!(msg.contains("panicky"), "{msg}");
    assert!(
        msg.contains("panicked") && msg.contains("custom source bug"),
        "{msg}"
    );
    let cp = store.load("default", "panicky").await.unwrap().unwrap();
    assert_eq!(cp.state, UnitState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_sink_fails_the_run() {
    let r = Pipeline::new(
        "sinkbug",
        Arc::new(GeneratorSource::new(100, 2, 4)),
        Arc::new(PanickingSink),
    )
    .run()
    .await;
    let e = r.expect_err("a panicking sink must fail the run");
    let msg = e.to_string();
    assert!(
        msg.contains("sinkbug") && msg.contains("custom sink bug"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_panicking_source_fails_its_unit_in_a_job() {
    let report = Job::new("j")
        .unit(UnitSpec::new(
            "bad",
            Arc::new(PanickingSource(GeneratorSource::new(10, 2, 4))),
            Arc::new(CollectingSink::new()),
        ))
        .unit(UnitSpec::new(
            "good",
            Arc::new(GeneratorSource::new(10, 2, 4)),
            Arc::new(CollectingSink::new()),
        ))
        .run()
        .await
        .unwrap();
    assert_eq!(report.units[0].state, UnitState::Failed);
    assert!(report.units[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("custom source bug")));
    assert_eq!(report.units[1].state, UnitState::Done);
}

#[tokio::test]
async fn a_panicking_transform_fails_the_run() {
    let r = Pipeline::new(
        "transformbug",
        Arc::new(GeneratorSource::new(100, 2, 4)),
        Arc::new(CollectingSink::new()),
    )
    .transform(
        |r: datatrace_core::Record| -> Option<datatrace_core::Record> {
            if r.values[0] == datatrace_core::Value::Int(50) {
                panic!("custom transform bug");
            }
            Some(r)
        },
    )
    .run()
    .await;
    let e = r.expect_err("a panicking transform must fail the run");
    let msg = e.to_string();
    assert!(
        msg.contains("transformbug") && msg.contains("custom transform bug"),
        "{msg}"
    );
}

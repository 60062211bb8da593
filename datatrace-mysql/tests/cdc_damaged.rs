//! A change stream resumed from a damaged checkpoint is refused with the typed
//! damaged-checkpoint error naming the unit and the key, never read as if the value were
//! absent: a damaged `floors` map would replay a keyless table's changes over its snapshot
//! (duplicate rows), a damaged position would start the stream elsewhere, and a damaged
//! snapshot position of a keyless table would leave the stream not knowing what to skip.

mod cdc;

use std::sync::Arc;
use std::time::Duration;

use cdc::*;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    CheckpointStore, Error, MemoryCheckpointStore, Part, PartState, Pipeline, Position, Timestamp,
    UnitCheckpoint, UnitState,
};
use datatrace_mysql::binlog::{BinlogSource, SnapshotCdc};
use datatrace_mysql::{SourceOptions, TableSelector};
use serde_json::json;

/// Failure guard only: a stream that reads on instead of refusing never ends by itself.
const GUARD: Duration = Duration::from_secs(60);

/// A checkpoint of one part at `state`.
fn checkpoint(unit_state: UnitState, part: &str, state: serde_json::Value) -> UnitCheckpoint {
    UnitCheckpoint {
        state: unit_state,
        parts: vec![PartState {
            part: Part {
                id: part.into(),
                spec: serde_json::Value::Null,
            },
            position: Some(Position::new(state)),
            done: unit_state == UnitState::Done,
        }],
        error: None,
        written: 0,
        updated_at: Timestamp::now(),
    }
}

/// Asserts `e` is the damaged-checkpoint error of `unit` naming `key` and the fix.
fn assert_damaged(e: &Error, unit: &str, key: &str) {
    assert!(matches!(e, Error::DamagedCheckpoint { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("unit {unit}"))
            && msg.contains(key)
            && msg.contains("clear the unit's checkpoint"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_a_damaged_checkpoint() {
    let database = db().create_database("cdc_damaged_stream");
    exec(&format!(
        "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY, v INT)"
    ));
    let start = now().await;
    exec(&format!(
        "USE `{database}`; INSERT INTO t VALUES (1, 1), (2, 2)"
    ));
    let at = |extra: serde_json::Value| {
        let mut s = json!({"file": start.file, "pos": start.pos});
        if let (Some(m), serde_json::Value::Object(x)) = (s.as_object_mut(), extra) {
            m.extend(x);
        }
        s
    };
    let cases = [
        (at(json!({"floors": "damaged"})), "key `floors`"),
        (at(json!({"floors": {"a.t": "12"}})), "key `floors`"),
        (at(json!({"pos": "four"})), "key `pos`"),
        (at(json!({"file": 7})), "key `file`"),
        (at(json!({"event": true})), "key `event`"),
        (json!({"slice": 0, "after": [5]}), "key `file` is missing"),
    ];
    for (i, (state, key)) in cases.into_iter().enumerate() {
        // A stream running as another unit (the documents stream) names that unit.
        let unit = if i % 2 == 0 { "binlog" } else { "documents" };
        let store = Arc::new(MemoryCheckpointStore::new());
        store
            .save(
                "default",
                unit,
                &checkpoint(UnitState::Running, "whole", state.clone()),
            )
            .await
            .unwrap();
        let sink = Arc::new(CollectingSink::new());
        let source = BinlogSource::new(connect("mysql").await, opts(&database, &start))
            .unwrap()
            .with_unit(unit);
        let run = Pipeline::new(unit, Arc::new(source), sink.clone())
            .checkpoints(store)
            .run();
        let e = tokio::time::timeout(GUARD, run)
            .await
            .unwrap_or_else(|_| panic!("{state}: the stream read on from a damaged checkpoint"))
            .expect_err("a damaged checkpoint must be refused");
        assert_damaged(&e, unit, key);
        assert!(sink.is_empty(), "{state}: rows were streamed");
    }
}

/// `snapshot+cdc` of a keyless table whose snapshot is done: a damaged `snapshot` position
/// in its checkpoint, or a damaged stream checkpoint, fails the stream unit with the error
/// naming the unit and the key (and leaves the stream's checkpoint as it was).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_refuses_damaged_checkpoints() {
    let database = db().create_database("cdc_damaged_handoff");
    exec(&format!(
        "USE `{database}`; CREATE TABLE k (v INT, w VARCHAR(10)); INSERT INTO k VALUES (1, 'a')"
    ));
    let start = now().await;
    let good = json!({"file": start.file, "pos": start.pos});
    let table = format!("{database}.k");
    let cases = [
        (
            json!({"last": null, "snapshot": {"file": start.file, "pos": "x"}}),
            good.clone(),
            table.as_str(),
            "key `snapshot.pos`",
        ),
        (
            json!({"last": null, "snapshot": "damaged"}),
            good.clone(),
            table.as_str(),
            "key `snapshot`",
        ),
        (
            json!({"last": null, "snapshot": {"file": start.file, "pos": start.pos}}),
            json!({"file": start.file, "pos": start.pos, "floors": [1]}),
            "binlog",
            "key `floors`",
        ),
        (
            json!({"last": null, "snapshot": {"file": start.file, "pos": start.pos}}),
            json!({"file": start.file, "pos": -1}),
            "binlog",
            "key `pos`",
        ),
    ];
    for (snapshot, stream, unit, key) in cases {
        let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
        let job = "handoff";
        store
            .save(
                job,
                &table,
                &checkpoint(UnitState::Done, "scan", snapshot.clone()),
            )
            .await
            .unwrap();
        let stream_cp = checkpoint(UnitState::Running, "whole", stream.clone());
        store.save(job, "binlog", &stream_cp).await.unwrap();
        let conn = connect(&database).await;
        let plan = SnapshotCdc::discover(
            &conn,
            &TableSelector::include([format!("{database}.*")]),
            SourceOptions::default(),
            opts(&database, &start),
            store.clone(),
            job,
        )
        .await
        .expect("plan");
        let sink = Arc::new(CollectingSink::new());
        let report = tokio::time::timeout(GUARD, plan.into_job(sink.clone()).run())
            .await
            .unwrap_or_else(|_| panic!("{snapshot} / {stream}: the stream read on"))
            .expect("job");
        let failed = report
            .units
            .iter()
            .find(|u| u.unit == "binlog")
            .expect("stream unit");
        assert_eq!(failed.state, UnitState::Failed, "{snapshot} / {stream}");
        assert_damaged(failed.failure().expect("error"), unit, key);
        assert!(sink.is_empty(), "rows were written");
        let kept = store
            .load(job, "binlog")
            .await
            .unwrap()
            .expect("checkpoint");
        assert_eq!(
            kept.parts[0].position.as_ref().map(|p| &p.state),
            Some(&stream),
            "the stream's checkpoint was replaced"
        );
    }
}

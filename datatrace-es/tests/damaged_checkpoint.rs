//! A checkpoint the source cannot read (damaged, or written by another read method or another
//! source) is refused with an error naming the index, the part and the fix; the index is never
//! silently read again from its start.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::testing::CollectingSink;
use datatrace_core::{
    CheckpointStore, Error, MemoryCheckpointStore, Part, PartState, Pipeline, Position, Source,
    Timestamp, UnitCheckpoint, UnitState,
};
use datatrace_es::{EsSource, ReadMethod, SourceConfig};
use datatrace_testkit::{engine, unique_name};
use serde_json::json;

fn make_index(n: usize) -> String {
    let index = unique_name("damaged");
    let docs: Vec<_> = (0..n)
        .map(|i| (format!("{i:05}"), json!({"i": i})))
        .collect();
    load(&index, &docs);
    index
}

/// Runs `index` from a checkpoint of its parts at `positions` (a part's spec replaced when
/// given); returns the error and what the sink got.
async fn run_from(
    index: &str,
    method: ReadMethod,
    spec: Option<serde_json::Value>,
    position: Option<serde_json::Value>,
) -> (Error, usize) {
    let cfg = SourceConfig {
        slices: 1,
        page_size: 10,
        method,
        ..SourceConfig::new(index)
    };
    let source = Arc::new(
        EsSource::connect(&conn(&engine().url()), cfg)
            .await
            .unwrap(),
    );
    let mut parts = source.split(1).await.unwrap();
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
            .map(|part| PartState {
                part,
                position: position.clone().map(Position::new),
                done: false,
            })
            .collect(),
        error: None,
        written: 0,
        updated_at: Timestamp::now(),
    };
    store.save("default", index, &cp).await.unwrap();
    let sink = Arc::new(CollectingSink::new());
    let e = Pipeline::new(index, source, sink.clone())
        .checkpoints(store.clone())
        .run()
        .await
        .expect_err("a damaged checkpoint must not be read from the start");
    let saved = store.load("default", index).await.unwrap().unwrap();
    assert_eq!(saved.state, UnitState::Failed);
    (e, sink.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_es_checkpoint_is_refused_naming_index_and_part() {
    let index = make_index(50);
    for method in [ReadMethod::Pit, ReadMethod::Scroll] {
        // A position without what the reader resumes from.
        let (e, got) = run_from(&index, method, None, Some(json!({"garbage": 1}))).await;
        assert_eq!(
            got, 0,
            "{method:?}: the index was read again from its start"
        );
        assert!(matches!(e, Error::DamagedCheckpoint { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&index), "{msg}");
        assert!(msg.contains("part slice-0"), "{msg}");
        assert!(msg.contains("clear the unit's checkpoint"), "{msg}");
    }
    // A point-in-time position given to a scroll read, and a scroll one to a point-in-time
    // read: another read method's checkpoint.
    let (e, got) = run_from(
        &index,
        ReadMethod::Scroll,
        None,
        Some(json!({"slice": 0, "after": [5]})),
    )
    .await;
    assert_eq!(got, 0);
    assert!(e.to_string().contains("is not a scroll position"), "{e}");
    let (e, got) = run_from(
        &index,
        ReadMethod::Pit,
        None,
        Some(json!({"slice": 0, "read": 20})),
    )
    .await;
    assert_eq!(got, 0);
    assert!(
        e.to_string().contains("is not a point-in-time position"),
        "{e}"
    );
    // A position of another slice.
    let (e, _) = run_from(
        &index,
        ReadMethod::Scroll,
        None,
        Some(json!({"slice": 3, "read": 20})),
    )
    .await;
    assert!(e.to_string().contains("belongs to slice 3"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_part_spec_is_refused() {
    let index = make_index(20);
    // A MySQL chunk's spec in an Elasticsearch unit.
    let (e, got) = run_from(
        &index,
        ReadMethod::Pit,
        Some(json!({"lo": [1], "hi": [10]})),
        None,
    )
    .await;
    assert_eq!(got, 0);
    let msg = e.to_string();
    assert!(
        msg.contains("the spec of part slice-0") && msg.contains("is not an Elasticsearch slice"),
        "{msg}"
    );
}

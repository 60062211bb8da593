//! The Kafka sink writes Debezium change events that the Kafka source reads back into exactly
//! the records written, against a real broker.

mod common;

use std::collections::BTreeMap;

use common::*;
use datatrace_core::{Op, Value};
use datatrace_kafka::KafkaSinkConfig;
use datatrace_testkit::unique_name;

fn sink_config(prefix: &str) -> KafkaSinkConfig {
    let mut c = KafkaSinkConfig::new(brokers());
    c.topic_prefix = prefix.into();
    c.partitions = 3;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_events_round_trip_every_type_exactly_with_and_without_schemas() {
    for schemas in [true, false] {
        let prefix = unique_name("rt");
        let schema = every_type_schema("shop");
        let mut records = Vec::new();
        let mut ord = 1000u64;
        for i in 0..60 {
            ord += 1;
            records.push(change(&schema, Op::Insert, every_type_row(i), None, ord));
        }
        for i in 0..20 {
            ord += 1;
            let before = every_type_row(i);
            let mut after = every_type_row(i + 1);
            after[0] = Value::Int(i);
            records.push(change(&schema, Op::Update, after, Some(before), ord));
        }
        for i in 40..50 {
            ord += 1;
            records.push(change(&schema, Op::Delete, every_type_row(i), None, ord));
        }
        let mut config = sink_config(&prefix);
        config.schemas = schemas;
        let report = write(config, records.clone()).await;
        assert_eq!(report.written, 90);

        let topic = format!("{prefix}.shop.items");
        let raw = read_all(&topic);
        // 90 events and a tombstone after each of the 10 deletes
        assert_eq!(raw.len(), 100, "schemas={schemas}");
        let tombstones: Vec<_> = raw.iter().filter(|r| r.value.is_none()).collect();
        assert_eq!(tombstones.len(), 10);
        // every message of one key is on one partition
        let mut partition_of: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
        for r in &raw {
            let key = r.key.clone().expect("keyed");
            let p = *partition_of.entry(key.clone()).or_insert(r.partition);
            assert_eq!(p, r.partition, "key {}", String::from_utf8_lossy(&key));
        }
        assert!(
            partition_of
                .values()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
        );
        // Debezium's envelope
        let first: serde_json::Value =
            serde_json::from_slice(raw[0].value.as_ref().unwrap()).unwrap();
        let payload = if schemas {
            assert_eq!(
                first["schema"]["name"],
                format!("{prefix}.shop.items.Envelope")
            );
            &first["payload"]
        } else {
            assert!(first.get("schema").is_none(), "{first}");
            &first
        };
        assert_eq!(payload["source"]["db"], "shop");
        assert_eq!(payload["source"]["table"], "items");
        assert_eq!(payload["source"]["name"], prefix.as_str());
        assert!(
            ["c", "u", "d"].contains(&payload["op"].as_str().unwrap()),
            "{payload}"
        );
        let key: serde_json::Value = serde_json::from_slice(raw[0].key.as_ref().unwrap()).unwrap();
        let key_payload = if schemas { &key["payload"] } else { &key };
        assert!(key_payload["id"].is_i64(), "{key}");

        let group = unique_name("rt-group");
        let (report, got) = read(source_config(&group, &[&topic])).await;
        report.expect("read back");
        let mut got = got.records();
        assert_eq!(got.len(), 90);
        // order per key is kept; compare per key in source order
        got.sort_by_key(|r| (r.key_string("|"), r.position.as_ref().unwrap().ordinal));
        let mut want = records.clone();
        want.sort_by_key(|r| (r.key_string("|"), r.position.as_ref().unwrap().ordinal));
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.op, w.op);
            assert_eq!(
                g.position.as_ref().unwrap().ordinal,
                w.position.as_ref().unwrap().ordinal
            );
            assert_eq!(
                g.position.as_ref().unwrap().ts_ms,
                w.position.as_ref().unwrap().ts_ms
            );
            assert_eq!(g.schema.qualified_name(), "shop.items");
            if schemas {
                assert_eq!(g.values, w.values, "key {}", w.key_string("|"));
                assert_eq!(g.before, w.before);
                assert_eq!(*g.schema, *w.schema);
            } else {
                // without schemas, values come back by their JSON shape
                assert_eq!(g.get("id"), w.get("id"));
                assert_eq!(
                    g.get("name").map(|v| v.as_str()),
                    w.get("name").map(|v| v.as_str())
                );
            }
            assert_eq!(g.schema.primary_key_names(), vec!["id"]);
        }
    }
}

/// Notes records (by id) and table changes in the order the pipeline hands them over.
#[derive(Default)]
struct Log(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl datatrace_core::Sink for Log {
    async fn write(
        &self,
        batch: &datatrace_core::Batch,
    ) -> Result<Vec<datatrace_core::Outcome>, datatrace_core::SinkError> {
        let mut l = self.0.lock().unwrap();
        for r in &batch.records {
            l.push(format!("r{}", r.get("id").unwrap()));
        }
        Ok(vec![datatrace_core::Outcome::Written; batch.len()])
    }
    async fn table_change(
        &self,
        change: &datatrace_core::TableChange,
    ) -> Result<(), datatrace_core::SinkError> {
        self.0.lock().unwrap().push(format!("t {change}"));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_truncate_reaches_every_partition_and_is_applied_once_between_its_rows() {
    use datatrace_core::{Sink, TableChange, TableChangeKind};
    let prefix = unique_name("trunc");
    let schema = every_type_schema("shop");
    let config = sink_config(&prefix); // 3 partitions
    let before: Vec<_> = (0..60)
        .map(|i| change(&schema, Op::Insert, every_type_row(i), None, 100 + i as u64))
        .collect();
    write(config.clone(), before).await;
    let sink = datatrace_kafka::KafkaSink::new(config.clone()).unwrap();
    let mut t = TableChange::new(TableChangeKind::Truncate, schema.clone());
    t.position = Some(datatrace_core::Position {
        state: serde_json::Value::Null,
        ordinal: Some(500),
        ts_ms: Some(1),
    });
    sink.table_change(&t).await.unwrap();
    let after: Vec<_> = (100..160)
        .map(|i| {
            change(
                &schema,
                Op::Insert,
                every_type_row(i),
                None,
                1000 + i as u64,
            )
        })
        .collect();
    write(config, after).await;
    let topic = format!("{prefix}.shop.items");
    let markers = read_all(&topic)
        .into_iter()
        .filter(|r| r.key.is_none())
        .map(|r| r.partition)
        .collect::<Vec<_>>();
    assert_eq!(markers, vec![0, 1, 2], "the truncate is on every partition");

    let log = std::sync::Arc::new(Log::default());
    let source =
        datatrace_kafka::KafkaSource::new(source_config(&unique_name("trunc-g"), &[&topic]))
            .unwrap();
    datatrace_core::Pipeline::new("t", std::sync::Arc::new(source), log.clone())
        .checkpoints(std::sync::Arc::new(
            datatrace_core::MemoryCheckpointStore::new(),
        ))
        .run()
        .await
        .unwrap();
    let log = log.0.lock().unwrap().clone();
    let at: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with('t'))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "applied once: {log:?}");
    assert_eq!(log[at[0]], "t TRUNCATE shop.items");
    let id = |e: &String| e[1..].parse::<i64>().unwrap();
    assert!(log[..at[0]].iter().all(|e| id(e) < 100), "{log:?}");
    assert!(log[at[0] + 1..].iter().all(|e| id(e) >= 100), "{log:?}");
    assert_eq!(log.len(), 121);
}

//! Helpers of the Kafka tests: raw producing and reading against the testkit's broker.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use datatrace_core::testing::{CollectingSink, MemorySource};
use datatrace_core::{
    Column, DataType, Decimal, MemoryCheckpointStore, Op, Pipeline, PipelineConfig, Position,
    Record, RunReport, Schema, Value,
};
use datatrace_kafka::{KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// Logs to stderr when DATATRACE_TEST_LOG is set (debug level).
pub fn init_log() {
    if std::env::var_os("DATATRACE_TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

pub fn brokers() -> String {
    init_log();
    datatrace_testkit::kafka().bootstrap()
}

/// A message as read back: partition, offset, key and value.
#[derive(Debug, Clone)]
pub struct Raw {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// Every message of `topic`, read from the start until it is exhausted.
pub fn read_all(topic: &str) -> Vec<Raw> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", datatrace_testkit::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut eofs = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let partitions = partition_count(topic);
    while eofs.len() < partitions && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                use rdkafka::message::Headers;
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_string(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Raw {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                })
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eofs.insert(p);
            }
            _ => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

pub fn partition_count(topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0].partitions().len()
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer")
}

/// Creates `topic` with `partitions` partitions.
pub async fn create_topic(topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin");
    let r = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    r[0].as_ref().expect("created");
}

pub async fn produce(p: &FutureProducer, topic: &str, key: Option<&str>, value: Option<&str>) {
    let mut r: FutureRecord<'_, str, str> = FutureRecord::to(topic);
    if let Some(k) = key {
        r = r.key(k);
    }
    if let Some(v) = value {
        r = r.payload(v);
    }
    p.send(r, Duration::from_secs(10)).await.expect("delivered");
}

/// A table `db.items` with one column of every type and an `id` key.
pub fn every_type_schema(db: &str) -> Arc<Schema> {
    let dec = |p, s| DataType::Decimal {
        precision: p,
        scale: s,
    };
    Arc::new(
        Schema::new(
            "items",
            vec![
                Column::new("id", DataType::Int)
                    .not_null()
                    .native("bigint(20)"),
                Column::new("flag", DataType::Bool),
                Column::new("big", DataType::UInt).native("bigint(20) unsigned"),
                Column::new("f", DataType::Float),
                Column::new("price", dec(65, 30)),
                Column::new("name", DataType::String).native("varchar(255)"),
                Column::new("blob", DataType::Bytes),
                Column::new("d", DataType::Date),
                Column::new("t", DataType::Time),
                Column::new("dt", DataType::DateTime),
                Column::new("ts", DataType::Timestamp),
                Column::new("doc", DataType::Json),
            ],
        )
        .with_namespace(db)
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

/// Row `i` of [`every_type_schema`], with values at the edges of each type.
pub fn every_type_row(i: i64) -> Vec<Value> {
    let pick = |n: i64| (i.rem_euclid(n)) as usize;
    vec![
        Value::Int(i),
        [Value::Bool(true), Value::Bool(false), Value::Null][pick(3)].clone(),
        [Value::UInt(u64::MAX), Value::UInt(0), Value::UInt(1 << 63)][pick(3)].clone(),
        [
            Value::Float(f64::MAX),
            Value::Float(-0.1),
            Value::Float(5e-324),
        ][pick(3)]
        .clone(),
        Value::Decimal(
            [
                "-99999999999999999999999999999999999.999999999999999999999999999999",
                "0.000000000000000000000000000001",
                "12.500000000000000000000000000000",
            ][pick(3)]
            .parse::<Decimal>()
            .unwrap(),
        ),
        [
            Value::from(format!("row {i} é ✓ \"quoted\" \\ \u{0}")),
            Value::from(""),
            Value::Null,
        ][pick(3)]
        .clone(),
        Value::Bytes(bytes::Bytes::from(vec![0u8, 255, (i & 0xff) as u8])),
        Value::Date(
            ["1000-01-01", "9999-12-31", "1970-01-01"][pick(3)]
                .parse()
                .unwrap(),
        ),
        Value::Time(
            ["-838:59:59", "838:59:59.999999", "00:00:00.000001"][pick(3)]
                .parse()
                .unwrap(),
        ),
        Value::DateTime(
            [
                "1000-01-01T00:00:00",
                "9999-12-31T23:59:59.999999",
                "2024-02-29T12:00:00.5",
            ][pick(3)]
            .parse()
            .unwrap(),
        ),
        Value::Timestamp(
            ["1970-01-01T00:00:01Z", "2038-01-19T03:14:07.999999Z"][pick(2)]
                .parse()
                .unwrap(),
        ),
        Value::Json(serde_json::json!({"i": i, "nested": [1, "two", null, {"u": u64::MAX}]})),
    ]
}

/// A change record with a position of ordinal `ord`.
pub fn change(
    schema: &Arc<Schema>,
    op: Op,
    values: Vec<Value>,
    before: Option<Vec<Value>>,
    ord: u64,
) -> Record {
    let mut r = Record::new(op, schema.clone(), values);
    r.before = before;
    r.position = Some(Position {
        state: serde_json::Value::Null,
        ordinal: Some(ord),
        ts_ms: Some(1_700_000_000_000 + ord as i64),
    });
    r
}

/// Writes `records` through a [`KafkaSink`] in a pipeline.
pub async fn write(config: KafkaSinkConfig, records: Vec<Record>) -> RunReport {
    let sink = Arc::new(KafkaSink::new(config).expect("sink"));
    Pipeline::new("to-kafka", Arc::new(MemorySource::new(records)), sink)
        .config(PipelineConfig {
            batch_size: 100,
            partition_by_key: true,
            sink_concurrency: 2,
            ..Default::default()
        })
        .run()
        .await
        .expect("write to Kafka")
}

/// Reads `topics` with a group until idle, into a collecting sink.
pub async fn read(
    config: KafkaSourceConfig,
) -> (
    Result<RunReport, datatrace_core::Error>,
    Arc<CollectingSink>,
) {
    let sink = Arc::new(CollectingSink::new());
    let source = Arc::new(KafkaSource::new(config).expect("source"));
    let report = Pipeline::new("from-kafka", source, sink.clone())
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .config(PipelineConfig {
            batch_size: 100,
            ..Default::default()
        })
        .run()
        .await;
    (report, sink)
}

pub fn source_config(group: &str, topics: &[&str]) -> KafkaSourceConfig {
    let mut c = KafkaSourceConfig::new(brokers(), group, topics);
    c.stop_when_idle_ms = Some(1500);
    c
}

//! The consumer-group source: offsets committed only behind acknowledged writes, rebalances
//! that neither lose nor repeat, and bad input named by its offset or dead-lettered.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use datatrace_core::{
    Batch, CancellationToken, MemoryCheckpointStore, Op, Outcome, Pipeline, PipelineConfig, Record,
    RetryPolicy, Sink, SinkError,
};
use datatrace_kafka::{BadMessages, KafkaSink, KafkaSinkConfig, KafkaSource};
use datatrace_testkit::unique_name;

/// Writes `n` inserts of ids 0..n to `{prefix}.shop.items` with `partitions` partitions.
async fn fill(prefix: &str, n: i64, partitions: i32) -> String {
    fill_ids(prefix, 0..n, partitions).await
}

/// Writes inserts of the ids `ids` to `{prefix}.shop.items` with `partitions` partitions.
async fn fill_ids(prefix: &str, ids: std::ops::Range<i64>, partitions: i32) -> String {
    let schema = every_type_schema("shop");
    let records = ids
        .map(|i| change(&schema, Op::Insert, every_type_row(i), None, 10 + i as u64))
        .collect();
    let mut c = KafkaSinkConfig::new(brokers());
    c.topic_prefix = prefix.into();
    c.partitions = partitions;
    write(c, records).await;
    format!("{prefix}.shop.items")
}

/// Where a record came from: (partition, offset).
fn origin(r: &Record) -> (i64, i64) {
    let s = &r.position.as_ref().expect("position").state;
    (
        s["partition"].as_i64().unwrap(),
        s["offset"].as_i64().unwrap(),
    )
}

/// Records every record it is given; slow, and optionally refusing one id for good.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Record>>,
    delay: Duration,
    /// Fails for good on this batch (1-based).
    fail_at_batch: Option<usize>,
    batches: AtomicUsize,
}

impl Recorder {
    /// Records written so far.
    fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[async_trait]
impl Sink for Recorder {
    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        tokio::time::sleep(self.delay).await;
        let n = self.batches.fetch_add(1, Ordering::Relaxed) + 1;
        if self.fail_at_batch == Some(n) {
            return Err(SinkError::Fatal(format!("refusing batch {n}").into()));
        }
        self.seen
            .lock()
            .unwrap()
            .extend(batch.records.iter().cloned());
        Ok(vec![Outcome::Written; batch.len()])
    }
}

async fn run_worker(
    group: &str,
    topic: &str,
    sink: Arc<Recorder>,
) -> Result<datatrace_core::RunReport, datatrace_core::Error> {
    let source = Arc::new(KafkaSource::new(source_config(group, &[topic])).unwrap());
    worker(source, sink, CancellationToken::new()).await
}

/// Runs `source` into `sink` until the source is idle (if it stops when idle) or `stop` is
/// cancelled.
async fn worker(
    source: Arc<KafkaSource>,
    sink: Arc<Recorder>,
    stop: CancellationToken,
) -> Result<datatrace_core::RunReport, datatrace_core::Error> {
    Pipeline::new("worker", source, sink)
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .cancel_token(stop)
        .config(PipelineConfig {
            batch_size: 50,
            linger: Duration::from_millis(20),
            retry: RetryPolicy {
                max_attempts: 1,
                ..Default::default()
            },
            ..Default::default()
        })
        .run()
        .await
}

/// Waits (polling every 50 ms, up to `secs`) until `done` holds; panics with `what` and
/// `state()` otherwise.
async fn wait_until(
    secs: u64,
    what: &str,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s ({})",
            state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_group_commits_offsets_only_behind_acknowledged_writes() {
    let topic = fill(&unique_name("ack"), 400, 3).await;
    let group = unique_name("ack-group");
    // The first worker fails for good on its 5th batch of 50: what it wrote before is
    // committed (up to its last checkpoint), the failed batch and everything after it is not.
    let first = Arc::new(Recorder {
        fail_at_batch: Some(5),
        ..Default::default()
    });
    let err = run_worker(&group, &topic, first.clone()).await.unwrap_err();
    assert!(err.to_string().contains("refusing batch 5"), "{err}");
    let first_seen = first.seen.lock().unwrap().clone();
    // four batches of at most 50 (a batch lingering 20 ms on a loaded machine may hold fewer)
    assert!(
        (4..=200).contains(&first_seen.len()),
        "the first run wrote {} records in 4 batches",
        first_seen.len()
    );

    let second = Arc::new(Recorder::default());
    run_worker(&group, &topic, second.clone())
        .await
        .expect("second run");
    let second_seen = second.seen.lock().unwrap().clone();
    // nothing lost: every id is in one of the runs
    let mut ids: BTreeMap<i64, usize> = BTreeMap::new();
    for r in first_seen.iter().chain(&second_seen) {
        *ids.entry(r.get("id").unwrap().as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(ids.len(), 400, "every id arrived");
    // and the committed offsets were used: the second run did not start over
    assert!(
        second_seen.len() < 400,
        "the second run read {} records: the first run's acknowledged offsets were not committed",
        second_seen.len()
    );
    // what the second run repeats is at most what came after the first run's last
    // checkpoint (the source declares one every 100 events)
    let first_origins: std::collections::BTreeSet<_> = first_seen.iter().map(origin).collect();
    let repeated = second_seen
        .iter()
        .filter(|r| first_origins.contains(&origin(r)))
        .count();
    assert!(
        repeated < 100,
        "{repeated} records written in the first run were read again"
    );
    assert_eq!(second_seen.len(), 400 - first_seen.len() + repeated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_group_rebalance_hands_partitions_over_without_loss_or_duplicates() {
    // A backlog waits whenever the group rebalances: events are topped up (500 at a time,
    // keeping at least 1000 unwritten) until B has joined, taken partitions over and written
    // from them. So A is mid-stream, with records in flight, when it gives partitions up, and
    // however long B takes to join on a loaded machine, A cannot finish everything first
    // (which is what made this test flaky when it wrote a fixed 6000 events up front).
    let prefix = unique_name("rebal");
    let topic = fill(&prefix, 1000, 6).await;
    let mut produced: i64 = 1000;
    let group = unique_name("rebal-group");
    // workers that run until stopped (not until idle: the test decides when all is written)
    let source = || {
        let mut c = source_config(&group, &[&topic]);
        c.stop_when_idle_ms = None;
        Arc::new(KafkaSource::new(c).unwrap())
    };
    let (source_a, source_b) = (source(), source());
    // slow sinks (50 records per 25 ms): A is still busy when B has joined
    let a = Arc::new(Recorder {
        delay: Duration::from_millis(25),
        ..Default::default()
    });
    let b = Arc::new(Recorder {
        delay: Duration::from_millis(25),
        ..Default::default()
    });
    let stop = CancellationToken::new();
    let worker_a = tokio::spawn(worker(source_a.clone(), a.clone(), stop.clone()));
    let mut worker_b = None;
    let state = |produced: i64| {
        format!(
            "produced {produced}, A wrote {} and gave partitions up {} times, B wrote {} and holds {:?}",
            a.len(),
            source_a.rebalances(),
            b.len(),
            source_b.lag()
        )
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while b.len() < 100 {
        assert!(
            Instant::now() < deadline,
            "B took no partitions over within 300 s: {}",
            state(produced)
        );
        // once A is going, B joins the group: A gives up partitions mid-stream
        if worker_b.is_none() && a.len() >= 300 {
            worker_b = Some(tokio::spawn(worker(
                source_b.clone(),
                b.clone(),
                stop.clone(),
            )));
        }
        if produced - ((a.len() + b.len()) as i64) < 1000 {
            fill_ids(&prefix, produced..produced + 500, 6).await;
            produced += 500;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let written = || {
        let a_seen = a.seen.lock().unwrap();
        let b_seen = b.seen.lock().unwrap();
        a_seen
            .iter()
            .chain(b_seen.iter())
            .map(origin)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    wait_until(
        300,
        "every event written",
        || written() as i64 == produced,
        || format!("{} of {produced} written", written()),
    )
    .await;
    stop.cancel();
    worker_a.await.unwrap().expect("worker A");
    worker_b
        .expect("B started")
        .await
        .unwrap()
        .expect("worker B");

    let a_seen = a.seen.lock().unwrap().clone();
    let b_seen = b.seen.lock().unwrap().clone();
    assert!(
        source_a.rebalances() >= 1,
        "A gave partitions up: {}",
        state(produced)
    );
    assert!(!b_seen.is_empty(), "B got partitions");
    assert!((a_seen.len() as i64) < produced, "A gave partitions up");
    let mut count: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for r in a_seen.iter().chain(&b_seen) {
        *count.entry(origin(r)).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(count.len() as i64, produced, "every event delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bad_messages_fail_naming_the_offset_or_are_skipped_or_dead_lettered() {
    let prefix = unique_name("bad");
    let topic = fill(&prefix, 5, 1).await;
    let p = producer();
    produce(&p, &topic, Some(r#"{"id":100}"#), Some("this is not JSON")).await;
    produce(
        &p,
        &topic,
        Some(r#"{"id":101}"#),
        Some(r#"{"op":"x","after":{"id":101}}"#),
    )
    .await;
    let more: Vec<_> = (5..8)
        .map(|i| {
            change(
                &every_type_schema("shop"),
                Op::Insert,
                every_type_row(i),
                None,
                100 + i as u64,
            )
        })
        .collect();
    let mut c = KafkaSinkConfig::new(brokers());
    c.topic_prefix = prefix.clone();
    write(c, more).await;

    // fail (the default): the error names topic, partition and offset
    let (report, _) = read(source_config(&unique_name("bad-fail"), &[&topic])).await;
    let err = report.unwrap_err().to_string();
    assert!(err.contains(&format!("{topic}[0]@5")), "{err}");
    assert!(err.contains("bad_messages"), "the fix is named: {err}");

    // skip: the good events all arrive
    let mut config = source_config(&unique_name("bad-skip"), &[&topic]);
    config.bad_messages = BadMessages::Skip;
    let (report, sink) = read(config).await;
    report.expect("skipping run");
    assert_eq!(sink.len(), 8);

    // dead-letter: the bad messages go to the dead-letter topic with their origin
    let group = unique_name("bad-dlq");
    let dlq = format!("{group}.dlq");
    create_topic(&dlq, 1).await;
    let mut config = source_config(&group, &[&topic]);
    config.bad_messages = BadMessages::DeadLetter;
    let (report, sink) = read(config).await;
    report.expect("dead-lettering run");
    assert_eq!(sink.len(), 8);
    let letters = read_all(&dlq);
    assert_eq!(letters.len(), 2);
    let header = |r: &Raw, k: &str| {
        r.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&letters[0], "datatrace.offset").as_deref(),
        Some("5")
    );
    assert_eq!(
        header(&letters[1], "datatrace.offset").as_deref(),
        Some("6")
    );
    assert_eq!(
        header(&letters[0], "datatrace.topic").as_deref(),
        Some(topic.as_str())
    );
    assert!(header(&letters[0], "datatrace.error")
        .unwrap()
        .contains("not JSON"));
    assert!(header(&letters[1], "datatrace.error")
        .unwrap()
        .contains("unknown op \"x\""));
    assert_eq!(letters[0].value.as_deref(), Some(&b"this is not JSON"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_missing_topics_and_unreachable_brokers_are_named() {
    // a source subscribed to a topic that does not exist
    let missing = unique_name("missing");
    let mut config = source_config(&unique_name("g"), &[&missing]);
    config.wait_for_topics_ms = 1000;
    let (report, _) = read(config).await;
    let err = report.unwrap_err().to_string();
    assert!(err.contains(&missing), "{err}");
    assert!(err.to_lowercase().contains("unknown topic"), "{err}");

    // a sink that may not create topics
    let schema = every_type_schema("shop");
    let mut c = KafkaSinkConfig::new(brokers());
    c.topic_prefix = unique_name("nocreate");
    c.create_topics = false;
    let sink = Arc::new(KafkaSink::new(c.clone()).unwrap());
    let records = vec![change(&schema, Op::Insert, every_type_row(1), None, 1)];
    let err = Pipeline::new(
        "t",
        Arc::new(datatrace_core::testing::MemorySource::new(records.clone())),
        sink,
    )
    .run()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("{}.shop.items", c.topic_prefix)),
        "{err}"
    );
    assert!(err.contains("create_topics"), "{err}");

    // brokers that do not answer
    let mut c = KafkaSinkConfig::new("127.0.0.1:1");
    c.properties
        .insert("socket.connection.setup.timeout.ms".into(), "1000".into());
    let sink = Arc::new(KafkaSink::new(c).unwrap());
    let err = Pipeline::new(
        "t",
        Arc::new(datatrace_core::testing::MemorySource::new(records)),
        sink,
    )
    .config(PipelineConfig {
        retry: RetryPolicy::new(2, Duration::from_millis(10), Duration::from_millis(10)),
        ..Default::default()
    })
    .run()
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("127.0.0.1:1") && err.contains("do not answer"),
        "{err}"
    );
}

//! [`KafkaSource`]: Debezium change events from Kafka topics, read as a consumer group.

mod offsets;
mod poller;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{Emitter, Part, Position, Source};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tokio::sync::mpsc;

pub use offsets::PartitionLag;

use self::offsets::{Offsets, TopicPartition};
use self::poller::{Ctx, Item, LoopConfig};
use crate::config::{BadMessages, KafkaSourceConfig};
use crate::debezium::{DecodeError, Decoder, Event};
use crate::error::KafkaError;

/// Counters of a source, readable while it runs.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Change events handed to the pipeline.
    pub events: AtomicU64,
    /// Tombstones and other messages with nothing to apply.
    pub skipped: AtomicU64,
    /// Messages that were not change events (skipped or dead-lettered).
    pub bad: AtomicU64,
    /// Table changes handed to the pipeline.
    pub table_changes: AtomicU64,
}

/// Reads Debezium change events (written by DataTrace's [`KafkaSink`](crate::KafkaSink) or by
/// Debezium itself) from Kafka topics as one member of a consumer group.
///
/// Workers that run the same job with the same `group` share the topics' partitions; Kafka
/// moves partitions between them when one joins, leaves or dies. The group's committed
/// offsets are the only resume state: an offset is committed only after the pipeline's sink
/// acknowledged every record before it ([`Source::acknowledged`]), and a worker that gives up
/// partitions in a rebalance first waits until what it handed to its sink from them is
/// written and commits that, so the next owner starts exactly after it. A worker that dies
/// leaves its last commit behind; the records after it are written again by the next owner,
/// which sinks apply idempotently (upserts, external versions from the source position).
///
/// The unit never completes on its own unless `stop_when_idle_ms` is set. Positions in the
/// pipeline's checkpoint store are informational: a restarted worker resumes from the
/// group's offsets.
pub struct KafkaSource {
    config: KafkaSourceConfig,
    offsets: Arc<Offsets>,
    decoder: Arc<Decoder>,
    consumer: Mutex<Option<Arc<BaseConsumer<Ctx>>>>,
    dead_letters: Mutex<Option<FutureProducer>>,
    stats: Arc<SourceStats>,
}

impl KafkaSource {
    /// A source with these settings (the brokers are first contacted when reading starts).
    pub fn new(config: KafkaSourceConfig) -> Result<Self, KafkaError> {
        config.validate()?;
        Ok(KafkaSource {
            config,
            offsets: Arc::new(Offsets::default()),
            decoder: Arc::new(Decoder::new()),
            consumer: Mutex::new(None),
            dead_letters: Mutex::new(None),
            stats: Arc::new(SourceStats::default()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaSourceConfig {
        &self.config
    }

    /// The lag of each partition assigned to this worker: the partition's end (last stable
    /// offset) minus the group's acknowledged offset.
    pub fn lag(&self) -> Vec<PartitionLag> {
        self.offsets.lag()
    }

    /// A handle on the lag that outlives borrows of the source (for progress reporting).
    pub fn lag_handle(&self) -> LagHandle {
        LagHandle {
            offsets: self.offsets.clone(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<SourceStats> {
        &self.stats
    }

    /// Rebalances this worker has gone through (partitions revoked).
    pub fn rebalances(&self) -> u64 {
        self.consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |c| c.context().rebalances.load(Ordering::Relaxed))
    }

    fn consumer(&self) -> Result<Arc<BaseConsumer<Ctx>>, KafkaError> {
        let mut slot = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let mut client = self.config.client();
        client.set("statistics.interval.ms", "1000");
        // the group's offsets are committed by the poll thread, behind acknowledgements
        client.set("enable.auto.commit", "false");
        let ctx = Ctx::new(
            self.offsets.clone(),
            Duration::from_millis(self.config.drain_timeout_ms),
        );
        let consumer: BaseConsumer<Ctx> =
            client
                .create_with_context(ctx)
                .map_err(|source| KafkaError::Client {
                    what: "consumer",
                    source,
                })?;
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| KafkaError::Other {
            context: format!("subscribing to {topics:?}"),
            detail: e.to_string(),
        })?;
        let consumer = Arc::new(consumer);
        *slot = Some(consumer.clone());
        Ok(consumer)
    }

    /// Commits the acknowledged offsets and leaves the group (the other workers take over
    /// this worker's partitions at once). Dropping the source does the same.
    pub fn close(&self) {
        let consumer = self
            .consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(c) = consumer {
            c.context().closing.store(true, Ordering::Relaxed);
            let assigned: Vec<TopicPartition> = self
                .offsets
                .lag()
                .into_iter()
                .map(|l| (l.topic, l.partition))
                .collect();
            poller::commit(&c, &self.offsets.acked_of(&assigned), CommitMode::Sync);
            c.unsubscribe();
        }
    }

    async fn dead_letter(
        &self,
        tp: &TopicPartition,
        offset: i64,
        error: &DecodeError,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    ) -> datatrace_core::Result<()> {
        let producer = {
            let mut slot = self.dead_letters.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(p) => p.clone(),
                None => {
                    let mut c = rdkafka::ClientConfig::new();
                    c.set("bootstrap.servers", &self.config.brokers)
                        .set("enable.idempotence", "true")
                        .set("acks", "all");
                    for (k, v) in &self.config.properties {
                        if k.starts_with("security.")
                            || k.starts_with("sasl.")
                            || k.starts_with("ssl.")
                        {
                            c.set(k, v);
                        }
                    }
                    let p: FutureProducer = c.create().map_err(|source| KafkaError::Client {
                        what: "dead-letter producer",
                        source,
                    })?;
                    *slot = Some(p.clone());
                    p
                }
            }
        };
        let topic = self.config.dead_letter_topic();
        let partition = tp.1.to_string();
        let offset_text = offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "datatrace.error",
                value: Some(&error.reason),
            })
            .insert(Header {
                key: "datatrace.topic",
                value: Some(&tp.0),
            })
            .insert(Header {
                key: "datatrace.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "datatrace.offset",
                value: Some(&offset_text),
            });
        let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> =
            FutureRecord::to(&topic).headers(headers);
        if let Some(k) = &key {
            record = record.key(k);
        }
        if let Some(v) = &value {
            record = record.payload(v);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                tracing::warn!(dead_letter_topic = %topic, "{error}: sent to the dead-letter topic");
                Ok(())
            }
            Err((e, _)) => Err(KafkaError::Other {
                context: format!(
                    "writing {error} to the dead-letter topic {topic} (create it, or choose another with dead_letter_topic)"
                ),
                detail: e.to_string(),
            }
            .into()),
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads the lag of a [`KafkaSource`] from elsewhere (a progress reporter).
#[derive(Clone)]
pub struct LagHandle {
    offsets: Arc<Offsets>,
}

impl LagHandle {
    /// The lag of each assigned partition.
    pub fn lag(&self) -> Vec<PartitionLag> {
        self.offsets.lag()
    }
}

/// Events between two checkpoints of a source.
const CHECKPOINT_EVERY: usize = 100;

fn checkpoint_of(covered: &std::collections::BTreeMap<TopicPartition, i64>) -> Position {
    let offsets: Vec<serde_json::Value> = covered
        .iter()
        .map(|((t, p), o)| json!([t, p, o + 1]))
        .collect();
    Position::new(json!({ "offsets": offsets }))
}

impl KafkaSource {
    /// Starts the poll thread of `consumer`, handing batches to `tx` until `stop` is set.
    fn spawn_poller(
        &self,
        consumer: Arc<BaseConsumer<Ctx>>,
        tx: mpsc::Sender<Vec<Item>>,
        stop: Arc<AtomicBool>,
    ) -> datatrace_core::Result<std::thread::JoinHandle<()>> {
        let decoder = self.decoder.clone();
        let cfg = LoopConfig {
            batch: 500,
            stop_when_idle: self.config.stop_when_idle_ms.map(Duration::from_millis),
            commit_interval: Duration::from_secs(1),
            wait_for_topics: Duration::from_millis(self.config.wait_for_topics_ms),
        };
        std::thread::Builder::new()
            .name("kafka-poll".into())
            .spawn(move || poller::run(consumer, decoder, tx, stop, cfg))
            .map_err(|e| datatrace_core::Error::Io {
                context: "starting the Kafka poll thread".into(),
                source: e,
            })
    }

    /// Hands one item of the poll thread to the pipeline and records the offsets it covers
    /// in `covered`; `true` when the read is over (the consumer went idle).
    async fn deliver(
        &self,
        item: Item,
        covered: &mut std::collections::BTreeMap<TopicPartition, i64>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<bool> {
        match item {
            Item::Event { tp, offset, event } => {
                match event {
                    Event::Change(r) => {
                        self.stats.events.fetch_add(1, Ordering::Relaxed);
                        out.emit(r).await?;
                    }
                    Event::TableChange(c) | Event::OnePartitionTableChange(c) => {
                        self.stats.table_changes.fetch_add(1, Ordering::Relaxed);
                        out.table_change(c).await?;
                    }
                    Event::Skip => {
                        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                covered.insert(tp, offset);
            }
            Item::Barrier { change, covers } => {
                self.stats.table_changes.fetch_add(1, Ordering::Relaxed);
                out.table_change(change).await?;
                for (tp, o) in covers {
                    let e = covered.entry(tp).or_insert(o);
                    *e = (*e).max(o);
                }
            }
            Item::Bad {
                tp,
                offset,
                error,
                key,
                value,
            } => {
                self.bad_message(&tp, offset, &error, key, value).await?;
                covered.insert(tp, offset);
            }
            Item::Failed(e) => {
                return Err(KafkaError::Other {
                    context: format!(
                        "consumer of group {} on topics {:?}",
                        self.config.group, self.config.topics
                    ),
                    detail: e,
                }
                .into())
            }
            Item::Idle => {
                if !covered.is_empty() {
                    out.checkpoint(checkpoint_of(covered)).await?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A message that is not a change event, handled as `bad_messages` says: fail, skip it,
    /// or send it to the dead-letter topic.
    async fn bad_message(
        &self,
        tp: &TopicPartition,
        offset: i64,
        error: &DecodeError,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    ) -> datatrace_core::Result<()> {
        match self.config.bad_messages {
            BadMessages::Fail => {
                return Err(KafkaError::Other {
                    context: format!("group {}", self.config.group),
                    detail: format!(
                        "{error} (set bad_messages = \"skip\" or \"dead-letter\" to go on past such messages)"
                    ),
                }
                .into())
            }
            BadMessages::Skip => {
                tracing::warn!("{error}: skipped (bad_messages = \"skip\")");
            }
            BadMessages::DeadLetter => {
                self.dead_letter(tp, offset, error, key, value).await?;
            }
        }
        self.stats.bad.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn partition_lag(&self) -> Vec<PartitionLag> {
        self.offsets.lag()
    }

    async fn read(
        &self,
        _part: &Part,
        _from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let consumer = self.consumer()?;
        // Little is handed ahead of the pipeline: a rebalance waits for what was handed over.
        let (tx, mut rx) = mpsc::channel::<Vec<Item>>(2);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = self.spawn_poller(consumer, tx, stop.clone())?;
        let _stop_on_exit = StopThread(stop, Some(thread));
        loop {
            let items = tokio::select! {
                items = rx.recv() => items,
                _ = out.cancelled().cancelled() => return Err(datatrace_core::Error::Cancelled),
            };
            let Some(items) = items else {
                return Ok(());
            };
            tracing::debug!(items = items.len(), "from the poll thread");
            let mut covered = std::collections::BTreeMap::new();
            for (n, item) in items.into_iter().enumerate() {
                // a checkpoint every so many events, so that a failure later in a large batch
                // keeps what was written before it
                if n > 0 && n % CHECKPOINT_EVERY == 0 && !covered.is_empty() {
                    out.checkpoint(checkpoint_of(&covered)).await?;
                }
                if self.deliver(item, &mut covered, out).await? {
                    return Ok(());
                }
            }
            if !covered.is_empty() {
                out.checkpoint(checkpoint_of(&covered)).await?;
            }
        }
    }

    async fn acknowledged(&self, _part: &Part, position: &Position) {
        tracing::debug!(position = %position.state, "acknowledged");
        let Some(list) = position.state["offsets"].as_array() else {
            return;
        };
        for entry in list {
            let (Some(t), Some(p), Some(o)) =
                (entry[0].as_str(), entry[1].as_i64(), entry[2].as_i64())
            else {
                continue;
            };
            let Ok(p) = i32::try_from(p) else { continue };
            self.offsets.acknowledged(&(t.to_string(), p), o);
        }
    }
}

/// Stops the poll thread when `read` returns, however it returns.
struct StopThread(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Drop for StopThread {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        // the thread notices within one poll (100 ms); it is not joined here, to keep the
        // async runtime free
        let _ = self.1.take();
    }
}

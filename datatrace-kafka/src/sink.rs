//! [`KafkaSink`]: records and table changes as Debezium change events on Kafka topics.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datatrace_core::{
    Batch, Cause, Op, Outcome, PrepareContext, Record, Sink, SinkError, TableChange,
};
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaSinkConfig;
use crate::debezium::{Encoder, EnvelopeOptions, Message};
use crate::error::KafkaError;
use crate::fence::Fence;
use crate::topics::{Creation, Topics};

/// Writes records as Debezium change events to one topic per table (see
/// [`KafkaSinkConfig::topic`]), keyed by primary key so that every change of a key lands on
/// the same partition, in order.
///
/// The producer is idempotent with `acks=all` (no duplicates or reordering from its own
/// retries, nothing acknowledged before every in-sync replica has it). [`Sink::write`] returns
/// only when Kafka's delivery report for every message of the batch is in, so the pipeline's
/// checkpoint never moves past a change that is not safely in Kafka. A failed delivery fails
/// the whole batch as transient: the runner sends it again (a partly delivered batch then
/// repeats some events, in order; consumers apply them idempotently).
///
/// Table changes (`TRUNCATE`, `DROP TABLE`, `RENAME TABLE`) go to every partition of the
/// table's topic, so that each partition carries them after the rows written before them.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    producer: FutureProducer,
    fence: Option<Arc<Fence>>,
    encoder: Encoder,
    topics: Topics,
}

impl KafkaSink {
    /// A sink with these settings (the brokers are first contacted on the first write).
    pub fn new(config: KafkaSinkConfig) -> Result<Self, KafkaError> {
        config.validate()?;
        let client = config.client();
        let producer: FutureProducer = client.create().map_err(|source| KafkaError::Client {
            what: "producer",
            source,
        })?;
        let fence = config.fenced.then(|| {
            Fence::new(
                config.fence_id(),
                client.clone(),
                &config.brokers,
                config.fence_session_timeout_ms,
            )
        });
        let topics = Topics::new(&client, &config.brokers)?;
        let encoder = Encoder::new(EnvelopeOptions {
            schemas: config.schemas,
            server_name: config.topic_prefix.clone(),
            tombstones: config.tombstones,
        });
        Ok(KafkaSink {
            config,
            producer,
            fence,
            encoder,
            topics,
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaSinkConfig {
        &self.config
    }

    /// The fence of a `fenced` sink: build the job's [`KafkaCheckpointStore`](crate::KafkaCheckpointStore)
    /// from it, so that checkpoints commit the events written before them.
    pub fn fence(&self) -> Option<&Arc<Fence>> {
        self.fence.as_ref()
    }

    /// The producer to send with, and for a fenced sink the guard that keeps a commit from
    /// cutting the sends in two.
    async fn producer(
        &self,
    ) -> Result<
        (
            &FutureProducer,
            Option<tokio::sync::RwLockReadGuard<'_, ()>>,
        ),
        SinkError,
    > {
        match &self.fence {
            None => Ok((&self.producer, None)),
            Some(f) => {
                let (p, guard) = f.writer().await.map_err(SinkError::fatal)?;
                Ok((p, Some(guard)))
            }
        }
    }

    /// The topic a record goes to.
    pub fn topic_of(&self, r: &Record) -> String {
        match &r.target {
            Some(t) => format!("{}.{t}", self.config.topic_prefix),
            None => self.config.topic_for(r.schema.namespace(), r.schema.name()),
        }
    }

    fn creation(&self) -> Option<Creation> {
        self.config.create_topics.then_some(Creation {
            partitions: self.config.partitions,
            replication_factor: self.config.replication_factor,
        })
    }

    async fn partitions(&self, topic: &str) -> Result<i32, SinkError> {
        self.topics
            .partitions(topic, self.creation())
            .await
            .map_err(|e| match e {
                KafkaError::Unreachable { .. } => SinkError::transient(e),
                other => SinkError::fatal(other),
            })
    }

    /// Queues one message; waits while librdkafka's queue is full.
    async fn send(
        &self,
        producer: &FutureProducer,
        topic: &str,
        m: &Message,
        partition: Option<i32>,
    ) -> Result<DeliveryFuture, SinkError> {
        let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> = FutureRecord::to(topic);
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        if let Some(v) = &m.value {
            record = record.payload(v);
        }
        // Keyless tables keep their order on partition 0; keyed messages go by key hash.
        if let Some(p) = partition.or(m.key.is_none().then_some(0)) {
            record = record.partition(p);
        }
        loop {
            match producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(classify(topic, &e)),
            }
        }
    }
}

/// What a failed send or delivery means for the batch.
fn classify(topic: &str, e: &RdError) -> SinkError {
    use RDKafkaErrorCode as C;
    let cause = Cause::new(e.clone()).context(format!("topic {topic}"));
    match e.rdkafka_error_code() {
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::UnknownTopic
            | C::InvalidConfig
            | C::Fenced
            | C::ProducerFenced
            | C::InvalidProducerEpoch,
        ) => SinkError::Fatal(cause),
        _ => SinkError::Transient(cause),
    }
}

fn too_large(e: &RdError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

#[async_trait]
impl Sink for KafkaSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        if let Some(f) = &self.fence {
            // a standby waits here until it is the active instance
            f.acquire().await.map_err(SinkError::fatal)?;
        }
        if let Some(schema) = &ctx.schema {
            let topic = self.config.topic_for(schema.namespace(), schema.name());
            self.partitions(&topic).await?;
        }
        Ok(())
    }

    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        // a fenced writer's stream writes go one at a time (snapshot rows are not tracked:
        // the table copies of `snapshot+cdc` may write side by side)
        let _one_at_a_time = match &self.fence {
            Some(f) if batch.records.iter().any(|r| r.op != Op::Read) => {
                Some(f.begin_write().map_err(SinkError::fatal)?)
            }
            _ => None,
        };
        let (producer, _in_transaction) = self.producer().await?;
        let mut outcomes = vec![Outcome::Written; batch.len()];
        let mut pending: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(batch.len());
        // after a takeover, the records the last committed transaction holds beyond its
        // checkpoint are not written again
        let mut first = 0;
        if let Some(f) = &self.fence {
            while first < batch.len() && f.committed_already(stream_ordinal(&batch.records[first]))
            {
                first += 1;
            }
        }
        for (i, r) in batch.records.iter().enumerate().skip(first) {
            let messages = match self.encoder.record(r) {
                Ok(m) => m,
                Err(e) => {
                    outcomes[i] = Outcome::Rejected(e.0.into());
                    continue;
                }
            };
            let topic = self.topic_of(r);
            self.partitions(&topic).await?;
            for m in &messages {
                pending.push((i, self.send(producer, &topic, m, None).await?));
            }
        }
        let mut failure: Option<SinkError> = None;
        for (i, f) in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, msg))) if too_large(&e) => {
                    outcomes[i] = Outcome::Rejected(
                        format!(
                            "topic {}: the event is too large for Kafka ({} bytes): {e}",
                            rdkafka::message::Message::topic(&msg),
                            rdkafka::message::Message::payload(&msg).map_or(0, <[u8]>::len),
                        )
                        .into(),
                    );
                }
                Ok(Err((e, msg))) => {
                    let topic = rdkafka::message::Message::topic(&msg).to_string();
                    let err = classify(&topic, &e);
                    if failure.is_none() || matches!(err, SinkError::Fatal(_)) {
                        failure = Some(err);
                    }
                }
                Err(_) => {
                    failure.get_or_insert(SinkError::Transient(
                        "the Kafka producer was closed before delivering".into(),
                    ));
                }
            }
        }
        match failure {
            // a failed send leaves a transaction that can only be aborted: the job stops and
            // resumes (here or in another instance) from its last committed checkpoint
            Some(e) if self.fence.is_some() => Err(SinkError::fatal(format!(
                "{e} (in a fenced writer's transaction: run the job again, it resumes from its last committed checkpoint)"
            ))),
            Some(e) => Err(e),
            None => {
                if let Some(f) = &self.fence {
                    f.wrote(batch.records[first..].iter().map(stream_ordinal));
                }
                Ok(outcomes)
            }
        }
    }

    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let ordinal = change.position.as_ref().and_then(|p| p.ordinal);
        let _one_at_a_time = match &self.fence {
            Some(f) if f.committed_already(ordinal) => return Ok(()),
            Some(f) => Some(f.begin_write().map_err(SinkError::fatal)?),
            None => None,
        };
        let message = self
            .encoder
            .table_change(change)
            .map_err(|e| SinkError::Fatal(format!("{change}: {}", e.0).into()))?;
        let topic = match &change.target {
            Some(t) => format!("{}.{t}", self.config.topic_prefix),
            None => self
                .config
                .topic_for(change.schema.namespace(), change.schema.name()),
        };
        let partitions = self.partitions(&topic).await?;
        let (producer, _in_transaction) = self.producer().await?;
        let mut pending = Vec::with_capacity(partitions.clamp(1, 10_000) as usize);
        for p in 0..partitions {
            pending.push(self.send(producer, &topic, &message, Some(p)).await?);
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(classify(&topic, &e)),
                Err(_) => {
                    return Err(SinkError::Transient(
                        "the Kafka producer was closed before delivering".into(),
                    ))
                }
            }
        }
        if let Some(f) = &self.fence {
            f.wrote(std::iter::once(ordinal));
        }
        Ok(())
    }

    async fn finish(&self) -> Result<(), SinkError> {
        let producer = self.producer().await?.0.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60)))
            .await
            .map_err(|e| SinkError::Transient(e.to_string().into()))?
            .map_err(|e| SinkError::Transient(format!("flushing the Kafka producer: {e}").into()))
    }
}

/// The position ordinal by which a fenced writer tracks what it wrote: that of change events.
/// Snapshot rows (`Op::Read`) all carry the ordinal of the copy's start and are resumed by the
/// copy's own checkpoints: they are neither counted nor skipped.
fn stream_ordinal(r: &Record) -> Option<u64> {
    if r.op == Op::Read {
        return None;
    }
    r.position.as_ref().and_then(|p| p.ordinal)
}

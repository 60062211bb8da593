//! Leadership among the instances of a fenced job: the member of the consumer group
//! `{id}.leader` that is given the one partition of topic `{id}.leader` is the active one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientConfig, ClientContext};

use crate::error::KafkaError;
use crate::topics::{Creation, Topics};

struct Ctx {
    holds: Arc<AtomicBool>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) if tpl.count() > 0 => self.holds.store(true, Ordering::SeqCst),
            Rebalance::Assign(_) => {}
            Rebalance::Revoke(tpl) if tpl.count() > 0 => self.holds.store(false, Ordering::SeqCst),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(_) => self.holds.store(false, Ordering::SeqCst),
        }
    }
}

/// This instance's membership; polled by a thread of its own for as long as it lives.
pub(super) struct Leadership {
    holds: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Leadership {
    /// Joins the group and waits until this instance is given the partition.
    pub(super) async fn join(
        id: &str,
        brokers: &str,
        session_timeout_ms: u64,
        client: &ClientConfig,
    ) -> Result<Leadership, KafkaError> {
        let topic = format!("{id}.leader");
        let topics = Topics::new(client, brokers)?;
        topics
            .partitions(
                &topic,
                Some(Creation {
                    partitions: 1,
                    replication_factor: -1,
                }),
            )
            .await?;
        let mut c = ClientConfig::new();
        for (k, v) in client.config_map() {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                c.set(k, v);
            }
        }
        c.set("bootstrap.servers", brokers)
            .set("group.id", &topic)
            .set("enable.auto.commit", "false")
            // a member joining (a standby, a revived zombie) must not take the partition away
            // from its owner, even for a moment: cooperative rebalancing leaves it where it is
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (session_timeout_ms / 4).max(100).to_string(),
            );
        let holds = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<Ctx> = c
            .create_with_context(Ctx {
                holds: holds.clone(),
            })
            .map_err(|source| KafkaError::Client {
                what: "leader election consumer",
                source,
            })?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| KafkaError::Other {
                context: format!("joining the group {topic}"),
                detail: e.to_string(),
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-leader".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // messages are never produced to the topic; polling keeps the membership
                        let _ = consumer.poll(Duration::from_millis(100));
                    }
                })
                .map_err(|e| KafkaError::Other {
                    context: "starting the leader election thread".into(),
                    detail: e.to_string(),
                })?;
        }
        let mut waited = 0u32;
        while !holds.load(Ordering::SeqCst) {
            if waited == 50 {
                tracing::info!(group = %topic, "standing by: another instance is the active writer");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        Ok(Leadership { holds, stop })
    }

    /// Whether this instance is still the active one.
    pub(super) fn holds(&self) -> bool {
        self.holds.load(Ordering::SeqCst)
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

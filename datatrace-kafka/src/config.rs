//! Settings of the Kafka sink and source ([`KafkaSinkConfig`], [`KafkaSourceConfig`]).

use datatrace_core::template::{Segment, Template};
use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::error::KafkaError;

/// Settings of the [`KafkaSink`](crate::KafkaSink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The logical server name: the first part of topic names and `source.name` in events
    /// (Debezium's `topic.prefix`).
    pub topic_prefix: String,
    /// How a table's topic is named: `{prefix}`, `{db}` and `{table}` are replaced (the
    /// default `{prefix}.{db}.{table}` is Debezium's). A record routed to a target by a
    /// transform goes to `{prefix}.{target}` instead.
    pub topic: String,
    /// Wrap keys and values in `{"schema": ..., "payload": ...}` (the default), so that
    /// consumers know every column's exact type.
    pub schemas: bool,
    /// Follow deletes with a tombstone (for compacted topics).
    pub tombstones: bool,
    /// Create missing topics (with `partitions` partitions); when off, a missing topic is an
    /// error naming it.
    pub create_topics: bool,
    /// Partitions of created topics: changes are spread over them by primary key (every
    /// change of one key goes to the same partition, in order).
    pub partitions: i32,
    /// Replication factor of created topics (`-1`: the broker's default).
    pub replication_factor: i32,
    /// A fenced writer: of several instances of the job, one writes (in Kafka transactions,
    /// each committed together with the job's checkpoint), the others stand by and take over
    /// when it dies; a revived old instance is fenced off. The job's checkpoints then live in
    /// Kafka (`{fence_id}.checkpoints`), not in files.
    pub fenced: bool,
    /// The fence's name, shared by the instances of one job: the transactional id and the
    /// prefix of its topics (default `datatrace.{topic_prefix}`).
    pub fence_id: Option<String>,
    /// How long an instance may be silent before a standby takes over (milliseconds).
    pub fence_session_timeout_ms: u64,
    /// Extra librdkafka producer settings (`compression.type`, `security.protocol`, ...).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            brokers: String::new(),
            topic_prefix: "datatrace".into(),
            topic: "{prefix}.{db}.{table}".into(),
            schemas: true,
            tombstones: true,
            create_topics: true,
            partitions: 6,
            replication_factor: -1,
            fenced: false,
            fence_id: None,
            fence_session_timeout_ms: 6000,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaSinkConfig {
    /// The fence's name (see [`KafkaSinkConfig::fence_id`]).
    pub fn fence_id(&self) -> String {
        self.fence_id
            .clone()
            .unwrap_or_else(|| format!("datatrace.{}", self.topic_prefix))
    }

    /// A configuration for these brokers, with the defaults.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSinkConfig {
            brokers: brokers.into(),
            ..Default::default()
        }
    }

    /// Checks the settings; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), KafkaError> {
        if self.brokers.trim().is_empty() {
            return Err(KafkaError::Config(
                "brokers is empty: set it to the bootstrap servers, e.g. \"127.0.0.1:9092\"".into(),
            ));
        }
        use datatrace_core::limits::{check_range, HOUR_MS};
        if self.partitions < 1 {
            return Err(KafkaError::Config(format!(
                "partitions = {}: must be at least 1",
                self.partitions
            )));
        }
        check_range("partitions", self.partitions as u64, 1, 100_000)
            .and_then(|()| {
                if self.replication_factor == -1 {
                    return Ok(());
                }
                let r = u64::try_from(self.replication_factor).unwrap_or(0);
                check_range("replication_factor", r, 1, 1000)
                    .map_err(|e| format!("{e} (or -1: the broker's default)"))
            })
            .and_then(|()| {
                check_range(
                    "fence_session_timeout_ms",
                    self.fence_session_timeout_ms,
                    1,
                    HOUR_MS,
                )
            })
            .map_err(KafkaError::Config)?;
        let t = Template::parse(&self.topic)
            .map_err(|e| KafkaError::Config(format!("topic = {:?}: {}", self.topic, e.reason)))?;
        if let Err(name) = t.check_names(&["prefix", "db", "table"]) {
            return Err(KafkaError::Config(format!(
                "topic = {:?}: unknown placeholder {{{name}}} (expected prefix, db or table)",
                self.topic
            )));
        }
        if !t.uses("table") {
            return Err(KafkaError::Config(format!(
                "topic = {:?}: must contain {{table}}, or every table would share one topic",
                self.topic
            )));
        }
        Ok(())
    }

    /// The topic of table `table` of database `db`.
    pub fn topic_for(&self, db: Option<&str>, table: &str) -> String {
        let Ok(t) = Template::parse(&self.topic) else {
            return self.topic.clone();
        };
        let mut out = String::with_capacity(self.topic.len() + table.len() + 16);
        // No database: the placeholder and the separator after it are left out.
        let mut drop_dot = false;
        for s in t.segments() {
            match s {
                Segment::Text(text) => {
                    let text = match text.strip_prefix('.') {
                        Some(rest) if drop_dot => rest,
                        _ => text.as_str(),
                    };
                    out.push_str(text);
                    drop_dot = false;
                }
                Segment::Placeholder { name, .. } => {
                    drop_dot = false;
                    match (name.as_str(), db) {
                        ("prefix", _) => out.push_str(&self.topic_prefix),
                        ("table", _) => out.push_str(table),
                        ("db", Some(db)) => out.push_str(db),
                        _ => drop_dot = true,
                    }
                }
            }
        }
        out
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Java's partitioner, so that Debezium, Kafka Connect and DataTrace put a key on
            // the same partition.
            .set("partitioner", "murmur2_random")
            // Debezium JSON repeats its schema wrapper in every event: lz4 (built into
            // librdkafka) shrinks what goes to the brokers several times over for little CPU,
            // and a slightly longer linger fills the batches it compresses
            .set("compression.type", "lz4")
            .set("linger.ms", "10")
            .set("batch.size", "1000000")
            .set("message.timeout.ms", "60000")
            .set("socket.connection.setup.timeout.ms", "10000");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// What the source does with a message that is not a change event it can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadMessages {
    /// Stop, naming the topic, partition and offset (the default).
    #[default]
    Fail,
    /// Log it with its offset and go on.
    Skip,
    /// Copy it to the dead-letter topic with the error and its origin in headers, and go on.
    DeadLetter,
}

/// Settings of the [`KafkaSource`](crate::KafkaSource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The consumer group: workers with the same group share the partitions.
    pub group: String,
    /// Topics to read; a name starting with `^` is a regular expression
    /// (`^shop\\.inventory\\..*`).
    pub topics: Vec<String>,
    /// Where a group without committed offsets starts: `earliest` (the default) or `latest`.
    pub start: String,
    /// What happens to messages that are not change events (malformed JSON, unknown op,
    /// values that do not fit their schema).
    pub bad_messages: BadMessages,
    /// The dead-letter topic for `bad_messages = "dead-letter"` (default `{group}.dlq`).
    pub dead_letter_topic: Option<String>,
    /// Stop (as done) once every assigned partition has been read to its end and nothing
    /// arrived for this many milliseconds; for one-off copies, tests and benchmarks. Unset
    /// (the default): run until stopped.
    pub stop_when_idle_ms: Option<u64>,
    /// How long a missing topic is waited for (a reader may create it after the workers
    /// started) before it is an error naming it.
    pub wait_for_topics_ms: u64,
    /// How long a rebalance waits for the records of revoked partitions to be written before
    /// it gives them up (they are then read again by their new owner; sinks are idempotent).
    pub drain_timeout_ms: u64,
    /// Extra librdkafka consumer settings (`session.timeout.ms`, `security.protocol`, ...).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            brokers: String::new(),
            group: String::new(),
            topics: Vec::new(),
            start: "earliest".into(),
            bad_messages: BadMessages::Fail,
            dead_letter_topic: None,
            stop_when_idle_ms: None,
            wait_for_topics_ms: 30_000,
            drain_timeout_ms: 30_000,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaSourceConfig {
    /// A configuration for these brokers, group and topics, with the defaults.
    pub fn new(brokers: impl Into<String>, group: impl Into<String>, topics: &[&str]) -> Self {
        KafkaSourceConfig {
            brokers: brokers.into(),
            group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Checks the settings; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), KafkaError> {
        if self.brokers.trim().is_empty() {
            return Err(KafkaError::Config(
                "brokers is empty: set it to the bootstrap servers, e.g. \"127.0.0.1:9092\"".into(),
            ));
        }
        if self.group.trim().is_empty() {
            return Err(KafkaError::Config(
                "group is empty: name the consumer group the workers share".into(),
            ));
        }
        if self.topics.is_empty() {
            return Err(KafkaError::Config(
                "topics is empty: name the topics to read (or a ^regex)".into(),
            ));
        }
        use datatrace_core::limits::{check_ranges, DAY_MS, HOUR_MS};
        check_ranges(&[
            (
                "stop_when_idle_ms",
                self.stop_when_idle_ms.unwrap_or(0),
                0,
                DAY_MS,
            ),
            ("wait_for_topics_ms", self.wait_for_topics_ms, 0, DAY_MS),
            ("drain_timeout_ms", self.drain_timeout_ms, 0, HOUR_MS),
        ])
        .map_err(KafkaError::Config)?;
        if !matches!(self.start.as_str(), "earliest" | "latest") {
            return Err(KafkaError::Config(format!(
                "start = {:?}: expected \"earliest\" or \"latest\"",
                self.start
            )));
        }
        Ok(())
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.group))
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "true")
            // Offsets are stored only once the sink acknowledged their records; the
            // periodic auto-commit then commits what was stored, and nothing else.
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", &self.start)
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("socket.connection.setup.timeout.ms", "10000");
        if self.topics.iter().any(|t| t.starts_with('^')) {
            // A pattern also matches topics created later (a reader's new table): look for
            // them every 5 s instead of librdkafka's 5 minutes, so a topic created just after
            // the subscription is not read minutes late.
            c.set("topic.metadata.refresh.interval.ms", "5000");
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_upper_bounds_named_in_the_error() {
        KafkaSinkConfig::new("b:9092").validate().unwrap();
        let src = KafkaSourceConfig::new("b:9092", "g", &["t"]);
        src.validate().unwrap();
        let sink = |f: &dyn Fn(&mut KafkaSinkConfig)| {
            let mut c = KafkaSinkConfig::new("b:9092");
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(
            sink(&|c| c.partitions = i32::MAX).contains("partitions = 2147483647 is out of range")
        );
        assert!(sink(&|c| c.replication_factor = 0).contains("replication_factor"));
        assert!(
            sink(&|c| c.fence_session_timeout_ms = u64::MAX).contains("fence_session_timeout_ms")
        );
        for (key, wrong) in [
            ("stop_when_idle_ms", u64::MAX),
            ("wait_for_topics_ms", u64::MAX),
            ("drain_timeout_ms", u64::MAX),
        ] {
            let mut v = serde_json::to_value(&src).unwrap();
            v[key] = serde_json::json!(wrong);
            let c: KafkaSourceConfig = serde_json::from_value(v).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("{key} = {wrong} is out of range")),
                "{e}"
            );
        }
    }

    #[test]
    fn pattern_subscriptions_look_for_new_topics_every_few_seconds() {
        let refresh = |topics: &[&str]| {
            let c = KafkaSourceConfig {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            };
            c.client()
                .get("topic.metadata.refresh.interval.ms")
                .map(str::to_string)
        };
        assert_eq!(refresh(&["^shop\\..*"]).as_deref(), Some("5000"));
        assert_eq!(refresh(&["shop.orders"]), None);
    }

    #[test]
    fn topics_follow_the_pattern() {
        let c = KafkaSinkConfig::new("b:9092");
        assert_eq!(c.topic_for(Some("shop"), "orders"), "datatrace.shop.orders");
        assert_eq!(c.topic_for(None, "orders"), "datatrace.orders");
        let c = KafkaSinkConfig {
            topic: "cdc-{table}".into(),
            ..c
        };
        assert_eq!(c.topic_for(Some("shop"), "orders"), "cdc-orders");
    }

    #[test]
    fn refuses_bad_settings_naming_them() {
        let e = KafkaSinkConfig::default().validate().unwrap_err();
        assert!(e.to_string().contains("brokers"), "{e}");
        let e = KafkaSinkConfig {
            topic: "{prefix}.all".into(),
            ..KafkaSinkConfig::new("b:1")
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("{table}"), "{e}");
        let e = KafkaSourceConfig::new("b:1", "", &["t"])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        let mut c = KafkaSourceConfig::new("b:1", "g", &["t"]);
        c.start = "beginning".into();
        assert!(c.validate().unwrap_err().to_string().contains("start"));
    }
}

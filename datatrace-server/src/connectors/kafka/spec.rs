//! `type = "kafka"` endpoints: Debezium change events on Apache Kafka.
//!
//! ```toml
//! [source]                          # workers of one consumer group share the partitions
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! group = "shop-to-search"
//! topics = ["shop.inventory.orders", "^shop\\.inventory\\.line_.*"]   # ^: a regex
//! start = "earliest"                # a new group starts at: earliest | latest
//! bad_messages = "dead-letter"      # fail (default) | skip | dead-letter
//! dead_letter_topic = "shop-to-search.dlq"   # default: {group}.dlq
//!
//! [target]
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! topic_prefix = "shop"             # Debezium's topic.prefix
//! topic = "{prefix}.{db}.{table}"   # the default
//! partitions = 6                    # of created topics; changes spread over them by key
//! schemas = true                    # {"schema","payload"} wrapper (Kafka Connect's schemas.enable)
//! tombstones = true                 # a null value after each delete (compacted topics)
//! ```
//!
//! Both take `properties = { "security.protocol" = "SASL_SSL", ... }`: librdkafka settings
//! passed as they are.
//!
//! A Kafka data source of `datatrace serve` gives its connection as `url`, `username` and
//! `password` (the password stored encrypted); job files may use them too:
//!
//! ```toml
//! url = "kafka://broker1:9092,broker2:9092"   # the same as brokers = "broker1:9092,broker2:9092"
//! username = "app"                            # SASL: security.protocol = "SASL_PLAINTEXT",
//! password = "${KAFKA_PASSWORD}"              # sasl.mechanisms = "PLAIN" unless properties say otherwise
//! ```

use datatrace_kafka::{KafkaSinkConfig, KafkaSourceConfig};
use serde_json::{Map, Value};

use crate::job_file::error::{from_value, join, with_type_key, JobFileError};

/// `[source] type = "kafka"`.
pub type KafkaSourceSpec = KafkaSourceConfig;
/// `[target] type = "kafka"`.
pub type KafkaTargetSpec = KafkaSinkConfig;

/// Parses the settings of a Kafka source.
pub fn parse_source(
    file: &str,
    at: &str,
    mut rest: Map<String, Value>,
) -> Result<KafkaSourceSpec, JobFileError> {
    connection_keys(file, at, &mut rest)?;
    let spec: KafkaSourceSpec = from_value(file, at, Value::Object(rest)).map_err(with_type_key)?;
    spec.validate().map_err(|e| {
        JobFileError::new(file, &join(at, setting_of(&e.to_string())), e.to_string())
    })?;
    Ok(spec)
}

/// Parses the settings of a Kafka target.
pub fn parse_target(
    file: &str,
    at: &str,
    mut rest: Map<String, Value>,
) -> Result<KafkaTargetSpec, JobFileError> {
    connection_keys(file, at, &mut rest)?;
    let spec: KafkaTargetSpec = from_value(file, at, Value::Object(rest)).map_err(with_type_key)?;
    spec.validate().map_err(|e| {
        JobFileError::new(file, &join(at, setting_of(&e.to_string())), e.to_string())
    })?;
    Ok(spec)
}

/// The URL scheme of Kafka data sources.
pub const SCHEME: &str = "kafka://";

/// Turns a data source's connection keys into the connector's own: `url`
/// (`kafka://host:port[,host:port...]`) into `brokers`, `username` and `password` into SASL
/// settings in `properties` (`SASL_PLAINTEXT` and `PLAIN` unless `properties` name a protocol
/// and mechanism).
fn connection_keys(
    file: &str,
    at: &str,
    keys: &mut Map<String, Value>,
) -> Result<(), JobFileError> {
    let err = |key: &str, message: String| JobFileError::new(file, &join(at, key), message);
    if let Some(url) = keys.remove("url") {
        let Some(url) = url.as_str() else {
            return Err(err(
                "url",
                format!("expected a string like \"{SCHEME}host:9092\""),
            ));
        };
        if keys.contains_key("brokers") {
            return Err(err("url", "give either url or brokers, not both".into()));
        }
        let Some(rest) = url.trim().strip_prefix(SCHEME) else {
            return Err(err(
                "url",
                format!("expected {SCHEME}host:port[,host:port...], got {url:?}"),
            ));
        };
        let brokers: Vec<&str> = rest
            .split(',')
            .map(|b| b.trim().trim_start_matches(SCHEME).trim_end_matches('/'))
            .filter(|b| !b.is_empty())
            .collect();
        if brokers.is_empty() {
            return Err(err("url", format!("no broker in {url:?}")));
        }
        keys.insert("brokers".into(), Value::String(brokers.join(",")));
    }
    let username = keys.remove("username");
    let password = keys.remove("password");
    let Some(username) = username else {
        if password.is_some() {
            return Err(err(
                "username",
                "a password needs a username (the SASL user)".into(),
            ));
        }
        return Ok(());
    };
    let text = |v: Value, key: &str| match v {
        Value::String(s) => Ok(s),
        _ => Err(err(key, "expected a string".into())),
    };
    let username = text(username, "username")?;
    let properties = keys
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(properties) = properties else {
        return Err(err(
            "properties",
            "expected a table of librdkafka settings".into(),
        ));
    };
    if properties.contains_key("sasl.username") {
        return Err(err(
            "username",
            "give the SASL user either as username or as properties.\"sasl.username\", not both"
                .into(),
        ));
    }
    properties
        .entry("security.protocol")
        .or_insert_with(|| Value::String("SASL_PLAINTEXT".into()));
    properties
        .entry("sasl.mechanisms")
        .or_insert_with(|| Value::String("PLAIN".into()));
    properties.insert("sasl.username".into(), Value::String(username));
    if let Some(password) = password {
        properties.insert(
            "sasl.password".into(),
            Value::String(text(password, "password")?),
        );
    }
    Ok(())
}

/// The setting a validation message starts with (`brokers is empty: ...` -> `brokers`).
fn setting_of(message: &str) -> &str {
    let body = message
        .strip_prefix("invalid Kafka setting: ")
        .unwrap_or(message);
    body.split([' ', ':']).next().unwrap_or("")
}

/// One line for people, without secrets.
pub fn describe_source(s: &KafkaSourceSpec) -> String {
    format!(
        "kafka {}, group {}, topics {}",
        s.brokers,
        s.group,
        s.topics.join(", ")
    )
}

/// One line for people, without secrets.
pub fn describe_target(t: &KafkaTargetSpec) -> String {
    format!(
        "kafka {}, topics {} ({} partitions when created)",
        t.brokers,
        t.topic.replace("{prefix}", &t.topic_prefix),
        t.partitions,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_data_source_url_and_credentials_become_brokers_and_sasl() {
        let t = parse_target(
            "f",
            "target",
            keys(json!({"url": "kafka://b1:9092,kafka://b2:9093/", "username": "app", "password": "pw"})),
        )
        .unwrap();
        assert_eq!(t.brokers, "b1:9092,b2:9093");
        assert_eq!(t.properties["security.protocol"], "SASL_PLAINTEXT");
        assert_eq!(t.properties["sasl.mechanisms"], "PLAIN");
        assert_eq!(t.properties["sasl.username"], "app");
        assert_eq!(t.properties["sasl.password"], "pw");

        // a protocol and mechanism of the data source's options stay
        let s = parse_source(
            "f",
            "source",
            keys(json!({"url": "kafka://b1:9092", "username": "app", "password": "pw",
                        "properties": {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512"},
                        "group": "g", "topics": ["t"]})),
        )
        .unwrap();
        assert_eq!(s.brokers, "b1:9092");
        assert_eq!(s.properties["security.protocol"], "SASL_SSL");
        assert_eq!(s.properties["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(s.properties["sasl.password"], "pw");

        // without credentials: no SASL
        let t = parse_target("f", "target", keys(json!({"url": "kafka://b1:9092"}))).unwrap();
        assert!(t.properties.is_empty());
    }

    #[test]
    fn bad_connection_keys_are_named() {
        let e = parse_target("f", "target", keys(json!({"url": "http://b1:9092"}))).unwrap_err();
        assert_eq!(e.key, "target.url", "{e}");
        let e = parse_target(
            "f",
            "target",
            keys(json!({"url": "kafka://b1:9092", "brokers": "b1:9092"})),
        )
        .unwrap_err();
        assert_eq!(e.key, "target.url", "{e}");
        let e = parse_target(
            "f",
            "target",
            keys(json!({"url": "kafka://b1:9092", "password": "pw"})),
        )
        .unwrap_err();
        assert_eq!(e.key, "target.username", "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}

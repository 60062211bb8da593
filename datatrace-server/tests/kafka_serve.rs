//! `datatrace serve` with Kafka:
//! - a task reading a topic of 3 partitions (Debezium change events; a Kafka data source,
//!   the group and topics) shows each partition's end, the offset committed behind written records
//!   and the lag, in the API's units and as the metric `datatrace_partition_lag_messages`; the
//!   lag is seen above zero while the (rate-limited) task works through the backlog and at
//!   zero once everything is written;
//! - a Kafka cluster as a data source (its SASL password stored encrypted, never shown),
//!   tested and listing its topics, feeds tasks of the wizard's shape both ways: MySQL ->
//!   Kafka, then Kafka -> MySQL, and the second table equals the first.

#[path = "serve_common.rs"]
mod common;

use std::time::Duration;

use common::{request, wait_for, Server, TOKEN};
use datatrace_testkit::{mariadb, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

const EVENTS: i64 = 3000;

/// Creates `topic` with 3 partitions and writes `EVENTS` change events to it.
fn fill(brokers: &str, topic: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let created = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ));
    assert!(
        created.expect("create topic").iter().all(Result::is_ok),
        "topic created"
    );
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for id in 0..EVENTS {
        let key = json!({ "id": id }).to_string();
        let value = json!({
            "before": null,
            "after": {"id": id, "name": format!("row {id}")},
            "source": {"db": "shop", "table": "items"},
            "op": "c",
            "ts_ms": 0
        })
        .to_string();
        let partition = (id % 3) as i32;
        loop {
            match producer.send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(&value)
                    .partition(partition),
            ) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

fn partitions(s: &Server, id: i64) -> Vec<Value> {
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    units[0]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn kafka_serve_shows_consumer_lag_per_partition() {
    let kafka = datatrace_testkit::kafka();
    let topic = datatrace_testkit::unique_name("lagtopic");
    fill(&kafka.bootstrap(), &topic);

    let dir = common::workdir("kafka-lag");
    let s = Server::start(&dir);
    let events = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "events", "type": "kafka", "url": format!("kafka://{}", kafka.bootstrap())})),
    )["id"]
        .as_i64()
        .unwrap();
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({
            "name": "from kafka",
            "source": {"datasource": events,
                       "group": datatrace_testkit::unique_name("lag"), "topics": [topic]},
            "target": {"type": "discard"},
            "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 300}}
        })),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);

    // while the backlog drains: every partition shown, some still behind
    let mut behind = 0i64;
    wait_for(60, "the partitions' lag above zero", || {
        let p = partitions(&s, id);
        behind = p.iter().map(|p| p["lag"].as_i64().unwrap_or(0)).sum();
        p.len() == 3 && behind > 0
    });
    assert!(behind <= EVENTS, "lag {behind} of {EVENTS} events");

    // once written: each partition at its end, no lag
    let mut last = Vec::new();
    wait_for(120, "every event written and committed", || {
        last = partitions(&s, id);
        let ends: i64 = last.iter().map(|p| p["end"].as_i64().unwrap_or(0)).sum();
        let lag: i64 = last.iter().map(|p| p["lag"].as_i64().unwrap_or(-1)).sum();
        last.len() == 3 && ends == EVENTS && lag == 0
    });
    for (i, p) in last.iter().enumerate() {
        assert_eq!(p["topic"], topic.as_str(), "{p}");
        assert_eq!(p["partition"], i as i64, "{p}");
        assert_eq!(p["committed"], EVENTS / 3, "{p}");
    }
    let (st, m) = request(&s.addr, "GET", "/metrics", Some(TOKEN), None);
    assert_eq!(st, 200);
    for p in 0..3 {
        let line = format!(
            "datatrace_partition_lag_messages{{task=\"{id}\",unit=\"kafka\",topic=\"{topic}\",partition=\"{p}\"}} 0"
        );
        assert!(m.contains(&line), "{line} in\n{m}");
    }
}

/// A table with values at the edges of its types.
const ITEMS: &str =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64) CHARACTER SET utf8mb4, \
     price DECIMAL(30,10), qty INT NULL, flag TINYINT(1), seen DATETIME(6), raw VARBINARY(16))";

fn rows_of(db: &str) -> String {
    mariadb().exec(&format!(
        "SELECT id, name, price, qty, flag, seen, HEX(raw) FROM `{db}`.items ORDER BY id"
    ))
}

fn status(s: &Server, id: i64) -> String {
    s.ok("GET", &format!("/api/tasks/{id}"), None)["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn kafka_data_source_feeds_wizard_tasks_both_ways() {
    let kafka = datatrace_testkit::kafka();
    let m = mariadb();
    let src = m.create_database("kds_src");
    let dst = m.create_database("kds_dst");
    // MariaDB's sequence engine: 1200 rows in one statement
    m.exec(&format!(
        "USE `{src}`; {ITEMS}; INSERT INTO items SELECT seq, CONCAT('item ', seq, ' é ✓ \\'q\\''), \
         IF(seq % 2 = 0, -1, 1) * (seq + 0.0000000001), IF(seq % 7 = 0, NULL, 2147483647 - seq), seq % 2, \
         TIMESTAMPADD(MICROSECOND, seq, '9999-12-31 23:59:59'), UNHEX(CONCAT('00FF', LPAD(HEX(seq), 4, '0'))) \
         FROM seq_1_to_1200"
    ));
    m.exec(&format!("USE `{dst}`; {ITEMS};"));

    let dir = common::workdir("kafka-ds");
    let s = Server::start(&dir);
    let url = format!("kafka://{}", kafka.bootstrap());

    // the connector is offered as a data source, with the keys a task gives
    let connectors = s.ok("GET", "/api/connectors", None);
    let k = connectors
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "kafka")
        .expect("kafka offered")
        .clone();
    assert_eq!(k["data_source"], true, "{k}");
    assert_eq!(k["task_fields"][0]["key"], "group", "{k}");
    assert_eq!(k["task_fields"][1]["key"], "topic_prefix", "{k}");

    // a SASL user's password is stored encrypted and never shown
    let password = "Kafka-Sasl-Secret-9913";
    let sasl = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "events-sasl", "type": "kafka", "url": url, "username": "app", "password": password})),
    );
    assert_eq!(sasl["has_password"], true, "{sasl}");
    let listed = s.ok("GET", "/api/datasources", None).to_string();
    assert!(!listed.contains(password), "{listed}");
    // a secret among the options (stored in clear) is refused, naming it
    let (st, e) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "events-bad", "type": "kafka", "url": url,
                     "options": {"properties": {"sasl.password": "x"}}})),
    );
    assert_eq!(st, 400, "{e}");
    assert!(
        e.to_string().contains("options.properties.sasl.password"),
        "{e}"
    );
    let (st, e) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "events-bad", "type": "kafka", "url": "http://127.0.0.1:9092"})),
    );
    assert_eq!(st, 400, "{e}");
    assert!(e.to_string().contains("kafka://"), "{e}");

    let events = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "events", "type": "kafka", "url": url})),
    )["id"]
        .as_i64()
        .unwrap();
    let tested = s.ok("POST", &format!("/api/datasources/{events}/test"), None);
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["flavor"], "kafka", "{tested}");
    let shop = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "shop", "type": "mysql", "url": m.url_for(&src)})),
    )["id"]
        .as_i64()
        .unwrap();
    let copy = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "copy", "type": "mysql", "url": m.url_for(&dst)})),
    )["id"]
        .as_i64()
        .unwrap();

    // MySQL -> Kafka, as the wizard builds it (no target naming: the topic prefix)
    let prefix = unique_name("wz");
    let settings = json!({"batch_size": 500, "concurrency": 2, "error_policy": "fail"});
    let out = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "shop-to-events", "mode": "full",
            "source": {"datasource": shop, "tables": [format!("{src}.items")]},
            "target": {"datasource": events, "topic_prefix": prefix},
            "settings": settings})),
    )["id"]
        .as_i64()
        .unwrap();
    s.ok("POST", &format!("/api/tasks/{out}/start"), None);
    wait_for(180, "the copy into Kafka done", || {
        let st = status(&s, out);
        assert!(
            st != "failed",
            "{}",
            s.ok("GET", &format!("/api/tasks/{out}"), None)
        );
        st == "done"
    });
    let topic = format!("{prefix}.{src}.items");
    // the topic is one of the data source's units, for the wizard's second step
    let units = s.ok("GET", &format!("/api/datasources/{events}/units"), None);
    assert!(
        units
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == topic.as_str()),
        "{topic} in {units}"
    );

    // Kafka -> MySQL, as the wizard builds it (the consumer group a task field)
    let back = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "events-to-copy", "mode": "full",
            "source": {"datasource": events, "topics": [topic], "group": unique_name("events-to-copy")},
            "target": {"datasource": copy, "table": "{table}"},
            "settings": settings})),
    )["id"]
        .as_i64()
        .unwrap();
    s.ok("POST", &format!("/api/tasks/{back}/start"), None);
    let expected = rows_of(&src);
    assert_eq!(expected.lines().count(), 1200);
    wait_for(180, "the copy out of Kafka equal to the source", || {
        assert!(
            status(&s, back) != "failed",
            "{}",
            s.ok("GET", &format!("/api/tasks/{back}"), None)
        );
        rows_of(&dst) == expected
    });
    // the task page's lag: every partition of the topic at its end
    wait_for(60, "no lag on any partition", || {
        let p = partitions(&s, back);
        p.len() == 6 && p.iter().all(|p| p["lag"] == 0)
    });
    s.ok("POST", &format!("/api/tasks/{back}/stop"), None);
    wait_for(60, "the stream task stopped", || {
        status(&s, back) == "stopped"
    });
    assert_eq!(rows_of(&dst), expected);
    assert!(
        !s.output().contains(password),
        "the SASL password was printed"
    );
}

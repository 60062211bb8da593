//! Every job-file field fed wrong values (`cargo test wrong_values`): no panic anywhere, in
//! parsing, planning (which connects and discovers) or a run, whatever the value: wrong types,
//! empty strings, missing files, zero, negative, the largest integers, huge floats. The jobs
//! cover every connector section: MySQL -> Elasticsearch (tables, and documents),
//! Elasticsearch -> MySQL, MySQL -> Kafka and Kafka -> discard, against the real servers of
//! the test run. Every number out of its range is refused when the file is parsed, naming
//! the key and the range. A value the file accepts must still end in a clear error
//! or a run, never in a panic or an abort (no allocation sized by a configured number).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::CancellationToken;
use datatrace_server::job_file::fields::struct_fields;
use datatrace_server::job_file::{JobFile, Settings};
use datatrace_server::plan::{file_store, plan};
use datatrace_testkit::{engine, mariadb, unique_name};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The values every field gets, one at a time.
fn wrong_values() -> Vec<Value> {
    vec![
        json!("x"),
        json!(""),
        json!("/nonexistent/datatrace/file"),
        json!(-1),
        json!(0),
        json!(u64::MAX),
        json!(1e300),
        json!(true),
        json!([]),
        json!([1]),
        json!({}),
        json!({"x": 1}),
    ]
}

/// The key paths of a section: those in `base` and every field of the structs named.
fn keys(base: &Value, at: &[&str], structs: &[&[&'static str]]) -> Vec<Vec<String>> {
    let mut out = BTreeSet::new();
    let mut node = base;
    for k in at {
        node = match (node, k.parse::<usize>()) {
            (Value::Array(a), Ok(i)) => &a[i],
            _ => &node[*k],
        };
    }
    if let Some(map) = node.as_object() {
        out.extend(map.keys().cloned());
    }
    for fields in structs {
        out.extend(fields.iter().map(|f| f.to_string()));
    }
    out.remove("type");
    out.into_iter()
        .map(|k| {
            let mut path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
            path.push(k);
            path
        })
        .collect()
}

fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct_fields::<T>()
}

fn set(job: &mut Value, path: &[String], v: Value) {
    let mut node = job;
    for k in &path[..path.len() - 1] {
        if let (true, Ok(i)) = (node.is_array(), k.parse::<usize>()) {
            node = &mut node[i];
            continue;
        }
        if !node[k.as_str()].is_object() && !node[k.as_str()].is_array() {
            node[k.as_str()] = json!({});
        }
        node = &mut node[k.as_str()];
    }
    node[path[path.len() - 1].as_str()] = v;
}

/// Parses, plans and (when that works) runs `job` for a moment; `Err` with a description
/// when anything panicked.
async fn try_case(job: Value, dir: &Path) -> Result<(), String> {
    let text = job.to_string();
    let dir = dir.to_path_buf();
    let task = tokio::spawn(async move {
        let parsed = JobFile::parse("job.json", &text, &dir, &|_| None);
        let Ok(job) = parsed else {
            return String::new();
        };
        let planned =
            tokio::time::timeout(Duration::from_secs(20), plan(&job, file_store(&job))).await;
        let Ok(Ok(planned)) = planned else {
            return String::new();
        };
        let cancel = CancellationToken::new();
        let stopper = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                cancel.cancel();
            })
        };
        let run = planned.into_job().cancel_token(cancel).run();
        let report = tokio::time::timeout(Duration::from_secs(20), run).await;
        stopper.abort();
        format!("{report:?}")
    });
    match task.await {
        Err(e) if e.is_panic() => Err("panicked".into()),
        Err(e) => Err(format!("task failed: {e}")),
        Ok(report) if report.contains("anicked") => Err(format!("a task panicked: {report}")),
        Ok(_) => Ok(()),
    }
}

/// Feeds every key of `sections` of `base` every wrong value; returns the panics.
async fn feed(base: Value, sections: Vec<Vec<Vec<String>>>, dir: &Path) -> Vec<String> {
    // The base itself must be a good job, or every case would stop at the parser.
    if let Err(e) = JobFile::parse("job.json", &base.to_string(), dir, &|_| None) {
        panic!("the base job does not parse: {e}");
    }
    let mut cases = Vec::new();
    for section in sections {
        for path in section {
            for v in wrong_values() {
                let mut job = base.clone();
                // Each case its own checkpoints: a finished case must not make the next one
                // a no-op.
                let n = cases.len();
                job["checkpoints"] = json!({"dir": dir.join(format!("cp-{n}"))});
                set(&mut job, &path, v.clone());
                cases.push((format!("{} = {v}", path.join(".")), job));
            }
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(3));
    let mut handles = Vec::new();
    for (what, job) in cases {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let dir = dir.to_path_buf();
        handles.push(tokio::spawn(async move {
            let r = try_case(job, &dir).await;
            drop(permit);
            r.err().map(|e| format!("{what}: {e}"))
        }));
    }
    let mut panics = Vec::new();
    for h in handles {
        if let Some(p) = h.await.unwrap() {
            panics.push(p);
        }
    }
    panics
}

fn workdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-wrong-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn settings_keys(base: &Value) -> Vec<Vec<String>> {
    let mut k = keys(base, &["settings"], &[fields::<Settings>()]);
    k.extend(keys(
        base,
        &["settings", "retry"],
        &[&["max_attempts", "initial_backoff", "max_backoff"]],
    ));
    k.extend(keys(
        base,
        &["settings", "rate_limit"],
        &[&["records_per_sec", "bytes_per_sec"]],
    ));
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_values_in_a_mysql_to_elasticsearch_job_never_panic() {
    let db = mariadb().create_database("wv");
    mariadb().exec(&format!(
        "USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_10;"
    ));
    let dir = workdir("m2e");
    let base = json!({
        "name": "wrong-values",
        "source": {
            "type": "mysql", "url": mariadb().url_for(&db), "tables": ["t"],
            "chunk_rows": 5, "mode": "full",
            "cdc": {"server_id": 7801, "heartbeat_secs": 1},
            "reconnect": {"max_attempts": 2, "initial_backoff": 10, "max_backoff": 20},
        },
        "target": {
            "type": "elasticsearch", "url": engine().url(),
            "index": format!("{}-{{table}}", unique_name("wv")),
            "tls": {"verify": true}, "retry": {"max_attempts": 2},
        },
        "transforms": [{"type": "rename", "fields": {"v": "w"}}],
        "settings": {"batch_size": 5, "retry": {"max_attempts": 2}, "rate_limit": {}},
        "checkpoints": {"dir": dir.join("cp")},
        "dead_letters": {"path": dir.join("dlq.ndjson")},
    });
    let mut sections = vec![
        keys(&base, &[], &[&["name", "description"]]),
        keys(
            &base,
            &["source"],
            &[
                fields::<datatrace_mysql::ConnectionConfig>(),
                fields::<datatrace_mysql::SourceOptions>(),
            ],
        ),
        keys(
            &base,
            &["source", "cdc"],
            &[fields::<datatrace_mysql::binlog::CdcOptions>()],
        ),
        keys(&base, &["source", "reconnect"], &[]),
        keys(
            &base,
            &["target"],
            &[
                fields::<datatrace_es::ConnectionConfig>(),
                fields::<datatrace_es::SinkConfig>(),
            ],
        ),
        keys(
            &base,
            &["target", "tls"],
            &[fields::<datatrace_es::TlsConfig>()],
        ),
        keys(&base, &["target", "retry"], &[]),
        keys(&base, &["transforms"], &[]),
        keys(&base, &["checkpoints"], &[]),
        keys(&base, &["dead_letters"], &[]),
    ];
    sections.push(settings_keys(&base));
    let panics = feed(base, sections, &dir).await;
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_values_in_an_elasticsearch_to_mysql_job_never_panic() {
    let index = unique_name("wv-src");
    for i in 1..=10 {
        let r = engine().request(
            "PUT",
            &format!("/{index}/_doc/{i}"),
            Some(&json!({"id": i, "v": format!("v{i}")}).to_string()),
        );
        assert!(r.status < 300, "{}", r.body);
    }
    engine().refresh(&index);
    let db = mariadb().create_database("wv_dst");
    let dir = workdir("e2m");
    let base = json!({
        "name": "wrong-values-es",
        "source": {
            "type": "elasticsearch", "url": engine().url(), "indices": [index],
            "page_size": 5, "retry": {"max_attempts": 2}, "tls": {"verify": true},
        },
        "target": {
            "type": "mysql", "url": mariadb().url_for(&db), "table": "{table}",
            "max_statement_bytes": 100000,
        },
        "settings": {"batch_size": 5},
        "checkpoints": {"dir": dir.join("cp")},
    });
    let mut sections = vec![
        keys(
            &base,
            &["source"],
            &[
                fields::<datatrace_es::ConnectionConfig>(),
                fields::<datatrace_es::SourceConfig>(),
                &["indices", "exclude"],
            ],
        ),
        keys(
            &base,
            &["source", "tls"],
            &[fields::<datatrace_es::TlsConfig>()],
        ),
        keys(&base, &["source", "retry"], &[]),
        keys(
            &base,
            &["target"],
            &[
                fields::<datatrace_mysql::ConnectionConfig>(),
                fields::<datatrace_mysql::SinkOptions>(),
                &["schema_changes", "table_changes"],
            ],
        ),
    ];
    sections.push(settings_keys(&base));
    let panics = feed(base, sections, &dir).await;
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every numeric connector setting above its upper bound is refused by the parser (the job
/// file's, which the API's task and data-source checks use too), naming the key and range.
#[test]
fn out_of_range_numbers_are_refused_when_the_job_file_is_parsed() {
    let mysql = json!({"type": "mysql", "url": "mysql://u@127.0.0.1:9/db", "tables": ["t"]});
    let docs = json!({"type": "mysql", "url": "mysql://u@127.0.0.1:9/db",
        "documents": [{"name": "d", "table": "t"}], "mode": "cdc", "cdc": {"server_id": 9}});
    let mysql_dst = json!({"type": "mysql", "url": "mysql://u@127.0.0.1:9/db"});
    let es = json!({"type": "elasticsearch", "url": "http://127.0.0.1:9"});
    let es_src = json!({"type": "elasticsearch", "url": "http://127.0.0.1:9", "indices": ["i"]});
    let kafka_dst = json!({"type": "kafka", "brokers": "127.0.0.1:9"});
    let kafka_src =
        json!({"type": "kafka", "brokers": "127.0.0.1:9", "group": "g", "topics": ["t"]});
    let generator = json!({"type": "generator"});
    let discard = json!({"type": "discard"});
    let big = json!(1_000_000_000_000_000u64);
    let cases: Vec<(&Value, &Value, &str, Value)> = vec![
        (&mysql, &es, "source.max_connections", big.clone()),
        (&mysql, &es, "source.connect_timeout_secs", big.clone()),
        (&mysql, &es, "source.page_rows", big.clone()),
        (&mysql, &es, "source.chunk_rows", json!(u64::MAX)),
        (&mysql, &es, "source.checkpoint_rows", big.clone()),
        (&mysql, &es, "source.checkpoint_interval_ms", big.clone()),
        (&mysql, &es, "source.snapshot_connections", big.clone()),
        (&docs, &es, "source.cdc.heartbeat_secs", big.clone()),
        (&docs, &es, "source.cdc.retention_check_secs", big.clone()),
        (&docs, &es, "source.cdc.retention_warn_secs", big.clone()),
        (&docs, &es, "source.documents.0.batch_size", big.clone()),
        (&docs, &es, "source.documents.0.window_ms", json!(u64::MAX)),
        (
            &docs,
            &es,
            "source.documents.0.rebuild_concurrency",
            big.clone(),
        ),
        (
            &docs,
            &es,
            "source.documents.0.max_fan_out",
            json!(u64::MAX),
        ),
        (
            &es_src,
            &mysql_dst,
            "target.max_statement_bytes",
            big.clone(),
        ),
        (&es_src, &mysql_dst, "target.max_connections", big.clone()),
        (&es_src, &mysql_dst, "source.page_size", big.clone()),
        (&es_src, &mysql_dst, "source.slices", big.clone()),
        (&mysql, &es, "target.max_docs", big.clone()),
        (&mysql, &es, "target.max_bytes", big.clone()),
        (&mysql, &es, "target.max_document_bytes", big.clone()),
        (&mysql, &es, "target.max_in_flight", big.clone()),
        (&mysql, &es, "target.timeout_ms", json!(u64::MAX)),
        (&mysql, &es, "target.settings.shards", json!(u32::MAX)),
        (&mysql, &kafka_dst, "target.partitions", json!(i32::MAX)),
        (
            &mysql,
            &kafka_dst,
            "target.replication_factor",
            json!(i32::MAX),
        ),
        (
            &mysql,
            &kafka_dst,
            "target.fence_session_timeout_ms",
            big.clone(),
        ),
        (
            &kafka_src,
            &discard,
            "source.stop_when_idle_ms",
            json!(u64::MAX),
        ),
        (
            &kafka_src,
            &discard,
            "source.wait_for_topics_ms",
            json!(u64::MAX),
        ),
        (&kafka_src, &discard, "source.drain_timeout_ms", big.clone()),
        (&generator, &discard, "source.columns", big.clone()),
        (&generator, &discard, "source.width", big.clone()),
        (&generator, &discard, "settings.batch_size", big.clone()),
    ];
    let mut wrong = Vec::new();
    for (source, target, key, value) in cases {
        let mut job = json!({"name": "n", "source": source, "target": target});
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set(&mut job, &path, value.clone());
        let setting = path.last().unwrap();
        match JobFile::parse("job.json", &job.to_string(), Path::new("/tmp"), &|_| None) {
            Ok(_) => wrong.push(format!("{key} = {value}: accepted")),
            Err(e) => {
                let e = e.to_string();
                let ranged = ["out of range", "between", "at most"]
                    .iter()
                    .any(|w| e.contains(w));
                if !e.contains(setting.as_str()) || !ranged {
                    wrong.push(format!("{key} = {value}: {e}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_values_in_a_denormal_documents_job_never_panic() {
    let db = mariadb().create_database("wvd");
    mariadb().exec(&format!(
        "USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE c (id INT PRIMARY KEY, t_id INT, w VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_10;
         INSERT INTO c SELECT seq, seq, CONCAT('w', seq) FROM seq_1_to_10;"
    ));
    let dir = workdir("docs");
    let base = json!({
        "name": "wrong-values-docs",
        "source": {
            "type": "mysql", "url": mariadb().url_for(&db), "mode": "snapshot+cdc",
            "cdc": {"server_id": 7802, "heartbeat_secs": 1},
            "documents": [{
                "name": "d", "table": "t", "batch_size": 5, "window_ms": 50,
                "relations": [{"field": "cs", "table": "c", "kind": "one_to_many",
                               "foreign_key": ["t_id"]}],
            }],
        },
        "target": {"type": "elasticsearch", "url": engine().url(),
                   "index": format!("{}-{{table}}", unique_name("wvd"))},
        "settings": {"batch_size": 5},
    });
    let sections = vec![keys(
        &base,
        &["source", "documents", "0"],
        &[fields::<datatrace_denormal::DocumentSpec>()],
    )];
    let panics = feed(base, sections, &dir).await;
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_values_in_kafka_jobs_never_panic() {
    let kafka = datatrace_testkit::kafka();
    let db = mariadb().create_database("wvk");
    mariadb().exec(&format!(
        "USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_10;"
    ));
    let dir = workdir("kafka");
    let prefix = unique_name("wvk");
    let to_kafka = json!({
        "name": "wrong-values-to-kafka",
        "source": {"type": "mysql", "url": mariadb().url_for(&db), "tables": ["t"]},
        "target": {"type": "kafka", "brokers": kafka.bootstrap(), "topic_prefix": prefix,
                   "partitions": 2},
        "settings": {"batch_size": 5},
    });
    let target = keys(
        &to_kafka,
        &["target"],
        &[fields::<datatrace_kafka::KafkaSinkConfig>()],
    );
    let mut panics = feed(to_kafka, vec![target], &dir).await;
    let from_kafka = json!({
        "name": "wrong-values-from-kafka",
        "source": {"type": "kafka", "brokers": kafka.bootstrap(), "group": format!("{prefix}-g"),
                   "topics": [format!("{prefix}.{db}.t")], "stop_when_idle_ms": 500,
                   "wait_for_topics_ms": 1000},
        "target": {"type": "discard"},
    });
    let source = keys(
        &from_kafka,
        &["source"],
        &[fields::<datatrace_kafka::KafkaSourceConfig>()],
    );
    panics.extend(feed(from_kafka, vec![source], &dir).await);
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

//! Runs every example (`examples/*.rs`, included as modules) against the testkit's MariaDB
//! and osmem-server, with the settings an example reads from its environment pointed at them
//! and unique database / index names, and checks the target afterwards: counts, and a
//! sample row or document equal to its source.

use std::collections::HashMap;

use datatrace::{Emitted, Emitter, Part, Position, Source, Value};
use datatrace_testkit::{engine, mariadb, unique_name};
use serde_json::{json, Value as Json};

#[allow(dead_code)]
#[path = "../examples/mysql_to_es.rs"]
mod mysql_to_es;

#[allow(dead_code)]
#[path = "../examples/mysql_to_mysql.rs"]
mod mysql_to_mysql;

#[allow(dead_code)]
#[path = "../examples/es_to_mysql.rs"]
mod es_to_mysql;

#[allow(dead_code)]
#[path = "../examples/es_to_es.rs"]
mod es_to_es;

#[allow(dead_code)]
#[path = "../examples/custom_connector.rs"]
mod custom_connector;

#[allow(dead_code)]
#[path = "../examples/denormalized.rs"]
mod denormalized;

#[allow(dead_code)]
#[path = "../examples/cdc_mysql_to_es.rs"]
mod cdc_mysql_to_es;

/// An environment lookup over fixed pairs (tests run in parallel: no process env changes).
fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| map.get(k).cloned()
}

fn es_count(index: &str) -> u64 {
    let r = engine().request("POST", &format!("/{index}/_refresh"), None);
    assert!(r.status < 300, "refresh {index}: {} {}", r.status, r.body);
    let r = engine().request("GET", &format!("/{index}/_count"), None);
    assert_eq!(r.status, 200, "count {index}: {}", r.body);
    r.json()["count"].as_u64().expect("count")
}

fn es_source(index: &str, id: &str) -> Json {
    let r = engine().request("GET", &format!("/{index}/_doc/{id}"), None);
    assert_eq!(r.status, 200, "get {index}/{id}: {}", r.body);
    r.json()["_source"].clone()
}

/// The fields of one row, as the `mariadb` client prints them (tab-separated).
fn row(sql: &str) -> Vec<String> {
    let out = mariadb().exec(sql);
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no row: {sql}"));
    line.split('\t').map(str::to_string).collect()
}

/// An index with an explicit mapping and `n` documents (ids 1..=n), refreshed.
fn seed_index(index: &str, n: u64) {
    let mapping = json!({"mappings": {"properties": {
        "name": {"type": "keyword"},
        "price": {"type": "double"},
        "qty": {"type": "long"},
        "active": {"type": "boolean"},
        "added": {"type": "date"},
        "attrs": {"type": "object"}
    }}});
    let r = engine().request("PUT", &format!("/{index}"), Some(&mapping.to_string()));
    assert!(r.status < 300, "create {index}: {}", r.body);
    let mut bulk = String::new();
    for i in 1..=n {
        bulk.push_str(&json!({"index": {"_index": index, "_id": i.to_string()}}).to_string());
        bulk.push('\n');
        let doc = json!({
            "name": format!("Gerät №{i} 🎉"),
            "price": i as f64 * 0.25,
            "qty": i * 3,
            "active": i % 2 == 0,
            "added": format!("2024-03-{:02}T10:00:00Z", i % 28 + 1),
            "attrs": {"color": if i % 3 == 0 { "red" } else { "blue" }, "size": i % 5}
        });
        bulk.push_str(&doc.to_string());
        bulk.push('\n');
    }
    let r = engine().request("POST", "/_bulk?refresh=true", Some(&bulk));
    assert_eq!(r.status, 200, "bulk: {}", r.body);
    assert_eq!(r.json()["errors"], json!(false), "bulk: {}", r.body);
}

/// A database with two tables of the common MySQL types (JSON stored compact with sorted
/// keys, the form the MySQL sink writes, so that checksums compare).
fn seed_shop(db: &str) {
    mariadb().exec(&format!(
        "USE `{db}`;
         CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL,
           email VARCHAR(128), balance DECIMAL(10,2), created DATETIME, vip BOOLEAN,
           tier ENUM('free','pro','team'), prefs JSON, note TEXT) DEFAULT CHARSET=utf8mb4;
         INSERT INTO customers SELECT seq, CONCAT('Zoë Ünal ', seq), CONCAT('c', seq, '@example.com'),
           seq * 1.25, '2024-01-01' + INTERVAL seq MINUTE, seq % 2,
           ELT(seq % 3 + 1, 'free', 'pro', 'team'), JSON_COMPACT(JSON_OBJECT('lang', 'de', 'n', seq)),
           IF(seq % 10 = 0, NULL, REPEAT('ok ', seq % 7)) FROM seq_1_to_500;
         CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL,
           total DECIMAL(12,2), placed TIMESTAMP NULL, status ENUM('new','paid','shipped'));
         INSERT INTO orders SELECT seq, seq % 500 + 1, seq * 9.99, '2024-02-01' + INTERVAL seq HOUR,
           ELT(seq % 3 + 1, 'new', 'paid', 'shipped') FROM seq_1_to_300;"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_es_copies_every_table() {
    let db = mariadb().create_database("ex_m2e");
    seed_shop(&db);
    let prefix = unique_name("ex_m2e");
    let cfg = mysql_to_es::Config::from_lookup(env(&[
        ("MYSQL_URL", mariadb().url()),
        ("MYSQL_DB", db.clone()),
        ("ES_URL", engine().url()),
        ("ES_INDEX", format!("{prefix}-{{table}}")),
    ]));
    let report = mysql_to_es::run(&cfg).await.expect("mysql_to_es");
    mysql_to_es::print_report(&report);
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.written(), 800);
    assert_eq!(es_count(&format!("{prefix}-customers")), 500);
    assert_eq!(es_count(&format!("{prefix}-orders")), 300);

    let src = row(&format!(
        "SELECT name, email, balance, DATE_FORMAT(created, '%Y-%m-%dT%H:%i:%s'), vip, tier, note
         FROM `{db}`.customers WHERE id = 42"
    ));
    let doc = es_source(&format!("{prefix}-customers"), "42");
    assert_eq!(doc["id"], json!(42));
    assert_eq!(doc["name"].as_str(), Some(src[0].as_str()));
    assert_eq!(doc["email"].as_str(), Some(src[1].as_str()));
    assert_eq!(doc["balance"].as_f64(), src[2].parse::<f64>().ok()); // 52.50
    assert!(
        doc["created"].as_str().unwrap_or("").starts_with(&src[3]),
        "{doc}"
    );
    assert_eq!(doc["vip"], json!(src[4] == "1"));
    assert_eq!(doc["tier"].as_str(), Some(src[5].as_str()));
    assert_eq!(doc["note"].as_str(), Some(src[6].as_str()));
    assert_eq!(doc["prefs"], json!({"lang": "de", "n": 42}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_mysql_copies_exactly() {
    let db = mariadb().create_database("ex_m2m");
    seed_shop(&db);
    let target = unique_name("ex_m2m_copy"); // created by the example
    let cfg = mysql_to_mysql::Config::from_lookup(env(&[
        ("MYSQL_URL", mariadb().url()),
        ("MYSQL_DB", db.clone()),
        ("TARGET_DB", target.clone()),
    ]));
    assert_eq!(
        cfg.target_url,
        mariadb().url(),
        "TARGET_MYSQL_URL defaults to MYSQL_URL"
    );
    for _ in 0..2 {
        // The second run upserts the same rows: nothing changes.
        let report = mysql_to_mysql::run(&cfg).await.expect("mysql_to_mysql");
        mysql_to_mysql::print_report(&report);
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.written(), 800);
    }
    for (table, rows) in [("customers", "500"), ("orders", "300")] {
        let count = mariadb().exec(&format!("SELECT COUNT(*) FROM `{target}`.{table}"));
        assert_eq!(count.trim(), rows, "{table}");
        let sum = |d: &str| row(&format!("CHECKSUM TABLE `{d}`.{table}"))[1].clone();
        assert_eq!(sum(&db), sum(&target), "{table} differs");
    }
    let sample = "SELECT * FROM `{d}`.customers WHERE id = 7";
    assert_eq!(
        row(&sample.replace("{d}", &db)),
        row(&sample.replace("{d}", &target))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es_to_mysql_creates_tables_from_mappings() {
    let index = unique_name("ex-e2m");
    seed_index(&index, 250);
    let target = unique_name("ex_e2m_db");
    let cfg = es_to_mysql::Config::from_lookup(env(&[
        ("ES_URL", engine().url()),
        ("ES_INDICES", index.clone()),
        ("MYSQL_URL", mariadb().url()),
        ("TARGET_DB", target.clone()),
    ]));
    let report = es_to_mysql::run(&cfg).await.expect("es_to_mysql");
    es_to_mysql::print_report(&report);
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.written(), 250);
    let table = index.replace(['-', '.'], "_");
    let count = mariadb().exec(&format!("SELECT COUNT(*) FROM `{target}`.`{table}`"));
    assert_eq!(count.trim(), "250");
    let doc = es_source(&index, "12");
    let r = row(&format!(
        "SELECT name, price, qty, active, JSON_EXTRACT(attrs, '$.color'), JSON_EXTRACT(attrs, '$.size')
         FROM `{target}`.`{table}` WHERE `_id` = '12'"
    ));
    assert_eq!(doc["name"].as_str(), Some(r[0].as_str()));
    assert_eq!(doc["price"].as_f64(), r[1].parse::<f64>().ok());
    assert_eq!(doc["qty"].to_string(), r[2]);
    assert_eq!(r[3], "1"); // 12 is even
    assert_eq!(doc["attrs"]["color"].to_string(), r[4]);
    assert_eq!(doc["attrs"]["size"].to_string(), r[5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es_to_es_copies_documents_as_they_are() {
    let index = unique_name("ex-e2e");
    seed_index(&index, 300);
    let cfg = es_to_es::Config::from_lookup(env(&[
        ("ES_URL", engine().url()),
        ("ES_INDICES", index.clone()),
    ]));
    assert_eq!(
        cfg.target_url,
        engine().url(),
        "TARGET_ES_URL defaults to ES_URL"
    );
    assert_eq!(cfg.target_index, "{table}-copy");
    let report = es_to_es::run(&cfg).await.expect("es_to_es");
    es_to_es::print_report(&report);
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.written(), 300);
    let copy = format!("{index}-copy");
    assert_eq!(es_count(&copy), 300);
    for id in ["1", "150", "300"] {
        assert_eq!(es_source(&index, id), es_source(&copy, id), "document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_csv_source_feeds_the_es_sink() {
    let index = unique_name("ex-csv");
    let cfg = custom_connector::Config::from_lookup(env(&[
        ("ES_URL", engine().url()),
        ("ES_INDEX", index.clone()),
    ]));
    assert!(cfg.csv_file.ends_with("examples/data/products.csv"));
    let report = custom_connector::run(&cfg).await.expect("custom_connector");
    assert_eq!(
        (report.read, report.written, report.rejected),
        (120, 120, 0)
    );
    assert_eq!(es_count(&index), 120);
    // Line 3 of the file: 2,SKU-00002,"Teapot, cast iron",17.81,37,4.439,true,"Hand-made, dishwasher safe"
    let doc = es_source(&index, "2");
    assert_eq!(
        doc,
        json!({"id": 2, "sku": "SKU-00002", "name": "Teapot, cast iron", "price": 17.81,
               "stock": 37, "weight_kg": 4.439, "active": true,
               "description": "Hand-made, dishwasher safe"})
    );
    let text = std::fs::read_to_string(&cfg.csv_file).expect("csv");
    let quoted = text
        .lines()
        .position(|l| l.contains("\"\"classic\"\""))
        .expect("a quoted line");
    let doc = es_source(&index, &quoted.to_string()); // line n + 1 holds id n
    assert_eq!(doc["description"], json!("The \"classic\" one"));
}

#[tokio::test]
async fn csv_source_resumes_after_its_checkpoint_and_names_bad_lines() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/products.csv");
    let source = custom_connector::CsvSource::open(path).await.expect("open");
    let schema = source.schema().await.expect("schema").expect("a schema");
    assert_eq!(schema.primary_key_names(), vec!["id"]);
    // Resume after line 100 (id 99): ids 100..=120 follow, then the final checkpoint.
    let (mut out, mut rx) = Emitter::for_test(1000, 64);
    let from = Some(Position::new(json!(100)));
    let read = tokio::spawn(async move {
        let r = source.read(&Part::whole(), from, &mut out).await;
        drop(out);
        r
    });
    let (mut ids, mut last) = (Vec::new(), None);
    while let Some(item) = rx.recv().await {
        match item {
            Emitted::Records(rs) => ids.extend(rs.iter().map(|r| r.values[0].clone())),
            Emitted::Checkpoint(p) => last = Some(p.state),
            other => panic!("a CSV file has no table changes: {other:?}"),
        }
    }
    read.await.expect("join").expect("read");
    assert_eq!(ids, (100..=120).map(Value::Int).collect::<Vec<_>>());
    assert_eq!(last, Some(json!(121)));

    let dir = std::env::temp_dir().join(unique_name("csv"));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id:int,qty:int\n1,2\n2,many\n").expect("write");
    let source = custom_connector::CsvSource::open(&bad).await.expect("open");
    let (mut out, _rx) = Emitter::for_test(1000, 64);
    let err = source
        .read(&Part::whole(), None, &mut out)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad.csv:3") && msg.contains("column qty"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The quickstart shop's tables that the `denormalized` example reads, with tags.
fn seed_documents_shop(db: &str) {
    mariadb().exec(&format!(
        "USE `{db}`;
         CREATE TABLE customers (id INT UNSIGNED PRIMARY KEY, name VARCHAR(100) NOT NULL, country CHAR(2) NOT NULL);
         CREATE TABLE products (id INT UNSIGNED PRIMARY KEY, sku VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL,
           category ENUM('coffee', 'tea', 'gifts') NOT NULL);
         CREATE TABLE orders (id INT UNSIGNED PRIMARY KEY, customer_id INT UNSIGNED NOT NULL, status VARCHAR(16) NOT NULL);
         CREATE TABLE order_items (order_id INT UNSIGNED NOT NULL, line_no TINYINT UNSIGNED NOT NULL,
           product_id INT UNSIGNED NOT NULL, quantity SMALLINT NOT NULL, unit_price DECIMAL(10,2) NOT NULL,
           discount DECIMAL(4,2) NOT NULL, PRIMARY KEY (order_id, line_no), KEY (product_id));
         CREATE TABLE tags (id INT UNSIGNED PRIMARY KEY, name VARCHAR(32) NOT NULL);
         CREATE TABLE product_tags (product_id INT UNSIGNED NOT NULL, tag_id INT UNSIGNED NOT NULL,
           PRIMARY KEY (product_id, tag_id), KEY (tag_id));
         INSERT INTO customers SELECT seq, CONCAT('Zoë ', seq), ELT(seq % 3 + 1, 'DE', 'SE', 'JP') FROM seq_1_to_50;
         INSERT INTO products SELECT seq, CONCAT('SKU-', seq), CONCAT('Café #', seq), ELT(seq % 3 + 1, 'coffee', 'tea', 'gifts') FROM seq_1_to_20;
         INSERT INTO orders SELECT seq, seq % 50 + 1, 'paid' FROM seq_1_to_300;
         INSERT INTO order_items SELECT o.seq, l.seq, (o.seq * 31 + l.seq * 17) % 20 + 1, l.seq, 9.99, 0.00
           FROM seq_1_to_300 o JOIN seq_1_to_3 l ON l.seq <= 1 + o.seq % 3;
         INSERT INTO tags VALUES (1, 'organic'), (2, 'fair-trade'), (3, 'new');
         INSERT INTO product_tags SELECT p.seq, t.seq FROM seq_1_to_20 p JOIN seq_1_to_3 t WHERE (p.seq + t.seq) % 2 = 0;"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormalized_builds_orders_and_follows_a_shared_row() {
    let db = mariadb().create_database("ex_docs");
    seed_documents_shop(&db);
    let prefix = unique_name("ex-docs");
    let cfg = denormalized::Config::from_lookup(env(&[
        ("MYSQL_URL", mariadb().url()),
        ("MYSQL_DB", db.clone()),
        ("ES_URL", engine().url()),
        ("ES_INDEX", format!("{prefix}-{{table}}")),
        ("STREAM_SECONDS", "5".into()),
    ]));
    // A product renamed once the copy is done, while the example streams (for 5 s after the
    // copy, from a position taken before it): every order holding it follows. (Renaming at
    // a fixed time could come before that position on a loaded machine: then the copy had it
    // and the stream had nothing to rebuild.)
    let d = db.clone();
    let index = format!("{prefix}-orders");
    let renamer = std::thread::spawn(move || {
        let copied = || {
            let r = engine().request("POST", &format!("/{index}/_refresh"), None);
            r.status == 200 && es_count(&index) == 300
        };
        let started = std::time::Instant::now();
        while !copied() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(300),
                "the copy did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        mariadb().exec(&format!(
            "UPDATE `{d}`.products SET name = 'Decaf' WHERE id = 3"
        ));
    });
    let report = denormalized::run(&cfg).await.expect("denormalized");
    renamer.join().unwrap();
    denormalized::print_report(&report);
    assert_eq!(report.copy.written, 300);
    assert!(report.rebuilt > 0, "the rename reached some orders");
    let index = format!("{prefix}-orders");
    assert_eq!(es_count(&index), 300);
    let holder = row(&format!(
        "SELECT MIN(order_id) FROM `{db}`.order_items WHERE product_id = 3"
    ))[0]
        .clone();
    let doc = es_source(&index, &holder);
    let items = doc["items"].as_array().expect("items");
    let line = items
        .iter()
        .find(|i| i["product"]["id"] == json!(3))
        .expect("the line of product 3");
    assert_eq!(line["product"]["name"], json!("Decaf"), "{doc}");
    assert_eq!(line["product"]["tags"], json!(["organic", "new"]), "{doc}");
    assert_eq!(
        doc["customer"]["name"]
            .as_str()
            .map(|s| s.starts_with("Zoë")),
        Some(true)
    );
}

/// Waits (up to a minute) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn es_has(index: &str, id: &str) -> Option<Json> {
    let r = engine().request("GET", &format!("/{index}/_doc/{id}"), None);
    (r.status == 200).then(|| r.json()["_source"].clone())
}

/// Runs the example until every snapshot unit is done and `check` holds, then stops it.
async fn run_cdc_until(
    cfg: &cdc_mysql_to_es::Config,
    snapshots: &[String],
    changes: &str,
    mut check: impl FnMut() -> bool,
) -> datatrace::JobReport {
    let stop = datatrace::CancellationToken::new();
    let (tx, mut rx) = datatrace::progress_channel(4096);
    let run = {
        let stop = stop.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move { cdc_mysql_to_es::run(&cfg, stop, Some(tx)).await })
    };
    let mut done: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !snapshots.iter().all(|s| done.contains(s)) {
        assert!(
            std::time::Instant::now() < deadline,
            "snapshots not done: {done:?}"
        );
        match tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await {
            Ok(Ok(e)) => {
                if let datatrace::ProgressKind::State { state, error } = &e.kind {
                    assert!(error.is_none(), "{}: {error:?}", e.unit);
                    if *state == datatrace::UnitState::Done {
                        done.push(e.unit.to_string());
                    }
                }
            }
            Ok(Err(_)) | Err(_) => assert!(!run.is_finished(), "the run ended early"),
        }
    }
    mariadb().exec(changes);
    eventually("the stream's changes in the index", &mut check).await;
    stop.cancel();
    run.await.expect("join").expect("cdc_mysql_to_es")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_mysql_to_es_copies_then_follows_changes() {
    let db = mariadb().create_database("ex_cdc");
    seed_shop(&db);
    let prefix = unique_name("ex-cdc");
    let dir = std::env::temp_dir().join(unique_name("ex_cdc_checkpoints"));
    let server_id = 20_000 + std::process::id() % 20_000;
    let cfg = cdc_mysql_to_es::Config::from_lookup(env(&[
        ("MYSQL_URL", mariadb().url()),
        ("MYSQL_DB", db.clone()),
        ("ES_URL", engine().url()),
        ("ES_INDEX", format!("{prefix}-{{table}}")),
        ("CHECKPOINT_DIR", dir.display().to_string()),
        ("SERVER_ID", server_id.to_string()),
    ]));
    let customers = format!("{prefix}-customers");
    let orders = format!("{prefix}-orders");
    let units = [format!("{db}.customers"), format!("{db}.orders")];

    // First run: the copies, then changes made while it streams.
    let report = run_cdc_until(
        &cfg,
        &units,
        &format!(
            "USE `{db}`;
             INSERT INTO customers (id, name, balance) VALUES (501, 'Neu Kundin', 3.50);
             UPDATE customers SET name = 'Umbenannt', balance = 99.99 WHERE id = 42;
             DELETE FROM orders WHERE id = 7;"
        ),
        || {
            es_count(&customers) == 501
                && es_has(&customers, "42").is_some_and(|d| d["name"] == json!("Umbenannt"))
                && es_has(&orders, "7").is_none()
        },
    )
    .await;
    let state = |r: &datatrace::JobReport, unit: &str| {
        r.units.iter().find(|u| u.unit == unit).map(|u| u.state)
    };
    assert_eq!(state(&report, &units[0]), Some(datatrace::UnitState::Done));
    assert_eq!(state(&report, &units[1]), Some(datatrace::UnitState::Done));
    // The stream never ends on its own: stopped, it resumes on the next run.
    assert_eq!(
        state(&report, "binlog"),
        Some(datatrace::UnitState::Running)
    );
    assert_eq!(es_count(&orders), 299);
    let doc = es_source(&customers, "501");
    assert_eq!(doc["name"], json!("Neu Kundin"));
    assert_eq!(doc["balance"].as_f64(), Some(3.5));

    // Second run: the copies are not made again; the stream continues from its checkpoint.
    let report = run_cdc_until(
        &cfg,
        &[],
        &format!("USE `{db}`; UPDATE orders SET total = 1.23 WHERE id = 8;"),
        || es_has(&orders, "8").is_some_and(|d| d["total"].as_f64() == Some(1.23)),
    )
    .await;
    for u in &units {
        let r = report.units.iter().find(|x| &x.unit == u).unwrap();
        assert_eq!(
            r.report.as_ref().map(|r| r.status),
            Some(datatrace::RunStatus::AlreadyDone),
            "{u} copied again"
        );
    }
    assert_eq!(es_count(&customers), 501);
    let _ = std::fs::remove_dir_all(&dir);
}

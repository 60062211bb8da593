//! Denormalized documents, end to end: the snapshot of one document per order (customer,
//! lines, products, tags) beside the flat copy of the same shop's tables, and the change
//! stream when one shared row (a product in 10,000 orders) changes: how long until every
//! document embedding it is rebuilt and acknowledged (lag), at what rate, batched as this
//! crate does it and one document at a time (canal-style: a query per affected row).
//!
//! `cargo bench -p datatrace --bench denormal` (env `BENCH_ORDERS`, default 100000; the hot
//! product is in `BENCH_FANOUT` orders, default 10000; `BENCH_ONLY=2,5` runs only those rows
//! of the table).
//!
//! Targets: the testkit's bulk endpoint (parses every request, stores nothing: the cost of
//! DataTrace and MariaDB alone) and the real engine (`datatrace_testkit::engine()`, one
//! OpenSearch node). Each run is a child process (this binary re-executed), so its CPU
//! seconds and peak RSS are its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace::denormal::{DocumentSpec, Documents, IndexShape, RelationSpec};
use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace::mysql::binlog::position::{from_position, ordinal};
use datatrace::mysql::binlog::{current_position, CdcOptions, StartAt};
use datatrace::mysql::{table_info, ConnectionConfig, MySqlConnection, MySqlSource, SourceOptions};
use datatrace::{CheckpointStore, Job, MemoryCheckpointStore, Pipeline, PipelineConfig, UnitSpec};
use datatrace_testkit::{child, procstat};
use mysql_async::prelude::Queryable;

const ROLE: &str = "DT_DENORMAL_ROLE";
const TABLES: [&str; 6] = [
    "customers",
    "products",
    "tags",
    "product_tags",
    "orders",
    "order_items",
];

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("endpoint") => {
            return child::serve_bulk_endpoint(datatrace_testkit::bulk::BulkEndpoint::start())
        }
        Ok(role) => return child(role),
        Err(_) => {}
    }
    let env_n = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let orders = env_n("BENCH_ORDERS", 100_000);
    let fanout = env_n("BENCH_FANOUT", 10_000).min(orders);
    let db = datatrace_testkit::mariadb();
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let shop = db.create_database("bench_denormal");
    let t0 = Instant::now();
    let (customers, products) = (orders / 5, 5_000);
    db.exec(&format!(
        "USE `{shop}`;
         CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(128) NOT NULL, country CHAR(2) NOT NULL, created DATETIME NOT NULL);
         CREATE TABLE products (id INT PRIMARY KEY, sku VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL, description TEXT);
         CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL);
         CREATE TABLE product_tags (product_id INT NOT NULL, tag_id INT NOT NULL, PRIMARY KEY (product_id, tag_id), KEY (tag_id));
         CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL, total DECIMAL(12,2) NOT NULL, placed DATETIME NOT NULL, KEY (customer_id));
         CREATE TABLE order_items (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, product_id INT NOT NULL, qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, KEY (order_id), KEY (product_id));
         INSERT INTO customers SELECT seq, CONCAT('Zoë Müller ', seq), CONCAT('c', seq, '@example.com'), ELT(1 + seq % 4, 'DE', 'SE', 'JP', 'FR'), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_{customers};
         INSERT INTO products SELECT seq, CONCAT('SKU-', seq), CONCAT('Café crème #', seq), 1 + seq % 97 + 0.99, RPAD('Carefully roasted. ', 120, 'lorem ') FROM seq_1_to_{products};
         INSERT INTO tags SELECT seq, CONCAT('tag-', seq) FROM seq_1_to_20;
         INSERT INTO product_tags SELECT p.seq, t.seq FROM seq_1_to_{products} p JOIN seq_1_to_20 t WHERE (p.seq * 7 + t.seq) % 7 = 0;
         INSERT INTO orders SELECT seq, 1 + seq * 7 % {customers}, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), seq % 1000 + 0.5, '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_{orders};
         INSERT INTO order_items SELECT o.seq * 10 + l.seq, o.seq, IF(l.seq = 1 AND o.seq <= {fanout}, 1, 2 + (o.seq * 31 + l.seq * 17) % ({products} - 1)), l.seq, 9.99 FROM seq_1_to_{orders} o JOIN seq_1_to_4 l WHERE l.seq <= 1 + o.seq % 4;
         ANALYZE TABLE customers, products, tags, product_tags, orders, order_items;"
    ));
    let rows: u64 = TABLES
        .iter()
        .map(|t| {
            db.exec(&format!("SELECT COUNT(*) FROM `{shop}`.{t}"))
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    println!(
        "shop: {orders} orders, {rows} rows in {} tables ({customers} customers, {products} products, \
         20 tags), product 1 in {fanout} orders; generated in {:.1} s",
        TABLES.len(),
        t0.elapsed().as_secs_f64()
    );
    let mariadbd = db.pid();
    let (mut endpoint, endpoint_url) = child::spawn_line(ROLE, "endpoint");
    let engine = datatrace_testkit::engine();
    println!(
        "engine: {} {} at {}",
        engine.flavor(),
        engine.version(),
        engine.url()
    );
    let prefix = datatrace_testkit::unique_name("bench-denormal");
    let env = |es: &str| {
        vec![
            ("MYSQL_URL", db.url()),
            ("SHOP", shop.clone()),
            ("ES_URL", es.to_string()),
            ("PREFIX", prefix.clone()),
        ]
    };

    println!();
    println!("| run | target | documents (rows) | documents/s | source rows read/s | CPU s / 1M documents (DataTrace) | peak RSS MB | CPU s (MariaDB) | time s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let runs: [(&str, &str, &str); 7] = [
        ("flat", "flat copy of the 6 tables", "endpoint"),
        ("docs", "order documents (snapshot)", "endpoint"),
        ("flat", "flat copy of the 6 tables", "engine"),
        ("docs", "order documents (snapshot)", "engine"),
        (
            "fanout",
            "product 1 renamed: stream rebuilds its orders (batched)",
            "endpoint",
        ),
        (
            "fanout-per-row",
            "the same, one document per query set (canal-style)",
            "endpoint",
        ),
        (
            "fanout",
            "product 1 renamed: stream rebuilds its orders (batched)",
            "engine",
        ),
    ];
    // BENCH_ONLY=2,5 runs those rows of the table only (1-based), for profiling.
    let only: Vec<usize> = std::env::var("BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    for (i, (role, name, target)) in runs.into_iter().enumerate() {
        if !only.is_empty() && !only.contains(&(i + 1)) {
            continue;
        }
        let url = if target == "engine" {
            engine.url()
        } else {
            endpoint_url.clone()
        };
        let server0 = mariadbd.as_deref().map_or(0.0, procstat::cpu_secs);
        let f = child::run_result(ROLE, role, &env(&url));
        let (docs, read, secs, cpu, hwm) = (f[0], f[1], f[2], f[3], f[4]);
        let server = mariadbd.as_deref().map_or(0.0, procstat::cpu_secs) - server0;
        let target = if target == "engine" {
            "OpenSearch"
        } else {
            "bulk endpoint"
        };
        println!(
            "| {name} | {target} | {docs:.0} | {:.0} | {:.0} | {:.2} | {hwm:.0} | {server:.1} | {secs:.2} |",
            docs / secs,
            read / secs,
            cpu / docs.max(1.0) * 1e6,
        );
    }
    drop(endpoint.stdin.take());
    let _ = endpoint.wait();
    db.exec(&format!("DROP DATABASE `{shop}`"));
}

/// The order documents of the benchmark.
fn orders() -> DocumentSpec {
    DocumentSpec::new("orders", "orders")
        .relation(RelationSpec::many_to_one(
            "customer",
            "customers",
            ["customer_id"],
        ))
        .relation(RelationSpec::one_to_many("items", "order_items", ["order_id"]).nested())
        .relation(RelationSpec::many_to_one("product", "products", ["product_id"]).under("items"))
        .relation(
            RelationSpec::many_to_many("tags", "tags", "product_tags", ["product_id"], ["tag_id"])
                .under("product")
                .scalar("name"),
        )
}

/// Runs one benchmark and prints `RESULT documents rows_read secs cpu_secs peak_rss_mb`.
fn child(role: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (url, shop, es, prefix) = (var("MYSQL_URL"), var("SHOP"), var("ES_URL"), var("PREFIX"));
    let line = rt.block_on(async move {
        let conn = ConnectionConfig::new(format!("{url}/{shop}")).max_connections(8);
        let mysql = MySqlConnection::connect(&conn).await.expect("connect");
        let es = EsConnection::new([es]);
        match role {
            "flat" => flat(&mysql, &shop, &es, &prefix).await,
            "docs" => docs(&mysql, &es, &prefix).await,
            _ => fanout(&mysql, &es, &prefix, role == "fanout-per-row").await,
        }
    });
    println!("RESULT {line} {}", procstat::peak_rss_mb());
}

fn config() -> PipelineConfig {
    PipelineConfig {
        batch_size: 1000,
        read_parallelism: 2,
        sink_concurrency: 2,
        linger: Duration::from_millis(20),
        ..Default::default()
    }
}

async fn flat(mysql: &MySqlConnection, shop: &str, es: &EsConnection, prefix: &str) -> String {
    let sink = Arc::new(
        EsSink::connect(
            es,
            SinkConfig {
                index: format!("{prefix}-flat-{{table}}"),
                ..Default::default()
            },
        )
        .await
        .expect("sink"),
    );
    let mut job = Job::new("flat").concurrency(2).config(config());
    for t in TABLES {
        let info = table_info(mysql, shop, t).await.expect("table");
        let source =
            MySqlSource::new(mysql.clone(), info, SourceOptions::default()).expect("source");
        job = job.unit(UnitSpec::new(t, Arc::new(source), sink.clone()));
    }
    let (cpu0, t0) = (procstat::cpu_secs("self"), Instant::now());
    let report = job.run().await.expect("flat copy");
    assert!(report.is_complete());
    let n = report.written();
    format!(
        "{n} {n} {} {}",
        t0.elapsed().as_secs_f64(),
        procstat::cpu_secs("self") - cpu0
    )
}

async fn sink_for(es: &EsConnection, prefix: &str) -> Arc<EsSink> {
    Arc::new(
        EsSink::connect(es, Documents::sink_config(&format!("{prefix}-{{table}}")))
            .await
            .expect("sink"),
    )
}

async fn docs(mysql: &MySqlConnection, es: &EsConnection, prefix: &str) -> String {
    let sink = sink_for(es, prefix).await;
    let documents = Documents::resolve(mysql, vec![orders()], &sink)
        .await
        .expect("resolve");
    let source = documents.snapshot("orders").expect("source");
    let (cpu0, t0) = (procstat::cpu_secs("self"), Instant::now());
    let report = Pipeline::new("orders", Arc::new(source), sink)
        .config(config())
        .run()
        .await
        .expect("snapshot");
    let secs = t0.elapsed().as_secs_f64();
    // Rows read per document: the order, its lines, their products and tags, its customer.
    let mut c = mysql.get().await.expect("conn");
    let read: u64 = c
        .query_first(
            "SELECT (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM orders) \
             + 2 * (SELECT COUNT(*) FROM order_items) \
             + (SELECT COUNT(*) FROM order_items i JOIN product_tags pt ON pt.product_id = i.product_id)",
        )
        .await
        .expect("count")
        .unwrap_or(0);
    format!(
        "{} {read} {secs} {}",
        report.written,
        procstat::cpu_secs("self") - cpu0
    )
}

async fn fanout(mysql: &MySqlConnection, es: &EsConnection, prefix: &str, per_row: bool) -> String {
    let sink = sink_for(es, prefix).await;
    let spec = if per_row {
        let mut s = orders().batch_size(1);
        s.rebuild_concurrency = 1;
        s
    } else {
        orders()
    };
    let shape = IndexShape::of(&sink);
    let documents = Documents::resolve_with(mysql, vec![spec], shape, SourceOptions::default())
        .await
        .expect("resolve");
    let p = current_position(mysql).await.expect("position");
    let cdc = CdcOptions {
        server_id: 8800 + std::process::id() % 1000,
        start: StartAt::Position {
            file: p.file,
            pos: p.pos,
        },
        heartbeat_secs: 1,
        ..Default::default()
    };
    let stream = documents.binlog_stream("documents", cdc).expect("stream");
    let stats = stream.stats();
    let store = Arc::new(MemoryCheckpointStore::new());
    let pipeline = Pipeline::new("documents", Arc::new(stream), sink)
        .job("bench")
        .checkpoints(store.clone())
        .config(PipelineConfig {
            partition_by_key: true,
            checkpoint_interval: Duration::from_millis(20),
            ..config()
        });
    let stop = pipeline.canceller();
    let task = tokio::spawn(pipeline.run());
    let exec = |sql: String| {
        let mysql = mysql.clone();
        async move {
            let mut c = mysql.get().await.expect("conn");
            c.query_drop(sql).await.expect("update");
        }
    };
    let reached = |upto: u64| {
        let store = store.clone();
        async move {
            loop {
                let at = store
                    .load("bench", "documents")
                    .await
                    .ok()
                    .flatten()
                    .and_then(|cp| cp.parts.first().and_then(|p| p.position.clone()))
                    .and_then(|p| from_position(&p))
                    .map(|b| ordinal(&b.file, b.pos));
                if at.is_some_and(|a| a >= upto) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // Warm up: one order changes, the stream is connected once its checkpoint is in.
    exec("UPDATE orders SET status = 'warm' WHERE id = 99999999 OR id = 1".into()).await;
    let warm = current_position(mysql).await.expect("position");
    reached(ordinal(&warm.file, warm.pos)).await;
    let docs0 = stats.documents.load(Ordering::Relaxed);
    let (cpu0, t0) = (procstat::cpu_secs("self"), Instant::now());
    exec("UPDATE products SET name = CONCAT(name, ' (new)') WHERE id = 1".into()).await;
    let end = current_position(mysql).await.expect("position");
    reached(ordinal(&end.file, end.pos)).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = procstat::cpu_secs("self") - cpu0;
    let docs = stats.documents.load(Ordering::Relaxed) - docs0;
    stop.cancel();
    let _ = task.await;
    format!("{docs} {docs} {secs} {cpu}")
}

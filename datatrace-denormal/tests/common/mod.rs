//! The shop of the denormalized-document tests: customers -> orders -> order_items ->
//! products, and tags many-to-many through product_tags, in a private MariaDB database
//! (no foreign key constraints, so deletes may leave rows pointing at nothing, as in many
//! real schemas), written to the real search engine (`datatrace_testkit::engine()`), and an
//! independent oracle: the expected documents computed in memory from full table reads,
//! with none of the library's batching, lookups or SQL.
#![allow(dead_code)]

pub mod changes;
mod join;

#[allow(unused_imports)]
pub use join::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, Source};
use datatrace_denormal::{DocumentSpec, Documents, IndexShape, RelationSpec};
use datatrace_es::{ConnectionConfig as EsConfig, EsSink, IndexSettings, SinkConfig};
use datatrace_mysql::{ConnectionConfig, MySqlConnection, SourceOptions};
use datatrace_testkit::{engine, mariadb, unique_name};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value as Json};

pub const SCHEMA: &str = "
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, tier ENUM('std','gold') NOT NULL, region VARCHAR(8) NOT NULL);
CREATE TABLE products (id INT PRIMARY KEY, sku VARCHAR(32) NOT NULL, name VARCHAR(128) NOT NULL, price DECIMAL(10,2) NOT NULL);
CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL);
CREATE TABLE product_tags (product_id INT NOT NULL, tag_id INT NOT NULL, PRIMARY KEY (product_id, tag_id), KEY (tag_id));
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NULL, placed_on DATE NOT NULL, status VARCHAR(16) NOT NULL, KEY (customer_id));
CREATE TABLE order_items (id INT PRIMARY KEY, order_id INT NOT NULL, product_id INT NULL, qty INT NOT NULL, KEY (order_id), KEY (product_id));
";

/// A database holding the shop, with `orders` orders (about 2.5 lines each).
pub fn shop(orders: u32) -> String {
    shop_on(mariadb(), orders)
}

/// [`shop`] on another server.
pub fn shop_on(server: &datatrace_testkit::MariaDb, orders: u32) -> String {
    let db = server.create_database("denormal");
    let customers = (orders / 4).max(3);
    let products = (orders / 5).max(5);
    server.exec(&format!(
        "USE `{db}`; {SCHEMA}
         INSERT INTO customers SELECT seq, CONCAT('customer ', seq, ' ü'), IF(seq % 3 = 0, 'gold', 'std'), ELT(1 + seq % 3, 'eu', 'us', 'ap') FROM seq_1_to_{customers};
         INSERT INTO products SELECT seq, CONCAT('SKU-', seq), CONCAT('product \"', seq, '\"'), seq * 1.25 FROM seq_1_to_{products};
         INSERT INTO tags SELECT seq, CONCAT('tag', seq) FROM seq_1_to_8;
         INSERT INTO product_tags SELECT p.seq, t.seq FROM seq_1_to_{products} p JOIN seq_1_to_8 t WHERE (p.seq + t.seq) % 3 = 0;
         INSERT INTO orders SELECT seq, IF(seq % 17 = 0, NULL, 1 + seq % {customers}), '2024-01-01' + INTERVAL seq DAY, ELT(1 + seq % 3, 'new', 'paid', 'shipped') FROM seq_1_to_{orders};
         INSERT INTO order_items SELECT o.seq * 10 + l.seq, o.seq, IF((o.seq + l.seq) % 11 = 0, NULL, 1 + (o.seq * 7 + l.seq) % {products}), l.seq FROM seq_1_to_{orders} o JOIN seq_1_to_4 l WHERE l.seq <= 1 + o.seq % 4;
         ANALYZE TABLE customers, products, tags, product_tags, orders, order_items;"
    ));
    db
}

/// Runs SQL in the shop's database.
pub fn exec(db: &str, sql: &str) -> String {
    mariadb().exec(&format!("USE `{db}`; {sql}"))
}

pub async fn mysql(db: &str) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(mariadb().url_for(db)))
        .await
        .expect("connect")
}

/// A sink writing documents to `index` (3 shards, so that routing matters).
pub async fn sink(index: &str) -> Arc<EsSink> {
    let mut cfg = Documents::sink_config(index);
    cfg.settings = IndexSettings {
        shards: Some(3),
        replicas: Some(0),
        ..Default::default()
    };
    sink_with(cfg).await
}

pub async fn sink_with(cfg: SinkConfig) -> Arc<EsSink> {
    Arc::new(
        EsSink::connect(&EsConfig::new([engine().url()]), cfg)
            .await
            .expect("es sink"),
    )
}

/// orders { customer: {id, name, tier}, items: [ {id, qty, product: {id, sku, name, price,
/// tags: [name..]}} ] (nested) }.
pub fn orders_spec(name: &str) -> DocumentSpec {
    DocumentSpec::new(name, "orders")
        .relation(
            RelationSpec::many_to_one("customer", "customers", ["customer_id"])
                .columns(["id", "name", "tier"]),
        )
        .relation(
            RelationSpec::one_to_many("items", "order_items", ["order_id"])
                .columns(["id", "qty"])
                .nested(),
        )
        .relation(
            RelationSpec::many_to_one("product", "products", ["product_id"])
                .under("items")
                .columns(["id", "sku", "name", "price"]),
        )
        .relation(
            RelationSpec::many_to_many("tags", "tags", "product_tags", ["product_id"], ["tag_id"])
                .under("product")
                .scalar("name"),
        )
}

/// customers { orders: [ {id, status, placed_on, lines: [ {id, qty, product: {.., tags}} ]} ]
/// (nested, newest first) }: four levels.
pub fn customers_spec(name: &str) -> DocumentSpec {
    DocumentSpec::new(name, "customers")
        .relation(
            RelationSpec::one_to_many("orders", "orders", ["customer_id"])
                .columns(["id", "status", "placed_on"])
                .order_by(["-placed_on"])
                .nested(),
        )
        .relation(
            RelationSpec::one_to_many("lines", "order_items", ["order_id"])
                .under("orders")
                .columns(["id", "qty"]),
        )
        .relation(
            RelationSpec::many_to_one("product", "products", ["product_id"])
                .under("lines")
                .columns(["id", "sku", "price"]),
        )
        .relation(
            RelationSpec::many_to_many("tags", "tags", "product_tags", ["product_id"], ["tag_id"])
                .under("product")
                .scalar("name"),
        )
}

/// The shop's tables read in full.
pub struct Tables {
    pub customers: BTreeMap<i64, Json>,
    pub products: BTreeMap<i64, Json>,
    pub tags: BTreeMap<i64, String>,
    pub product_tags: Vec<(i64, i64)>,
    pub orders: BTreeMap<i64, (Option<i64>, Json)>,
    pub items: BTreeMap<i64, (i64, Option<i64>, Json)>,
}

pub async fn tables(db: &str) -> Tables {
    tables_on(mariadb(), db).await
}

/// [`tables`] on another server.
pub async fn tables_on(server: &datatrace_testkit::MariaDb, db: &str) -> Tables {
    let conn = MySqlConnection::connect(&ConnectionConfig::new(server.url_for(db)))
        .await
        .expect("connect");
    let mut c = conn.get().await.expect("conn");
    let customers: Vec<(i64, String, String, String)> = c
        .query("SELECT id, name, tier, region FROM customers")
        .await
        .unwrap();
    let products: Vec<(i64, String, String, String)> = c
        .query("SELECT id, sku, name, CAST(price AS CHAR) FROM products")
        .await
        .unwrap();
    let tags: Vec<(i64, String)> = c.query("SELECT id, name FROM tags").await.unwrap();
    let product_tags: Vec<(i64, i64)> = c
        .query("SELECT product_id, tag_id FROM product_tags")
        .await
        .unwrap();
    let orders: Vec<(i64, Option<i64>, String, String)> = c
        .query("SELECT id, customer_id, DATE_FORMAT(placed_on, '%Y-%m-%d'), status FROM orders")
        .await
        .unwrap();
    let items: Vec<(i64, i64, Option<i64>, i64)> = c
        .query("SELECT id, order_id, product_id, qty FROM order_items")
        .await
        .unwrap();
    let num = |s: &str| json!(s.parse::<f64>().unwrap());
    Tables {
        customers: customers
            .into_iter()
            .map(|(id, name, tier, region)| {
                (
                    id,
                    json!({"id": id, "name": name, "tier": tier, "region": region}),
                )
            })
            .collect(),
        products: products
            .into_iter()
            .map(|(id, sku, name, price)| {
                (
                    id,
                    json!({"id": id, "sku": sku, "name": name, "price": num(&price)}),
                )
            })
            .collect(),
        tags: tags.into_iter().collect(),
        product_tags,
        orders: orders
            .into_iter()
            .map(|(id, cust, day, status)| {
                (
                    id,
                    (
                        cust,
                        json!({"id": id, "customer_id": cust, "placed_on": day, "status": status}),
                    ),
                )
            })
            .collect(),
        items: items
            .into_iter()
            .map(|(id, order, product, qty)| {
                (
                    id,
                    (
                        order,
                        product,
                        json!({"id": id, "order_id": order, "product_id": product, "qty": qty}),
                    ),
                )
            })
            .collect(),
    }
}

pub(crate) fn pick(obj: &Json, fields: &[&str]) -> serde_json::Map<String, Json> {
    fields
        .iter()
        .map(|f| (f.to_string(), obj[*f].clone()))
        .collect()
}

impl Tables {
    fn tag_names(&self, product: i64) -> Json {
        let mut ids: Vec<i64> = self
            .product_tags
            .iter()
            .filter(|(p, _)| *p == product)
            .map(|(_, t)| *t)
            .filter(|t| self.tags.contains_key(t))
            .collect();
        ids.sort();
        Json::Array(ids.iter().map(|t| json!(self.tags[t])).collect())
    }

    fn product(&self, id: Option<i64>, fields: &[&str]) -> Json {
        match id.and_then(|i| self.products.get(&i)) {
            None => Json::Null,
            Some(p) => {
                let mut m = pick(p, fields);
                m.insert("tags".into(), self.tag_names(p["id"].as_i64().unwrap()));
                Json::Object(m)
            }
        }
    }

    /// The expected orders documents by id.
    pub fn orders_docs(&self) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for (id, (cust, o)) in &self.orders {
            let mut doc = o.as_object().unwrap().clone();
            doc.insert(
                "customer".into(),
                cust.and_then(|c| self.customers.get(&c))
                    .map(|c| Json::Object(pick(c, &["id", "name", "tier"])))
                    .unwrap_or(Json::Null),
            );
            let items: Vec<Json> = self
                .items
                .iter()
                .filter(|(_, (order, _, _))| order == id)
                .map(|(_, (_, product, item))| {
                    let mut m = pick(item, &["id", "qty"]);
                    m.insert(
                        "product".into(),
                        self.product(*product, &["id", "sku", "name", "price"]),
                    );
                    Json::Object(m)
                })
                .collect();
            doc.insert("items".into(), Json::Array(items));
            out.insert(id.to_string(), Json::Object(doc));
        }
        out
    }

    /// The expected customers documents by id.
    pub fn customers_docs(&self) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for (id, c) in &self.customers {
            let mut doc = c.as_object().unwrap().clone();
            let mut orders: Vec<(i64, Json)> = self
                .orders
                .iter()
                .filter(|(_, (cust, _))| *cust == Some(*id))
                .map(|(oid, (_, o))| {
                    let mut m = pick(o, &["id", "status", "placed_on"]);
                    let lines: Vec<Json> = self
                        .items
                        .iter()
                        .filter(|(_, (order, _, _))| order == oid)
                        .map(|(_, (_, product, item))| {
                            let mut l = pick(item, &["id", "qty"]);
                            l.insert(
                                "product".into(),
                                self.product(*product, &["id", "sku", "price"]),
                            );
                            Json::Object(l)
                        })
                        .collect();
                    m.insert("lines".into(), Json::Array(lines));
                    (*oid, Json::Object(m))
                })
                .collect();
            // Newest first, then by id.
            orders.sort_by(|a, b| {
                let da = a.1["placed_on"].as_str().unwrap_or_default();
                let db = b.1["placed_on"].as_str().unwrap_or_default();
                db.cmp(da).then(a.0.cmp(&b.0))
            });
            doc.insert(
                "orders".into(),
                Json::Array(orders.into_iter().map(|(_, o)| o).collect()),
            );
            out.insert(id.to_string(), Json::Object(doc));
        }
        out
    }
}

/// JSON with every number as f64 (the oracle reads decimals as numbers).
pub fn canon(j: &Json) -> Json {
    match j {
        Json::Number(n) => json!(n.as_f64().unwrap()),
        Json::Array(a) => Json::Array(a.iter().map(canon).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

/// Every document of `index`: id -> (source, routing).
pub fn index_docs(index: &str) -> BTreeMap<String, (Json, Option<String>)> {
    let es = engine();
    es.refresh(index);
    let r = es.request(
        "POST",
        &format!("/{index}/_search"),
        Some(r#"{"size": 10000, "query": {"match_all": {}}, "version": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let hits = body["hits"]["hits"].as_array().unwrap();
    let mut out = BTreeMap::new();
    for h in hits {
        let id = h["_id"].as_str().unwrap().to_string();
        let routing = h["_routing"].as_str().map(str::to_string);
        let prev = out.insert(id.clone(), (h["_source"].clone(), routing));
        assert!(
            prev.is_none(),
            "document {id} is twice in {index} (left on an old routing?)"
        );
    }
    out
}

/// Asserts the index holds exactly `expected` (numbers compared as f64), naming the first
/// document that differs.
pub fn assert_docs(index: &str, expected: &BTreeMap<String, Json>) {
    let got = index_docs(index);
    for (id, want) in expected {
        let Some((have, _)) = got.get(id) else {
            panic!("{index}: document {id} is missing; expected {want}");
        };
        assert_eq!(canon(have), canon(want), "{index}: document {id} differs");
    }
    for id in got.keys() {
        assert!(
            expected.contains_key(id),
            "{index}: document {id} should not exist: {}",
            got[id].0
        );
    }
}

/// Resolves `specs` for documents written to `sink`.
pub async fn documents(db: &str, specs: Vec<DocumentSpec>, sink: &EsSink) -> Documents {
    let opts = SourceOptions {
        chunk_rows: 50,
        ..Default::default()
    };
    Documents::resolve_with(&mysql(db).await, specs, IndexShape::of(sink), opts)
        .await
        .expect("resolve")
}

/// Copies one snapshot unit (4 readers over parts of 50 roots).
pub async fn copy(source: impl Source + 'static, unit: &str, sink: Arc<EsSink>) -> u64 {
    let report = Pipeline::new(unit, Arc::new(source), sink)
        .config(PipelineConfig {
            read_parallelism: 4,
            batch_size: 200,
            ..Default::default()
        })
        .run()
        .await
        .expect("snapshot");
    report.written
}

/// Waits until `store` holds a checkpoint of `unit` at or after ordinal `upto`.
pub async fn caught_up(store: &MemoryCheckpointStore, job: &str, unit: &str, upto: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let at = store
            .load(job, unit)
            .await
            .ok()
            .flatten()
            .and_then(|cp| cp.parts.first().and_then(|p| p.position.clone()))
            .and_then(|p| datatrace_mysql::binlog::position::from_position(&p))
            .map(|b| datatrace_mysql::binlog::position::ordinal(&b.file, b.pos));
        if at.is_some_and(|a| a >= upto) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream did not catch up with ordinal {upto} in 60 s (at {at:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's current binlog ordinal.
pub async fn now_ordinal(db: &str) -> u64 {
    let p = datatrace_mysql::binlog::current_position(&mysql(db).await)
        .await
        .expect("position");
    datatrace_mysql::binlog::position::ordinal(&p.file, p.pos)
}

/// A unique index name.
pub fn index(prefix: &str) -> String {
    unique_name(prefix)
}

/// A running document stream.
pub struct Running {
    pub store: Arc<MemoryCheckpointStore>,
    pub job: String,
    pub unit: String,
    pub cancel: datatrace_core::CancellationToken,
    pub task: tokio::task::JoinHandle<datatrace_core::Result<datatrace_core::RunReport>>,
    pub stats: Arc<datatrace_denormal::StreamStats>,
}

impl Running {
    /// Waits until the stream has written everything up to the server's current position.
    pub async fn catch_up(&self, db: &str) {
        let upto = now_ordinal(db).await;
        caught_up(&self.store, &self.job, &self.unit, upto).await;
    }

    /// Stops the stream; panics if it failed.
    pub async fn stop(self) {
        self.cancel.cancel();
        match self.task.await.expect("join") {
            Ok(_) | Err(datatrace_core::Error::Cancelled) => {}
            Err(e) => panic!("the stream failed: {e}"),
        }
    }
}

/// Options streaming from the server's current position, with a unique server id.
pub async fn cdc_from_now(db: &str) -> datatrace_mysql::binlog::CdcOptions {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let p = datatrace_mysql::binlog::current_position(&mysql(db).await)
        .await
        .expect("position");
    datatrace_mysql::binlog::CdcOptions {
        server_id: 16_000
            + std::process::id() % 1000 * 10
            + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        start: datatrace_mysql::binlog::StartAt::Position {
            file: p.file,
            pos: p.pos,
        },
        heartbeat_secs: 1,
        ..Default::default()
    }
}

/// Starts `stream` writing to `sink` (several writers, partitioned by key).
pub fn run_stream(
    stream: datatrace_denormal::DocumentStream,
    sink: Arc<dyn datatrace_core::Sink>,
    config: PipelineConfig,
) -> Running {
    resume_stream(
        stream,
        sink,
        config,
        Arc::new(MemoryCheckpointStore::new()),
        unique_name("job"),
    )
}

/// Starts `stream` from the checkpoint of `job` in `store` (from its start when none).
pub fn resume_stream(
    stream: datatrace_denormal::DocumentStream,
    sink: Arc<dyn datatrace_core::Sink>,
    config: PipelineConfig,
    store: Arc<MemoryCheckpointStore>,
    job: String,
) -> Running {
    let unit = "documents".to_string();
    let stats = stream.stats();
    let p = Pipeline::new(unit.clone(), Arc::new(stream), sink)
        .job(job.clone())
        .checkpoints(store.clone())
        .config(config);
    let cancel = p.canceller();
    let task = tokio::spawn(p.run());
    Running {
        store,
        job,
        unit,
        cancel,
        task,
        stats,
    }
}

/// The stream pipeline's settings in these tests.
pub fn stream_config() -> PipelineConfig {
    PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 2,
        batch_size: 200,
        linger: Duration::from_millis(20),
        checkpoint_interval: Duration::from_millis(50),
        ..Default::default()
    }
}

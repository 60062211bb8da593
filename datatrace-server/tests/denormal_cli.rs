//! `datatrace run`, `check` and `validate` on jobs with `[[source.documents]]` (real MariaDB
//! and OpenSearch): a `snapshot+cdc` run killed with SIGKILL and run again while the shop
//! changes ends with every document equal to the source (`check`), a damaged index is
//! repaired (`check --repair`), and bad definitions are refused naming the relation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace_testkit::{engine, mariadb, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

const SHOP: &str = "
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL);
CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, price DECIMAL(10,2) NOT NULL);
CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL);
CREATE TABLE product_tags (product_id INT NOT NULL, tag_id INT NOT NULL, PRIMARY KEY (product_id, tag_id), KEY (tag_id));
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, status VARCHAR(16) NOT NULL, KEY (customer_id));
CREATE TABLE order_items (id INT PRIMARY KEY, order_id INT NOT NULL, product_id INT, qty INT NOT NULL, KEY (order_id), KEY (product_id));
INSERT INTO customers SELECT seq, CONCAT('c', seq) FROM seq_1_to_40;
INSERT INTO products SELECT seq, CONCAT('p', seq), seq / 4 FROM seq_1_to_30;
INSERT INTO tags SELECT seq, CONCAT('t', seq) FROM seq_1_to_6;
INSERT INTO product_tags SELECT p.seq, t.seq FROM seq_1_to_30 p JOIN seq_1_to_6 t WHERE (p.seq + t.seq) % 3 = 0;
INSERT INTO orders SELECT seq, 1 + seq % 40, ELT(1 + seq % 3, 'new', 'paid', 'sent') FROM seq_1_to_200;
INSERT INTO order_items SELECT o.seq * 10 + l.seq, o.seq, 1 + (o.seq + l.seq) % 30, l.seq FROM seq_1_to_200 o JOIN seq_1_to_3 l;
";

const DOCUMENTS: &str = r#"
[[source.documents]]
name = "orders"
table = "orders"
routing = "customer_id"

[[source.documents.relations]]
field = "customer"
table = "customers"
kind = "many_to_one"
foreign_key = ["customer_id"]

[[source.documents.relations]]
field = "items"
table = "order_items"
kind = "one_to_many"
foreign_key = ["order_id"]
columns = ["id", "qty"]
nested = true

[[source.documents.relations]]
field = "product"
parent = "items"
table = "products"
kind = "many_to_one"
foreign_key = ["product_id"]

[[source.documents.relations]]
field = "tags"
parent = "product"
table = "tags"
kind = "many_to_many"
through = { table = "product_tags", foreign_key = ["product_id"], target_key = ["tag_id"] }
scalar = "name"

[[source.documents]]
name = "customers"
table = "customers"

[[source.documents.relations]]
field = "orders"
table = "orders"
kind = "one_to_many"
foreign_key = ["customer_id"]
child_documents = true
"#;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-denormal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shop() -> String {
    let db = mariadb().create_database("denormal_cli");
    mariadb().exec(&format!("USE `{db}`; {SHOP}"));
    db
}

fn job(dir: &Path, db: &str, prefix: &str, mode: &str, documents: &str, extra: &str) {
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"docs\"\n{extra}\n[source]\ntype = \"mysql\"\nurl = \"{}\"\nmode = \"{mode}\"\n\
             cdc = {{ server_id = {}, heartbeat_secs = 1 }}\n\
             [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\n\
             settings = {{ shards = 3, replicas = 0 }}\n\
             [settings]\nsink_concurrency = 2\nlinger = 20\ncheckpoint_interval = 50\n{documents}",
            mariadb().url_for(db),
            9400 + std::process::id() % 500,
            engine().url(),
        ),
    )
    .unwrap();
}

fn datatrace(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs")
}

fn run(dir: &Path) -> Child {
    Command::new(BIN)
        .args(["run", "job.toml", "--log-every", "0.5"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("datatrace runs")
}

fn current_ordinal() -> u64 {
    let out = mariadb().exec("SHOW MASTER STATUS");
    let f: Vec<&str> = out.lines().next().unwrap_or("").split('\t').collect();
    let seq: u64 = f[0].rsplit('.').next().unwrap().parse().unwrap();
    (seq << 32) | f[1].parse::<u64>().unwrap()
}

fn checkpoint_ordinal(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["parts"][0]["position"]["ordinal"].as_u64())
        .unwrap_or(0)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn denormal_job_survives_kill_9_and_check_repairs_the_index() {
    let db = shop();
    let prefix = unique_name("dcli");
    let dir = workdir("run");
    job(&dir, &db, &prefix, "snapshot+cdc", DOCUMENTS, "");
    let v = datatrace(&dir, &["validate", "job.toml"]);
    let out = text(&v);
    assert_eq!(v.status.code(), Some(0), "{out}");
    assert!(
        out.contains("orders.customers") || out.contains("customers.orders"),
        "{out}"
    );
    assert!(
        out.contains("fan-out:      items.product: its busiest row is in"),
        "{out}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (o, p, c) = (1 + i * 7 % 200, 1 + i * 11 % 30, 1 + i * 13 % 40);
                mariadb().exec(&format!(
                    "USE `{db}`; BEGIN; UPDATE order_items SET qty = qty + 1, order_id = {o} WHERE id = {};
                     UPDATE products SET name = CONCAT('p', {p}, '-', {i}) WHERE id = {p};
                     UPDATE orders SET customer_id = {c}, status = 'upd{i}' WHERE id = {o};
                     INSERT IGNORE INTO product_tags VALUES ({p}, {}); COMMIT;",
                    10 * (1 + i * 17 % 200) + 1 + i % 3,
                    1 + i % 6
                ));
            }
        })
    };
    let cp = dir.join(".datatrace/docs/documents.json");
    let mut child = run(&dir);
    std::thread::sleep(Duration::from_millis(4000));
    child.kill().unwrap();
    child.wait().unwrap();
    let child = run(&dir);
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let end = current_ordinal();
    let started = Instant::now();
    while checkpoint_ordinal(&cp) < end {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the stream did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));

    let check = datatrace(&dir, &["check", "job.toml", "--recheck-delay", "0.2"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let orders = format!("{prefix}-orders");
    assert_eq!(engine().count(&orders), 200);

    // An older writer damages the index; check finds it, --repair fixes it.
    let v = current_ordinal() + 1;
    mariadb().exec(&format!(
        "USE `{db}`; CREATE TABLE later (id INT); INSERT INTO later VALUES (1)"
    ));
    let found = engine()
        .request("GET", &format!("/{orders}/_search?q=id:7"), None)
        .json();
    let routing = found["hits"]["hits"][0]["_routing"]
        .as_str()
        .unwrap()
        .to_string();
    let r = engine().request(
        "DELETE",
        &format!("/{orders}/_doc/7?routing={routing}&version={v}&version_type=external"),
        None,
    );
    assert!(r.status < 300, "{}", r.body);
    let r = engine().request(
        "PUT",
        &format!("/{orders}/_doc/9999?version={v}&version_type=external"),
        Some(r#"{"id": 9999}"#),
    );
    assert!(r.status < 300, "{}", r.body);
    let check = datatrace(
        &dir,
        &[
            "check",
            "job.toml",
            "--recheck-delay",
            "0.2",
            "--unit",
            "orders",
        ],
    );
    let out = text(&check);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(out.contains("1 missing, 1 extra, 0 different"), "{out}");
    let repair = datatrace(
        &dir,
        &[
            "check",
            "job.toml",
            "--repair",
            "--delete-extra",
            "--recheck-delay",
            "0.2",
        ],
    );
    assert_eq!(repair.status.code(), Some(0), "{}", text(&repair));
    assert_eq!(engine().count(&orders), 200);
}

#[test]
fn denormal_validate_names_the_relation_at_fault() {
    let db = shop();
    let prefix = unique_name("dval");
    let dir = workdir("validate");
    let bad_fk = DOCUMENTS.replacen(
        "foreign_key = [\"order_id\"]",
        "foreign_key = [\"order_idx\"]",
        1,
    );
    job(&dir, &db, &prefix, "full", &bad_fk, "");
    let out = datatrace(&dir, &["validate", "job.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("source.documents[0].relations[1]: document orders, relation items: foreign_key: column \"order_idx\" not found in"),
        "{t}"
    );

    let cycle = DOCUMENTS.replacen(
        "field = \"items\"",
        "field = \"items\"\nparent = \"product\"",
        1,
    );
    job(&dir, &db, &prefix, "full", &cycle, "");
    let out = datatrace(&dir, &["validate", "job.toml", "--offline"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("source.documents[0]: document orders, relation "),
        "{t}"
    );
    assert!(
        t.contains("form a cycle (items -> parent product -> parent items)"),
        "{t}"
    );

    let busy = DOCUMENTS.replacen(
        "routing = \"customer_id\"",
        "routing = \"customer_id\"\nmax_fan_out = 5",
        1,
    );
    job(&dir, &db, &prefix, "full", &busy, "");
    let out = datatrace(&dir, &["validate", "job.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(
            "source.documents[0].relations[2]: document orders, relation items.product: the row "
        ),
        "{t}"
    );
    assert!(t.contains("above max_fan_out (5)"), "{t}");

    job(
        &dir,
        &db,
        &prefix,
        "full",
        DOCUMENTS,
        "[[transforms]]\ntype = \"drop\"\nfields = [\"status\"]",
    );
    let out = datatrace(&dir, &["validate", "job.toml", "--offline"]);
    assert!(
        text(&out)
            .contains("transforms: a job with documents takes transforms inside its definitions"),
        "{}",
        text(&out)
    );

    mariadb().exec(&format!(
        "USE `{db}`; ALTER TABLE order_items ADD CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE"
    ));
    job(&dir, &db, &prefix, "cdc", DOCUMENTS, "");
    let out = datatrace(&dir, &["validate", "job.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("foreign key fk_items_order of "), "{t}");
    assert!(t.contains("ON DELETE CASCADE"), "{t}");
}

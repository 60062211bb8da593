//! Helpers shared by the server tests: temp dirs, running the binary, seeding MariaDB and
//! osmem-server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datatrace_testkit::{engine, mariadb, unique_name};

pub const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

pub fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-srv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn datatrace(dir: &Path, job: &str, args: &[&str]) -> Output {
    std::fs::write(dir.join("job.toml"), job).unwrap();
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// A source database with two tables of `n` rows each, of assorted types.
pub fn source_db(n: u32) -> String {
    let db = mariadb().create_database("dtsrc");
    mariadb().exec(&format!(
        "CREATE TABLE {db}.users (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
           balance DECIMAL(12,2), born DATE, active BOOLEAN, note TEXT);
         CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, user_id INT, total DECIMAL(10,2), \
           placed DATETIME(3), status ENUM('new','paid','shipped'));"
    ));
    let mut users = Vec::new();
    let mut orders = Vec::new();
    for i in 1..=n {
        let note = if i % 7 == 0 {
            "NULL".to_owned()
        } else {
            format!("'note {i} é'")
        };
        users.push(format!(
            "({i}, 'user{i}', {}.{:02}, '19{:02}-0{}-1{}', {}, {note})",
            i * 3,
            i % 100,
            50 + i % 50,
            1 + i % 9,
            i % 10,
            i % 2
        ));
        orders.push(format!(
            "({}, {i}, {}.5, '2024-01-0{} 10:00:00.{:03}', '{}')",
            i + 1_000_000,
            i,
            1 + i % 9,
            i % 1000,
            ["new", "paid", "shipped"][(i % 3) as usize]
        ));
    }
    mariadb().exec(&format!(
        "INSERT INTO {db}.users VALUES {}; INSERT INTO {db}.orders VALUES {};",
        users.join(","),
        orders.join(",")
    ));
    db
}

/// Every row of `db.table` as text, in key order.
pub fn rows(db: &str, table: &str) -> String {
    mariadb().exec(&format!("SELECT * FROM `{db}`.`{table}` ORDER BY 1"))
}

/// Seconds since the epoch in nanoseconds, as a cheap source of variety for kill points.
pub fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % max_ms
}

/// An index of `n` documents with an explicit mapping.
pub fn source_index(n: u32) -> String {
    let index = unique_name("dtsrc");
    let mapping = r#"{"mappings": {"properties": {
        "title": {"type": "keyword"}, "views": {"type": "long"},
        "price": {"type": "double"}, "published": {"type": "date", "format": "strict_date"},
        "draft": {"type": "boolean"}}}}"#;
    let r = engine().request("PUT", &format!("/{index}"), Some(mapping));
    assert!(r.status < 300, "{}", r.body);
    let mut bulk = String::new();
    for i in 1..=n {
        bulk.push_str(&format!("{{\"index\": {{\"_id\": \"doc-{i}\"}}}}\n"));
        bulk.push_str(&format!(
            "{{\"title\": \"title {i}\", \"views\": {}, \"price\": {}.25, \"published\": \"2024-03-{:02}\", \"draft\": {}}}\n",
            i * 10,
            i,
            1 + i % 28,
            i % 2 == 0
        ));
    }
    let r = engine().request("POST", &format!("/{index}/_bulk?refresh=true"), Some(&bulk));
    assert!(
        r.status < 300 && !r.json()["errors"].as_bool().unwrap_or(true),
        "{}",
        r.body
    );
    index
}

pub fn common_prefix(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

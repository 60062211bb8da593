//! Smoke tests: the servers start and answer, and the fault proxy really sits between a client
//! and a server.

use datatrace_testkit::{mariadb, osmem, unique_name};

#[test]
fn mariadb_answers_with_binlog_in_row_format() {
    let db = mariadb();
    let version = db.exec("SELECT VERSION()");
    assert!(version.contains("MariaDB"), "{version}");
    assert_eq!(
        db.exec("SHOW VARIABLES LIKE 'log_bin'").trim(),
        "log_bin\tON"
    );
    assert_eq!(
        db.exec("SELECT @@binlog_format, @@binlog_row_metadata, @@server_id")
            .trim(),
        "ROW\tFULL\t1"
    );
    assert!(db.url().starts_with("mysql://root@127.0.0.1:"));
    assert!(db.socket().exists());
    assert!(db.datadir().join("binlog.index").exists());
}

#[test]
fn mariadb_databases_are_fresh_and_usable() {
    let db = mariadb();
    let a = db.create_database("smoke");
    let b = db.create_database("smoke");
    assert_ne!(a, b);
    db.exec(&format!(
        "CREATE TABLE `{a}`.t (id INT PRIMARY KEY, name VARCHAR(20)); \
         INSERT INTO `{a}`.t VALUES (1, 'ünïcode'), (2, NULL)"
    ));
    assert_eq!(
        db.exec(&format!("SELECT * FROM `{a}`.t ORDER BY id")),
        "1\tünïcode\n2\tNULL\n"
    );
    assert_eq!(db.exec(&format!("SHOW TABLES FROM `{b}`")), "");
    assert!(db.url_for(&a).ends_with(&format!("/{a}")));
}

#[test]
#[should_panic(expected = "doesn't exist")]
fn mariadb_exec_panics_on_sql_errors() {
    mariadb().exec("SELECT * FROM no_such_db.no_such_table");
}

#[test]
fn osmem_answers_with_a_version() {
    let es = osmem();
    let reply = es.request("GET", "/", None);
    assert_eq!(reply.status, 200);
    let number = reply.json()["version"]["number"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!number.is_empty(), "{}", reply.body);
    assert_eq!(es.url(), format!("http://127.0.0.1:{}", es.port()));

    let index = unique_name("smoke");
    let put = es.request(
        "PUT",
        &format!("/{index}/_doc/1?refresh=true"),
        Some(r#"{"n":1}"#),
    );
    assert_eq!(put.status, 201, "{}", put.body);
    let count = es.request("GET", &format!("/{index}/_count"), None);
    assert_eq!(count.json()["count"], 1, "{}", count.body);
}

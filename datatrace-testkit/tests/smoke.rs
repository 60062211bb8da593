//! Smoke tests: the servers start and answer, and the fault proxy really sits between a client
//! and a server.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use datatrace_testkit::{
    engine, mariadb, osmem, unique_name, EngineFlavor, FaultProxy, ProxyStats,
};

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
fn engine_is_the_selected_real_engine_and_answers() {
    let es = engine();
    assert_eq!(es.flavor(), EngineFlavor::selected());
    let reply = es.request("GET", "/", None);
    assert_eq!(reply.status, 200);
    let info = reply.json();
    assert_eq!(info["version"]["number"], es.version(), "{}", reply.body);
    match es.flavor() {
        EngineFlavor::OpenSearch => {
            assert_eq!(
                info["version"]["distribution"], "opensearch",
                "{}",
                reply.body
            );
            assert_eq!(es.major(), 2, "{}", es.version());
        }
        EngineFlavor::Elasticsearch => {
            assert!(info["version"]["distribution"].is_null(), "{}", reply.body);
            assert!(es.major() >= 7, "{}", es.version());
        }
        _ => {}
    }
    assert_eq!(es.url(), format!("http://127.0.0.1:{}", es.port()));

    // A real engine: a write is visible to counts only after a refresh.
    let index = unique_name("smoke");
    let put = es.request("PUT", &format!("/{index}/_doc/1"), Some(r#"{"n":1}"#));
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(es.count(&index), 1);
    // and it refuses what does not fit the mapping
    let bad = es.request(
        "PUT",
        &format!("/{index}/_doc/2"),
        Some(r#"{"n":"not a number"}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        bad.json()["error"]["type"],
        "mapper_parsing_exception",
        "{}",
        bad.body
    );
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

// ---- The fault proxy, in front of the real servers ----

/// A minimal keep-alive HTTP/1.1 client, so the tests control exactly what goes over one
/// connection.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).expect("connect to the proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// Sends a request (the body chunked in two pieces when `chunked`) and reads the reply;
    /// an error when the connection was closed instead.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        chunked: bool,
    ) -> io::Result<(u16, String)> {
        let body = body.unwrap_or("");
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n");
        if chunked {
            let (a, b) = body.split_at(body.len() / 2);
            req.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for piece in [a, b] {
                if !piece.is_empty() {
                    req.push_str(&format!("{:x}\r\n{piece}\r\n", piece.len()));
                }
            }
            req.push_str("0\r\n\r\n");
        } else {
            req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        }
        self.reader.get_mut().write_all(req.as_bytes())?;

        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed without a reply",
            ));
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0usize;
        let mut chunked_reply = false;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header field");
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content-length");
            }
            if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
                chunked_reply = true;
            }
        }
        let mut body = Vec::new();
        if chunked_reply {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok((status, String::from_utf8(body).expect("utf-8 body")))
    }
}

fn count_docs(index: &str) -> u64 {
    engine().request("POST", &format!("/{index}/_refresh"), None);
    let reply = engine().request("GET", &format!("/{index}/_count"), None);
    reply.json()["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}", reply.body))
}

#[test]
fn proxy_relays_many_requests_on_one_keep_alive_connection() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("proxy_keepalive");
    let mut conn = KeepAlive::connect(proxy.addr());
    let (status, root) = conn.send("GET", "/", None, false).unwrap();
    assert_eq!(status, 200);
    assert!(root.contains("\"number\""), "{root}");
    for id in 0..5 {
        let doc = format!(r#"{{"id":{id},"text":"{}"}}"#, "y".repeat(3000));
        let (status, body) = conn
            .send(
                "PUT",
                &format!("/{index}/_doc/{id}"),
                Some(&doc),
                id % 2 == 1,
            )
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let (status, doc) = conn
        .send("GET", &format!("/{index}/_doc/3"), None, false)
        .unwrap();
    assert_eq!(status, 200);
    assert!(doc.contains(&"y".repeat(3000)));
    let (status, _) = conn
        .send("GET", "/no_such_index_here/_doc/1", None, false)
        .unwrap();
    assert_eq!(status, 404);
    assert_eq!(count_docs(&index), 5);
    assert_eq!(
        proxy.stats(),
        ProxyStats {
            connections: 1,
            dropped: 0,
            injected: 0,
            requests: 8,
            forwarded: 8
        }
    );
}

#[test]
fn proxy_injects_http_errors_that_never_reach_the_server() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("proxy_errors");
    let mut conn = KeepAlive::connect(proxy.addr());
    proxy.set_http_error_rate(429, 1.0);
    for id in 0..3 {
        let (status, body) = conn
            .send(
                "PUT",
                &format!("/{index}/_doc/{id}"),
                Some(r#"{"a":1}"#),
                id == 1,
            )
            .unwrap();
        assert_eq!(status, 429);
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["status"], 429);
        assert_eq!(error["error"]["type"], "es_rejected_execution_exception");
    }
    proxy.set_http_error_rate(503, 1.0);
    let (status, _) = conn.send("GET", "/", None, false).unwrap();
    assert_eq!(status, 503);
    assert_eq!(proxy.stats().injected, 4);
    assert_eq!(proxy.stats().forwarded, 0);

    // Half of the requests: roughly half are answered 429, the rest reach the server.
    proxy.set_http_error_rate(429, 0.5);
    let mut injected = 0;
    for id in 0..200 {
        let (status, body) = conn
            .send(
                "PUT",
                &format!("/{index}/_doc/{id}"),
                Some(r#"{"a":2}"#),
                false,
            )
            .unwrap();
        match status {
            429 => injected += 1,
            200 | 201 => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!((60..=140).contains(&injected), "{injected} of 200 injected");
    assert_eq!(proxy.stats().injected, 4 + injected);
    assert_eq!(proxy.stats().forwarded, 200 - injected);
    assert_eq!(proxy.stats().connections, 1);

    proxy.clear();
    assert_eq!(conn.send("GET", "/", None, false).unwrap().0, 200);
}

#[test]
fn proxy_adds_latency_to_http_requests() {
    let proxy = FaultProxy::start(engine().addr());
    let mut conn = KeepAlive::connect(proxy.addr());
    conn.send("GET", "/", None, false).unwrap();
    proxy.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(conn.send("GET", "/", None, false).unwrap().0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn proxy_drops_http_requests_after_the_server_got_them() {
    let proxy = FaultProxy::start(engine().addr());
    let index = unique_name("proxy_drop");
    let mut conn = KeepAlive::connect(proxy.addr());
    assert_eq!(
        conn.send("PUT", &format!("/{index}/_doc/1"), Some("{}"), false)
            .unwrap()
            .0,
        201
    );
    proxy.set_drop_rate(1.0);
    let lost = conn.send("PUT", &format!("/{index}/_doc/2"), Some("{}"), false);
    assert!(lost.is_err(), "{lost:?}");
    assert_eq!(
        count_docs(&index),
        2,
        "the dropped request reached the server"
    );
    assert_eq!(proxy.stats().dropped, 1);
    proxy.set_drop_rate(0.0);
    let mut again = KeepAlive::connect(proxy.addr());
    assert_eq!(
        again
            .send("GET", &format!("/{index}/_doc/2"), None, false)
            .unwrap()
            .0,
        200
    );
}

#[test]
fn proxy_relays_mysql_in_tcp_mode() {
    let db = mariadb();
    let proxy = FaultProxy::start(db.addr());
    let name = db.create_database("proxy_tcp");
    let out = db
        .exec_at(proxy.addr(), &format!("CREATE TABLE `{name}`.t (v MEDIUMTEXT); INSERT INTO `{name}`.t VALUES (REPEAT('z', 200000)); SELECT LENGTH(v) FROM `{name}`.t"))
        .unwrap();
    assert_eq!(out.trim(), "200000");
    assert_eq!(proxy.stats().requests, 0, "MySQL is not HTTP");

    proxy.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(db.exec_at(proxy.addr(), "SELECT 1").unwrap().trim(), "1");
    // Greeting, login and query each wait at least once.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    proxy.set_latency(Duration::ZERO);

    proxy.set_drop_rate(1.0);
    let refused = db.exec_at(proxy.addr(), "SELECT 1");
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(proxy.stats().dropped, 1);
    proxy.set_drop_rate(0.0);
}

#[test]
fn proxy_drop_connections_cuts_open_connections() {
    let db = mariadb();
    let proxy = FaultProxy::start(db.addr());
    let addr = proxy.addr();
    // Far longer than any cut can take, however loaded the machine.
    let slow = std::thread::spawn(move || mariadb().exec_at(addr, "SELECT SLEEP(600)"));
    while proxy.stats().connections == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    proxy.drop_connections();
    let result = slow.join().unwrap();
    assert!(result.is_err(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the query was not cut"
    );
    assert_eq!(proxy.stats().dropped, 1);
    // New connections work.
    assert_eq!(db.exec_at(addr, "SELECT 2").unwrap().trim(), "2");
}

#[test]
fn kafka_broker_is_a_real_kraft_broker_that_listens() {
    let kafka = datatrace_testkit::kafka();
    assert!(kafka.version().starts_with("4."), "{}", kafka.version());
    assert_eq!(kafka.bootstrap(), format!("127.0.0.1:{}", kafka.port()));
    // A Kafka broker answers an ApiVersions request (key 18, version 0) on its port.
    let mut s = TcpStream::connect(kafka.addr()).expect("connect to the broker");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let client = b"smoke";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes());
    req.extend_from_slice(&0i16.to_be_bytes());
    req.extend_from_slice(&7i32.to_be_bytes());
    req.extend_from_slice(&(client.len() as i16).to_be_bytes());
    req.extend_from_slice(client);
    s.write_all(&(req.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..4], &7i32.to_be_bytes(), "correlation id echoed");
    assert_eq!(&reply[4..6], &0i16.to_be_bytes(), "no error code");
}

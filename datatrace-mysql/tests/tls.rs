//! TLS to MariaDB (`cargo test tls`): a private server started with test-generated
//! certificates; every `ssl-mode`, CA checks, client certificates, and the clear errors of a
//! wrong CA, a wrong name and a server without TLS. Snapshot reads and a binlog stream run
//! over TLS too.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{Emitted, Emitter, MemoryCheckpointStore, Part, Pipeline, Source};
use datatrace_mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlError, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions, SslMode,
};
use datatrace_testkit::{mariadb, MariaDb, TestPki};
use mysql_async::prelude::Queryable;

/// The cipher of a pooled session ("" when unencrypted).
async fn cipher(conn: &MySqlConnection) -> String {
    let mut c = conn.get().await.expect("session");
    let row: Option<(String, String)> = c
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .expect("status");
    row.map(|(_, v)| v).unwrap_or_default()
}

async fn connect(cfg: ConnectionConfig) -> Result<MySqlConnection, MySqlError> {
    MySqlConnection::connect(&cfg.clone()).await
}

fn url(db: &MariaDb, query: &str) -> String {
    format!("{}/mysql{query}", db.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_every_ssl_mode_against_a_server_with_tls() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let db = MariaDb::with_tls(&pki);
    let ca = pki.ca().display().to_string();

    // DISABLED: plain, even though the server offers TLS.
    let c = connect(ConnectionConfig::new(url(&db, "?ssl-mode=DISABLED")))
        .await
        .expect("DISABLED");
    assert!(!c.is_encrypted());
    assert_eq!(cipher(&c).await, "");

    // PREFERRED (also the default): encrypted, certificate unchecked.
    for u in [url(&db, ""), url(&db, "?ssl-mode=preferred")] {
        let c = connect(ConnectionConfig::new(u)).await.expect("PREFERRED");
        assert!(c.is_encrypted());
        assert_ne!(cipher(&c).await, "", "PREFERRED must encrypt a TLS server");
    }

    // REQUIRED, VERIFY_CA and VERIFY_IDENTITY, as URL parameters and as fields.
    let by_url = [
        "?ssl-mode=REQUIRED".to_string(),
        format!("?ssl-mode=VERIFY_CA&ssl-ca={ca}"),
        format!("?ssl-ca={ca}"), // a CA alone: VERIFY_CA
        format!("?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ];
    for q in &by_url {
        let c = connect(ConnectionConfig::new(url(&db, q)))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_ne!(cipher(&c).await, "", "{q}");
    }
    for mode in [
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ] {
        let cfg = ConnectionConfig::new(url(&db, ""))
            .ssl_mode(mode)
            .ssl_ca(pki.ca());
        let c = connect(cfg).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_ne!(cipher(&c).await, "", "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_ca_wrong_name_and_no_tls_are_clear_errors() {
    // The certificate carries only a DNS name, not the address connected to.
    let pki = TestPki::generate(&["mariadb.test"]);
    let db = MariaDb::with_tls(&pki);

    // A CA that did not sign the server's certificate.
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let q = format!("?ssl-mode={mode}&ssl-ca={}", pki.other_ca().display());
        let e = connect(ConnectionConfig::new(url(&db, &q)))
            .await
            .expect_err("a wrong CA must fail");
        let text = e.to_string();
        assert!(matches!(e, MySqlError::Tls { .. }), "{mode}: {e:?}");
        assert!(
            text.contains("not signed by a trusted CA") && text.contains("ssl-ca"),
            "{mode}: {text}"
        );
        assert!(text.contains(mode), "the mode is named: {text}");
    }

    // The right CA but another name: VERIFY_IDENTITY fails naming the cause, VERIFY_CA
    // (which checks only the chain) connects.
    let q = format!("?ssl-mode=VERIFY_IDENTITY&ssl-ca={}", pki.ca().display());
    let e = connect(ConnectionConfig::new(url(&db, &q)))
        .await
        .expect_err("a certificate for another name must fail VERIFY_IDENTITY");
    assert!(e.to_string().contains("not issued for the host"), "{e}");
    let q = format!("?ssl-mode=VERIFY_CA&ssl-ca={}", pki.ca().display());
    let c = connect(ConnectionConfig::new(url(&db, &q)))
        .await
        .expect("VERIFY_CA checks the chain, not the name");
    assert_ne!(cipher(&c).await, "");

    // A server without TLS (the shared one): REQUIRED and VERIFY_CA fail clearly,
    // PREFERRED connects unencrypted.
    let plain = mariadb();
    for q in [
        "?ssl-mode=REQUIRED".to_string(),
        format!("?ssl-mode=VERIFY_CA&ssl-ca={}", pki.ca().display()),
    ] {
        let e = connect(ConnectionConfig::new(url(plain, &q)))
            .await
            .expect_err("no TLS under REQUIRED must fail");
        assert!(matches!(e, MySqlError::Tls { .. }), "{q}: {e:?}");
        assert!(e.to_string().contains("offers no TLS"), "{q}: {e}");
    }
    let c = connect(ConnectionConfig::new(url(plain, "?ssl-mode=PREFERRED")))
        .await
        .expect("PREFERRED falls back to plain");
    assert!(!c.is_encrypted());

    // Files that are missing or not PEM name the setting and the path.
    let q = "?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem";
    let e = connect(ConnectionConfig::new(url(&db, q)))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("ssl-ca") && e.to_string().contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let cfg = ConnectionConfig::new(url(&db, ""))
        .ssl_mode(SslMode::Required)
        .ssl_client_cert(pki.client_cert(), pki.ca());
    let e = connect(cfg).await.unwrap_err();
    assert!(e.to_string().contains("ssl-key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_and_users_that_require_tls() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let db = MariaDb::with_tls(&pki);
    db.exec(
        "CREATE USER 'x509'@'%' REQUIRE X509; GRANT ALL ON *.* TO 'x509'@'%';
         CREATE USER 'tlsonly'@'%' REQUIRE SSL; GRANT ALL ON *.* TO 'tlsonly'@'%';",
    );
    let at = |user: &str, q: &str| format!("mysql://{user}@127.0.0.1:{}/mysql{q}", db.port());

    // REQUIRE SSL: refused without TLS, accepted with it.
    let e = connect(ConnectionConfig::new(at("tlsonly", "?ssl-mode=DISABLED")))
        .await
        .unwrap_err();
    assert!(matches!(e, MySqlError::AccessDenied { .. }), "{e:?}");
    connect(ConnectionConfig::new(at("tlsonly", "?ssl-mode=REQUIRED")))
        .await
        .expect("REQUIRE SSL over TLS");

    // REQUIRE X509: refused without a client certificate, accepted with one.
    let ca = pki.ca().display().to_string();
    let e = connect(ConnectionConfig::new(at(
        "x509",
        &format!("?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    )))
    .await
    .unwrap_err();
    assert!(matches!(e, MySqlError::AccessDenied { .. }), "{e:?}");
    let q = format!(
        "?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}&ssl-cert={}&ssl-key={}",
        pki.client_cert().display(),
        pki.client_key().display()
    );
    let c = connect(ConnectionConfig::new(at("x509", &q)))
        .await
        .expect("REQUIRE X509 with a client certificate");
    let mut s = c.get().await.unwrap();
    let user: Option<String> = s.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(user.as_deref(), Some("x509@%"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_snapshot_copy_and_binlog_stream_run_encrypted() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let db = MariaDb::with_tls(&pki);
    db.exec(
        "CREATE DATABASE s; CREATE DATABASE d;
         USE s; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000;",
    );
    // Only TLS sessions are allowed from now on: every reader, writer and the binlog dump.
    db.exec("SET GLOBAL require_secure_transport = ON");
    let cfg = |database: &str| {
        ConnectionConfig::new(format!("{}/{database}", db.url()))
            .ssl_mode(SslMode::VerifyIdentity)
            .ssl_ca(pki.ca())
    };
    let src = MySqlConnection::connect(&cfg("s")).await.expect("source");
    let dst = MySqlConnection::connect(&cfg("d")).await.expect("target");
    let info = table_info(&src, "s", "t").await.unwrap();
    let source = Arc::new(
        MySqlSource::new(
            src.clone(),
            info,
            SourceOptions {
                chunk_rows: 500,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let sink = Arc::new(
        MySqlSink::new(
            dst,
            SinkOptions {
                create_table: true,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let report = Pipeline::new("s.t", source, sink)
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .run()
        .await
        .expect("copy over TLS");
    assert_eq!(report.written, 3000);
    let check = MySqlConnection::connect(&cfg("d")).await.unwrap();
    let n: Option<u64> = check
        .get()
        .await
        .unwrap()
        .query_first("SELECT COUNT(*) FROM d.t")
        .await
        .unwrap();
    assert_eq!(n, Some(3000));

    // The binlog stream over TLS.
    let start = current_position(&src).await.unwrap();
    check
        .get()
        .await
        .unwrap()
        .query_drop("INSERT INTO s.t VALUES (5001, 'a'), (5002, 'b')")
        .await
        .unwrap();
    let stream = BinlogSource::new(
        src,
        CdcOptions {
            server_id: 7901,
            start: StartAt::Position {
                file: start.file.clone(),
                pos: start.pos,
            },
            heartbeat_secs: 1,
            ..CdcOptions::tables(["s.*"])
        },
    )
    .unwrap();
    let stats = stream.stats();
    let (mut em, mut rx) = Emitter::for_test(16, 4);
    let task = tokio::spawn(async move { stream.read(&Part::whole(), None, &mut em).await });
    let mut ids = Vec::new();
    while ids.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Emitted::Records(r))) => {
                ids.extend(r.iter().map(|r| r.values[0].as_i64().unwrap()))
            }
            Ok(Some(_)) => {}
            other => panic!("stream over TLS ended: {other:?}"),
        }
    }
    task.abort();
    assert_eq!(ids, vec![5001, 5002]);
    assert_eq!(stats.reconnects.load(Ordering::Relaxed), 0);
}

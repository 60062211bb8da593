//! https and every authentication (`cargo test tls`), against the real search engine of the
//! test run behind the testkit's TLS terminator (the engine runs without its security
//! plugin) and a proxy that answers 401 unless the expected `Authorization` header comes:
//! a CA file, a wrong CA, the insecure mode, client certificates, basic auth, API keys (clear
//! and encoded), bearer tokens, secrets from environment variables and files, and an Elastic
//! Cloud `cloud_id`. Every accepted connection writes and reads a document.

use std::sync::Arc;

use base64::Engine;
use datatrace_core::testing::MemorySource;
use datatrace_core::{Column, DataType, MemoryCheckpointStore, Pipeline, Record, Schema, Value};
use datatrace_es::{ConnectionConfig, EsClient, EsError, EsSink, SinkConfig};
use datatrace_testkit::{engine, unique_name, ClientAuth, FaultProxy, TestPki, TlsTerminator};
use serde_json::json;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The engine behind a proxy that wants one of `auth`, behind TLS.
struct Secured {
    pki: TestPki,
    _proxy: FaultProxy,
    tls: TlsTerminator,
}

fn secured(auth: Vec<String>, client_auth: ClientAuth) -> Secured {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let proxy = FaultProxy::start(engine().addr());
    proxy.require_authorization(Some(auth));
    let tls = TlsTerminator::start(proxy.addr(), &pki, client_auth);
    Secured {
        pki,
        _proxy: proxy,
        tls,
    }
}

fn config(v: serde_json::Value) -> ConnectionConfig {
    let mut c: ConnectionConfig = serde_json::from_value(v).expect("configuration");
    c.retry.max_attempts = 2;
    c
}

/// Connects and writes then reads back one document.
async fn round_trip(c: &ConnectionConfig) -> Result<(), EsError> {
    let client = EsClient::connect(c).await?;
    let index = unique_name("tls");
    let schema = Arc::new(
        Schema::new("t", vec![Column::new("id", DataType::Int)])
            .with_primary_key(&["id"])
            .unwrap(),
    );
    let source = Arc::new(MemorySource::new(vec![Record::read(
        schema,
        vec![Value::Int(7)],
    )]));
    let sink = EsSink::connect(
        c,
        SinkConfig {
            index: index.clone(),
            ..Default::default()
        },
    )
    .await?;
    Pipeline::new("t", source, Arc::new(sink))
        .checkpoints(Arc::new(MemoryCheckpointStore::new()))
        .run()
        .await
        .expect("write over TLS");
    let doc = client
        .json(
            "read back",
            elasticsearch::http::Method::Get,
            &format!("/{index}/_doc/7"),
            &[],
            None,
            Some(&index),
        )
        .await?;
    assert_eq!(doc["_source"]["id"], 7, "{doc}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_basic_auth_and_wrong_settings() {
    let s = secured(
        vec![format!("Basic {}", b64("elastic:pw"))],
        ClientAuth::None,
    );
    let ca = s.pki.ca();
    let good = json!({
        "urls": [s.tls.url()], "username": "elastic", "password": "pw",
        "tls": {"ca_cert": ca}
    });
    round_trip(&config(good.clone()))
        .await
        .expect("https with the CA");

    // The wrong password: a 401, an authentication error.
    let mut wrong = good.clone();
    wrong["password"] = json!("nope");
    let e = EsClient::connect(&config(wrong)).await.unwrap_err();
    assert!(matches!(e, EsError::Auth { status: 401, .. }), "{e:?}");

    // The system roots or another CA do not trust the test CA: a clear error, no panic.
    let mut no_ca = good.clone();
    no_ca["tls"] = json!({});
    let e = EsClient::connect(&config(no_ca))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    let mut other = good.clone();
    other["tls"] = json!({"ca_cert": s.pki.other_ca()});
    let e = EsClient::connect(&config(other))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // The insecure mode accepts any certificate (and says so in a warning).
    let mut insecure = good.clone();
    insecure["tls"] = json!({"verify": false});
    round_trip(&config(insecure)).await.expect("insecure mode");
    assert!(s.tls.failed_handshakes() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_are_presented() {
    let s = secured(
        vec![format!("Basic {}", b64("pki:x"))],
        ClientAuth::Required,
    );
    let base = json!({
        "urls": [s.tls.url()], "username": "pki", "password": "x",
        "tls": {"ca_cert": s.pki.ca()}
    });
    let e = EsClient::connect(&config(base.clone())).await.unwrap_err();
    assert!(matches!(e, EsError::Unreachable { .. }), "{e:?}");
    let mut with_cert = base.clone();
    with_cert["tls"]["client_cert"] = json!(s.pki.client_cert());
    with_cert["tls"]["client_key"] = json!(s.pki.client_key());
    round_trip(&config(with_cert))
        .await
        .expect("with a client certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_api_keys_bearer_tokens_and_secrets_from_env_and_files() {
    let s = secured(
        vec![
            format!("ApiKey {}", b64("key-id:key-secret")),
            "Bearer token-123.abc".to_string(),
        ],
        ClientAuth::None,
    );
    let url = s.tls.url();
    let ca = s.pki.ca();
    // An API key in clear (`id:key`) and in the encoded form.
    for key in ["key-id:key-secret".to_string(), b64("key-id:key-secret")] {
        let c = config(json!({"urls": [url], "api_key": key, "tls": {"ca_cert": ca}}));
        round_trip(&c).await.expect("API key");
    }
    // A bearer token from an environment variable, an API key from a file.
    std::env::set_var("DT_TEST_BEARER_TOKEN", "token-123.abc");
    let c = config(json!({
        "urls": [url], "bearer_token": {"env": "DT_TEST_BEARER_TOKEN"}, "tls": {"ca_cert": ca}
    }));
    round_trip(&c)
        .await
        .expect("bearer token from the environment");
    assert!(!format!("{c:?}").contains("token-123"));
    assert_eq!(
        serde_json::to_value(&c).unwrap()["bearer_token"],
        json!({"env": "DT_TEST_BEARER_TOKEN"}),
        "written back as the variable's name"
    );
    let file = s.pki.dir().join("api-key.txt");
    std::fs::write(&file, format!("{}\n", b64("key-id:key-secret"))).unwrap();
    let c = config(json!({"urls": [url], "api_key": {"file": file}, "tls": {"ca_cert": ca}}));
    round_trip(&c).await.expect("API key from a file");
    // A wrong token is refused.
    let c = config(json!({"urls": [url], "bearer_token": "stale", "tls": {"ca_cert": ca}}));
    let e = EsClient::connect(&c).await.unwrap_err();
    assert!(matches!(e, EsError::Auth { status: 401, .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_elastic_cloud_id_names_the_endpoint() {
    let s = secured(
        vec![format!("Basic {}", b64("elastic:cloud"))],
        ClientAuth::None,
    );
    // A Cloud ID is `name:base64(host:port$es-id$kibana-id)` for https://es-id.host:port;
    // here es-id "127" and host "0.0.1" make https://127.0.0.1:PORT, the terminator.
    let port = s.tls.addr().port();
    let cloud_id = format!(
        "test-deployment:{}",
        b64(&format!("0.0.1:{port}$127$kibana"))
    );
    let c = config(json!({
        "cloud_id": cloud_id, "username": "elastic", "password": "cloud",
        "tls": {"ca_cert": s.pki.ca()}
    }));
    assert_eq!(
        c.node_urls().unwrap(),
        vec![format!("https://127.0.0.1:{port}")]
    );
    round_trip(&c).await.expect("Elastic Cloud endpoint");
}

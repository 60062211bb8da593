//! Headers, errors, HTTPS and the data sources' secrets.

use datatrace_testkit::{mariadb, unique_name, TestPki};
use serde_json::json;

use crate::common::{request_full, workdir, Server, TOKEN};
use crate::fixtures::{items, mysql_ds, user};

fn auth() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

#[test]
fn answers_carry_security_headers_and_json_errors() {
    let dir = workdir("headers");
    let s = Server::start(&dir);
    // The UI: only its own script and style, never framed.
    let (st, head, body) = request_full(&s.addr, "GET", "/", &[], None);
    assert_eq!(st, 200);
    assert!(body.contains("/ui/app.js"), "{body}");
    for h in [
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(h), "{h} missing in {head}");
    }
    assert!(
        !head.contains("unsafe-inline") && !head.contains("unsafe-eval"),
        "{head}"
    );
    let (st, head, _) = request_full(&s.addr, "GET", "/ui/app.js", &[], None);
    assert_eq!(st, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    // API answers hold data: never cached, and load nothing when opened as a page.
    let (st, head, _) = request_full(&s.addr, "GET", "/api/tasks", &[&auth()], None);
    assert_eq!(st, 200);
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let (st, head, _) = request_full(&s.addr, "GET", "/api/tasks", &[], None);
    assert_eq!(st, 401);
    assert!(head.contains("cache-control: no-store"), "{head}");
    // No HSTS over plain HTTP.
    assert!(!head.contains("strict-transport-security"), "{head}");

    // Wrong path ids and unknown routes answer JSON naming what is wrong.
    let (st, head, body) = request_full(&s.addr, "GET", "/api/tasks/abc", &[&auth()], None);
    assert_eq!(st, 400, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["field"], "id", "{v}");
    let (st, head, body) = request_full(&s.addr, "GET", "/api/nothing-here", &[&auth()], None);
    assert_eq!(st, 404, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("no such route")
    );
    let (st, _, body) = request_full(&s.addr, "GET", "/ui/nothing.js", &[], None);
    assert_eq!(st, 404);
    assert!(body.contains("error"), "{body}");
    // Query parameters too.
    let (st, _, body) = request_full(&s.addr, "GET", "/api/logs?limit=many", &[&auth()], None);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"field\":\"limit\""), "{body}");

    // The scheme of the Authorization header is case-insensitive (RFC 9110).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let h = format!("Authorization: {scheme} {TOKEN}");
        let (st, _, _) = request_full(&s.addr, "GET", "/api/tasks", &[&h], None);
        assert_eq!(st, 200, "scheme {scheme}");
    }

    // Request size limit (1 MiB) on every route that takes a JSON body, sign-in included,
    // before the body is parsed.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let (_, _, doc) = request_full(&s.addr, "GET", "/api/openapi.json", &[&auth()], None);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let mut with_body = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("requestBody").is_some() {
                with_body.push((method.to_uppercase(), path.replace("{id}", "1")));
            }
        }
    }
    assert!(with_body.len() >= 8, "{with_body:?}");
    for (method, path) in &with_body {
        let (st, head, body) = request_full(&s.addr, method, path, &[&auth()], Some(&big));
        assert_eq!(st, 413, "{method} {path}: {body}");
        assert!(head.contains("content-type: application/json"), "{head}");
    }
    let (st, _, _) = request_full(
        &s.addr,
        "POST",
        "/api/tasks",
        &[&auth()],
        Some(&big[..1000]),
    );
    assert_ne!(st, 413, "a small body passes the limit");
    // Settings are bounded at parse time: no task that would allocate terabytes.
    for (k, v) in [
        ("batch_size", json!(1_000_000_000_000u64)),
        ("batch_size", json!(9_223_372_036_854_775_807u64)),
        ("channel_capacity", json!(10_000_000_000u64)),
        ("concurrency", json!(1_000_000_000u64)),
    ] {
        let task = json!({"name": unique_name("big"), "source": {"type": "generator", "rows": 10},
                          "target": {"type": "discard"}, "settings": {k: v}});
        let (st, e) = s.call("POST", "/api/tasks", Some(&task));
        assert_eq!(st, 400, "{k} = {v}: {e}");
        assert_eq!(e["field"], format!("settings.{k}"), "{e}");
    }
}

#[test]
fn repeated_failed_sign_ins_get_429_until_the_lock_ends() {
    let dir = workdir("throttle");
    let s = Server::start(&dir);
    let good = "Right-Pass-12345";
    for name in ["tess", "tom"] {
        s.ok(
            "POST",
            "/api/users",
            Some(&json!({"username": name, "password": good, "role": "viewer"})),
        );
    }
    let login = |user: &str, pw: &str| {
        request_full(
            &s.addr,
            "POST",
            "/api/login",
            &[],
            Some(&json!({"username": user, "password": pw}).to_string()),
        )
    };
    // A success resets the count: four failures, a success, four more are all checked.
    for _ in 0..4 {
        assert_eq!(login("tess", "wrong-password-1").0, 401);
    }
    assert_eq!(login("tess", good).0, 200);
    for _ in 0..4 {
        assert_eq!(login("tess", "wrong-password-2").0, 401);
    }
    // The fifth failure in a row locks the user from this address; then even the right
    // password is refused (not checked) with 429 and Retry-After.
    assert_eq!(login("tess", "wrong-password-3").0, 401);
    for pw in ["wrong-password-4", good] {
        let (st, head, body) = login("tess", pw);
        assert_eq!(st, 429, "{body}");
        let secs: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("retry-after: "))
            .unwrap_or_else(|| panic!("no Retry-After: {head}"))
            .trim()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&secs), "{secs}");
        assert!(body.contains("too many failed sign-ins"), "{body}");
    }
    // Another user from the same address is not locked.
    assert_eq!(login("tom", good).0, 200);
    // The refusals are audited.
    let audit = s.ok("GET", "/api/audit?actor=tess&action=login&limit=50", None);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"] == "too many failed sign-ins" && r["outcome"] == "denied"),
        "{audit}"
    );
}

#[test]
fn https_with_a_certificate_and_a_warning_for_plain_http_elsewhere() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let dir = workdir("tls");
    let cert = pki.server_cert();
    let key = pki.server_key();
    let s = Server::start_args(
        &dir,
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(s.scheme, "https");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.ca()).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = s.url();
    let (status, hsts, body) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let r = client
            .get(format!("{url}/api/tasks"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let hsts = r
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), hsts, r.text().await.unwrap())
    });
    assert_eq!(status, 200, "{body}");
    assert!(
        hsts.unwrap_or_default().contains("max-age="),
        "HSTS over TLS"
    );
    // Plain HTTP to the TLS port gets nothing useful.
    let (st, _, _) = request_full(&s.addr, "GET", "/healthz", &[], None);
    assert_ne!(st, 200);
    // A client that does not trust the CA is refused.
    let refused = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_err()
    });
    assert!(refused);

    // One file alone, or a wrong file, is a clear start-up error.
    let err = Server::start_args(
        &workdir("tls-half"),
        &[],
        &["--tls-cert", cert.to_str().unwrap()],
    )
    .err()
    .unwrap();
    assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    let err = Server::start_args(
        &workdir("tls-bad"),
        &[],
        &[
            "--tls-cert",
            key.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .err()
    .unwrap();
    assert!(err.contains("--tls-cert"), "{err}");

    // Plain HTTP beyond loopback: served, with a warning on stderr and in the server log.
    let wide = Server::start_args(&workdir("wide"), &[], &["--listen", "0.0.0.0:0"]).unwrap();
    let out = wide.output();
    assert!(
        out.contains("warning: listening on 0.0.0.0:") && out.contains("--tls-cert"),
        "{out}"
    );
    let logs = wide.ok("GET", "/api/logs", None).to_string();
    assert!(logs.contains("plain HTTP"), "{logs}");
    let quiet = Server::start(&workdir("quiet"));
    assert!(!quiet.output().contains("warning: listening"));
}

#[test]
fn stored_secrets_stay_with_their_server() {
    let dir = workdir("ds-secrets");
    let s = Server::start(&dir);
    let password = "Stay-Home-7731";
    let u = user(password);
    let db = items(3);
    let id = mysql_ds(&s, &u, password, &db);
    let port = mariadb().port();

    // Another host, or another port, without the password: refused, naming the field.
    for url in [
        format!("mysql://{u}@localhost:{port}/{db}"),
        format!("mysql://{u}@127.0.0.1:{}/{db}", port + 1),
    ] {
        let (st, e) = s.call(
            "PUT",
            &format!("/api/datasources/{id}"),
            Some(&json!({"name": "moved", "type": "mysql", "url": url})),
        );
        assert_eq!(
            (st, e["field"].as_str()),
            (400, Some("password")),
            "{url}: {e}"
        );
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("give the password again"),
            "{e}"
        );
    }
    // Another database on the same server keeps it.
    let other = items(1);
    s.ok(
        "PUT",
        &format!("/api/datasources/{id}"),
        Some(&json!({"name": "moved", "type": "mysql", "url": format!("mysql://{u}@127.0.0.1:{port}/{other}")})),
    );
    assert_eq!(
        s.ok("POST", &format!("/api/datasources/{id}/test"), None)["ok"],
        true
    );
    // With the password given again the move is accepted.
    s.ok(
        "PUT",
        &format!("/api/datasources/{id}"),
        Some(&json!({"name": "moved", "type": "mysql", "url": format!("mysql://{u}@localhost:{port}/{db}"), "password": password})),
    );

    // The test answer shows the grants without password hashes.
    let t = s.ok("POST", &format!("/api/datasources/{id}/test"), None);
    assert_eq!(t["ok"], true, "{t}");
    let grants = t["details"].to_string();
    assert!(grants.contains("GRANT"), "{grants}");
    let hash = mariadb().exec(&format!(
        "SELECT authentication_string FROM mysql.user WHERE user = '{u}' LIMIT 1"
    ));
    let hash = hash.trim();
    assert!(hash.starts_with('*') && hash.len() == 41, "{hash}");
    assert!(
        !grants.contains(&hash[1..]),
        "a password hash in the answer: {grants}"
    );
    assert!(grants.contains("IDENTIFIED BY PASSWORD '***'"), "{grants}");

    // A password in the URL's query string is refused, not stored and listed.
    for url in [
        format!("mysql://{u}@127.0.0.1:{port}/{db}?password={password}"),
        format!("mysql://{u}@127.0.0.1:{port}/{db}?ssl-mode=DISABLED&PASSWORD={password}"),
    ] {
        let (st, e) = s.call(
            "POST",
            "/api/datasources",
            Some(&json!({"name": unique_name("q"), "type": "mysql", "url": url})),
        );
        assert_eq!((st, e["field"].as_str()), (400, Some("url")), "{e}");
    }
    let list = s.ok("GET", "/api/datasources", None).to_string();
    assert!(!list.contains(password), "{list}");
}

#[test]
fn a_short_password_neither_mangles_nor_reveals_log_lines() {
    // The password is a word the logs use ("items"): before, every "items" became "***".
    let dir = workdir("short-pw");
    let s = Server::start(&dir);
    let password = "items";
    let u = user(password);
    let db = items(50);
    let src = mysql_ds(&s, &u, password, &db);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "short", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"type": "discard"}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    crate::common::wait_for(60, "done", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    let logs = s
        .ok("GET", &format!("/api/tasks/{id}/logs?limit=100"), None)
        .to_string();
    assert!(logs.contains(&format!("{db}.items")), "{logs}");
    assert!(!logs.contains("***"), "mangled: {logs}");
}

#[test]
fn the_master_key_is_never_replaced_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workdir("key");
    let mut s = Server::start(&dir);
    s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "k", "type": "mysql", "url": "mysql://u@127.0.0.1:1/d", "password": "Secret-123456"})),
    );
    s.kill();
    let data = dir.join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("metadata.sqlite")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);

    // The key file gone: refused at start, and no new key written.
    let key = std::fs::read(data.join("master.key")).unwrap();
    std::fs::remove_file(data.join("master.key")).unwrap();
    let err = match Server::start_with(&dir, &[]) {
        Ok(_) => panic!("started without its key"),
        Err(e) => e,
    };
    assert!(
        err.contains("does not exist") && err.contains("restore"),
        "{err}"
    );
    assert!(!data.join("master.key").exists(), "a new key was written");

    // A key kept elsewhere (--master-key-file) works, and a world-readable data dir is
    // narrowed at start.
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("dt.key"), &key).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Server::start_args(
        &dir,
        &[],
        &["--master-key-file", keys.join("dt.key").to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(
        s.ok("GET", "/api/datasources", None)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(mode(&data), 0o700);
}

//! Users and roles, sessions with CSRF, API tokens, the first admin from the command line,
//! and the audit log.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::{request_full, workdir, Server, BIN, TOKEN};

const PASSWORD: &str = "a long enough Pa55word";

fn server_auth() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Adds a user through the API (as the server token).
fn add_user(s: &Server, name: &str, role: &str) {
    let (st, _, body) = request_full(
        &s.addr,
        "POST",
        "/api/users",
        &[&server_auth()],
        Some(&json!({"username": name, "password": PASSWORD, "role": role}).to_string()),
    );
    assert_eq!(st, 201, "{body}");
    assert!(
        !body.contains("argon2") && !body.contains(PASSWORD),
        "{body}"
    );
}

/// Signs in; checks the session cookie's attributes.
fn login(s: &Server, name: &str, password: &str) -> Result<(), (u16, String)> {
    let (st, head, body) = request_full(
        &s.addr,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"username": name, "password": password}).to_string()),
    );
    if st != 200 {
        return Err((st, body));
    }
    let set = head
        .lines()
        .find(|l| l.starts_with("set-cookie: dt_session="))
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    for attr in ["httponly", "samesite=strict", "path=/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("secure"), "no Secure over plain HTTP: {set}");
    assert!(json_of(&body)["csrf"].as_str().is_some(), "{body}");
    Ok(())
}

/// Signs in and creates an API token; the token.
fn api_token(s: &Server, name: &str) -> String {
    let (cookie, csrf) = login_exact(s, name);
    let (st, _, body) = request_full(
        &s.addr,
        "POST",
        "/api/tokens",
        &[
            &format!("Cookie: {cookie}"),
            &format!("X-CSRF-Token: {csrf}"),
        ],
        Some(r#"{"name": "ci"}"#),
    );
    assert_eq!(st, 201, "{body}");
    let token = json_of(&body)["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dtk_"), "{token}");
    token
}

/// Signs in keeping the cookie's case (the test client lower-cases heads).
fn login_exact(s: &Server, name: &str) -> (String, String) {
    use std::io::{Read, Write};
    let body = json!({"username": name, "password": PASSWORD}).to_string();
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.addr,
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{raw}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let csrf = json_of(rest)["csrf"].as_str().unwrap().to_owned();
    (cookie, csrf)
}

#[test]
fn every_route_checks_its_role() {
    let dir = workdir("roles");
    let s = Server::start(&dir);
    let mut creds = Vec::new();
    for role in ["viewer", "operator", "admin"] {
        let name = format!("{role}-user");
        add_user(&s, &name, role);
        creds.push((
            role,
            format!("Authorization: Bearer {}", api_token(&s, &name)),
        ));
    }
    let rank = |r: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    // The OpenAPI document is built from the same table as the router.
    let (st, _, doc) = request_full(&s.addr, "GET", "/api/openapi.json", &[&server_auth()], None);
    assert_eq!(st, 200);
    let doc = json_of(&doc);
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("security") == Some(&json!([])) {
                continue; // /healthz, /api/login
            }
            let needed = op["x-required-role"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}"));
            let concrete = path.replace("{id}", "999999").replace("{letter}", "1");
            let m = method.to_uppercase();
            let body = matches!(m.as_str(), "POST" | "PUT").then_some("{}");
            let (st, _, b) = request_full(&s.addr, &m, &concrete, &[], body);
            assert_eq!(st, 401, "{m} {path} without credentials: {b}");
            for (role, auth) in &creds {
                let (st, _, b) = request_full(&s.addr, &m, &concrete, &[auth], body);
                if rank(role) >= rank(needed) {
                    assert!(st != 401 && st != 403, "{m} {path} as {role}: {st} {b}");
                } else {
                    assert_eq!(st, 403, "{m} {path} as {role} (needs {needed}): {b}");
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 40, "only {walked} routes");
    // Refused attempts are audited too.
    let (_, _, audit) = request_full(
        &s.addr,
        "GET",
        "/api/audit?actor=viewer-user&limit=1000",
        &[&creds[2].1],
        None,
    );
    let audit = json_of(&audit);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "task.start" && r["outcome"] == "denied"),
        "{audit}"
    );
}

#[test]
fn sessions_need_csrf_tokens_are_revocable_and_everything_is_audited() {
    let dir = workdir("sessions");
    let s = Server::start(&dir);
    add_user(&s, "alice", "operator");
    add_user(&s, "root", "admin");
    assert_eq!(login(&s, "alice", "wrong password!!").unwrap_err().0, 401);
    assert_eq!(login(&s, "nobody", PASSWORD).unwrap_err().0, 401);
    login(&s, "alice", PASSWORD).unwrap();
    let (cookie, csrf) = login_exact(&s, "alice");
    let c = format!("Cookie: {cookie}");
    let (st, _, me) = request_full(&s.addr, "GET", "/api/me", &[&c], None);
    assert_eq!(st, 200);
    let me = json_of(&me);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("operator"))
    );
    assert_eq!(me["csrf"], csrf);
    // Changes through a cookie need the CSRF token, and a same-origin page.
    let task = json!({"name": "t1", "source": {"type": "generator", "rows": 1}, "target": {"type": "discard"}})
        .to_string();
    let (st, _, b) = request_full(&s.addr, "POST", "/api/tasks", &[&c], Some(&task));
    assert_eq!(st, 403, "{b}");
    let x = format!("X-CSRF-Token: {csrf}");
    let evil = "Origin: https://evil.example";
    let (st, _, b) = request_full(&s.addr, "POST", "/api/tasks", &[&c, &x, evil], Some(&task));
    assert_eq!(st, 403, "{b}");
    let (st, _, b) = request_full(&s.addr, "POST", "/api/tasks", &[&c, &x], Some(&task));
    assert!(st == 201 || st == 400, "{st} {b}");
    // An operator manages no users.
    let (st, _, _) = request_full(&s.addr, "GET", "/api/users", &[&c], None);
    assert_eq!(st, 403);
    // API tokens: shown once, listed without the secret, revocable.
    let token = api_token(&s, "alice");
    let t = format!("Authorization: Bearer {token}");
    let (st, _, list) = request_full(&s.addr, "GET", "/api/tokens", &[&t], None);
    assert_eq!(st, 200);
    assert!(!list.contains(&token) && !list.contains("dtk_"), "{list}");
    let id = json_of(&list)[0]["id"].as_i64().unwrap();
    let (st, _, _) = request_full(&s.addr, "DELETE", &format!("/api/tokens/{id}"), &[&t], None);
    assert_eq!(st, 204);
    let (st, _, _) = request_full(&s.addr, "GET", "/api/me", &[&t], None);
    assert_eq!(st, 401, "a revoked token is refused");
    // Signing out ends the session.
    let (st, head, _) = request_full(&s.addr, "POST", "/api/logout", &[&c, &x], None);
    assert_eq!(st, 204);
    assert!(head.contains("max-age=0"), "{head}");
    let (st, _, _) = request_full(&s.addr, "GET", "/api/me", &[&c], None);
    assert_eq!(st, 401);
    // A new password ends the sessions; the last admin stays an admin.
    let (rc, rx) = login_exact(&s, "root");
    let root = [format!("Cookie: {rc}"), format!("X-CSRF-Token: {rx}")];
    let root: Vec<&str> = root.iter().map(String::as_str).collect();
    let (_, _, users) = request_full(&s.addr, "GET", "/api/users", &root, None);
    assert!(
        !users.contains("argon2") && !users.contains("password"),
        "{users}"
    );
    let alice = json_of(&users)
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (cookie2, _) = login_exact(&s, "alice");
    let (st, _, b) = request_full(
        &s.addr,
        "PUT",
        &format!("/api/users/{alice}"),
        &root,
        Some(r#"{"password": "another long password"}"#),
    );
    assert_eq!(st, 200, "{b}");
    let (st, _, _) = request_full(
        &s.addr,
        "GET",
        "/api/me",
        &[&format!("Cookie: {cookie2}")],
        None,
    );
    assert_eq!(st, 401, "sessions end with a new password");
    let (st, _, b) = request_full(
        &s.addr,
        "POST",
        "/api/users",
        &root,
        Some(r#"{"username": "bob", "password": "short", "role": "viewer"}"#),
    );
    assert_eq!(
        (st, json_of(&b)["field"].as_str()),
        (400, Some("password")),
        "{b}"
    );

    // The audit log: who did what, refused attempts too, never a secret.
    let (st, _, audit) = request_full(&s.addr, "GET", "/api/audit?limit=1000", &root, None);
    assert_eq!(st, 200);
    for secret in [
        PASSWORD,
        "another long password",
        token.as_str(),
        csrf.as_str(),
    ] {
        assert!(!audit.contains(secret), "a secret in the audit log");
    }
    let audit = json_of(&audit);
    let has = |actor: &str, action: &str, outcome: &str| {
        audit.as_array().unwrap().iter().any(|r| {
            r["actor"].as_str().unwrap_or("").starts_with(actor)
                && r["action"] == action
                && r["outcome"].as_str().unwrap_or("").starts_with(outcome)
        })
    };
    assert!(has("alice", "login", "denied"), "{audit}");
    assert!(has("nobody", "login", "denied"), "{audit}");
    assert!(has("alice", "login", "ok"), "{audit}");
    assert!(has("alice", "task.create", "denied"), "{audit}");
    assert!(has("alice", "token.create", "ok"), "{audit}");
    assert!(has("alice", "token.revoke", "ok"), "{audit}");
    assert!(has("alice", "logout", "ok"), "{audit}");
    assert!(has("root", "user.update", "ok"), "{audit}");
    assert!(has("root", "user.create", "failed"), "{audit}");
    assert!(has("token", "user.create", "ok"), "{audit}");
    let (_, _, only) = request_full(
        &s.addr,
        "GET",
        "/api/audit?action=token&actor=alice",
        &root,
        None,
    );
    let only = json_of(&only);
    assert!(
        only.as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("token.")),
        "{only}"
    );
}

#[test]
fn the_first_admin_comes_from_the_command_line() {
    let dir = workdir("first-admin");
    let data = dir.join("data");
    let add = |name: &str, role: &str, password: &str| {
        Command::new(BIN)
            .args([
                "user",
                "add",
                "--username",
                name,
                "--role",
                role,
                "--data-dir",
            ])
            .arg(&data)
            .env("DATATRACE_USER_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = add("admin", "admin", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added user admin (admin)"));
    let out = add("admin", "admin", PASSWORD);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    let out = add("weak", "admin", "short");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
    let db = std::fs::read(data.join("metadata.sqlite")).unwrap();
    assert!(
        !db.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
        "the password in clear in the store"
    );
    // With an admin the server starts without a server token.
    let log = dir.join("no-token.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("DATATRACE_TOKEN")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(child.try_wait().unwrap().is_none(), "the server exited");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let body = json!({"username": "admin", "password": PASSWORD}).to_string();
    let (st, _, b) = request_full(&addr, "POST", "/api/login", &[], Some(&body));
    assert_eq!(st, 200, "{b}");
    assert_eq!(json_of(&b)["role"], "admin");
    let (st, _, _) = request_full(&addr, "GET", "/api/tasks", &[&server_auth()], None);
    assert_eq!(st, 401, "no server token was given");
    let _ = child.kill();
    let _ = child.wait();
}

//! Alerts end to end: a MySQL task that fails fires `task_failed`, a real HTTP receiver
//! (a small axum server started here) gets the webhook, Slack, DingTalk (signed) and WeCom
//! payloads, a channel answering 500 then 200 shows the retry, the fixed task resolves the
//! alert, a test send answers its outcome, and no channel secret appears in any answer,
//! log, audit record or metric.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use datatrace_testkit::mariadb;
use serde_json::{json, Value};

use crate::common::{request_full, wait_for, workdir, Server, TOKEN};
use crate::fixtures::{count, items, mysql_ds, user};

/// One post the receiver got.
#[derive(Debug, Clone)]
struct Post {
    hook: String,
    query: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<Post>>>,
    /// Per hook: how many more posts answer 500.
    failing: Arc<Mutex<HashMap<String, u32>>>,
}

/// A webhook receiver on a free port: `/hook/{name}` records each post and answers 200
/// (`{"errcode":0}` for names starting with `dingtalk` or `wecom`), 403 for names starting
/// with `refuse`, and 500 while the name's failures last.
struct Receiver {
    addr: SocketAddr,
    hooks: Hooks,
}

async fn hook(
    State(h): State<Hooks>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: String,
) -> (StatusCode, String) {
    h.got.lock().unwrap().push(Post {
        hook: name.clone(),
        query: query.unwrap_or_default(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    if let Some(n) = h.failing.lock().unwrap().get_mut(&name).filter(|n| **n > 0) {
        *n -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "down for a moment".into(),
        );
    }
    if name.starts_with("refuse") {
        return (StatusCode::FORBIDDEN, "no such robot".into());
    }
    if name.starts_with("dingtalk") || name.starts_with("wecom") {
        return (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#.into());
    }
    (StatusCode::OK, "ok".into())
}

impl Receiver {
    fn start() -> Receiver {
        let hooks = Hooks::default();
        let state = hooks.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                let app = Router::new()
                    .route("/hook/{name}", post(hook))
                    .with_state(state);
                axum::serve(l, app).await.unwrap();
            });
        });
        Receiver {
            addr: rx.recv().unwrap(),
            hooks,
        }
    }

    fn url(&self, name: &str, query: &str) -> String {
        format!("http://{}/hook/{name}?{query}", self.addr)
    }

    fn fail(&self, name: &str, times: u32) {
        self.hooks
            .failing
            .lock()
            .unwrap()
            .insert(name.into(), times);
    }

    fn posts(&self, name: &str) -> Vec<Post> {
        let got = self.hooks.got.lock().unwrap();
        got.iter().filter(|p| p.hook == name).cloned().collect()
    }
}

/// Secrets of the channels: none may appear anywhere the server shows.
const SECRETS: [&str; 5] = [
    "hooktoken-webhook-1",
    "hooktoken-slack-2",
    "hooktoken-ding-3",
    "dingsigning-secret-4",
    "hooktoken-wecom-5",
];

fn assert_no_channel_secrets(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} holds {secret}: {text}");
    }
}

fn history(s: &Server, query: &str) -> Vec<Value> {
    let v = s.ok("GET", &format!("/api/alerts/history?{query}"), None);
    v.as_array().unwrap().clone()
}

#[test]
fn a_failing_task_fires_delivers_retries_and_resolves() {
    let rx = Receiver::start();
    rx.fail("flaky", 1);
    let dir = workdir("alerts");
    let s = Server::start_args(&dir, &[], &["--alert-check-secs", "1"]).unwrap();

    // Channels of every kind, with their tokens in the URLs.
    let mut channels = Vec::new();
    for (name, kind, url, secret) in [
        (
            "hook",
            "webhook",
            rx.url("webhook", "token=hooktoken-webhook-1"),
            None,
        ),
        (
            "slack",
            "slack",
            rx.url("slack", "t=hooktoken-slack-2"),
            None,
        ),
        (
            "ding",
            "dingtalk",
            rx.url("dingtalk", "access_token=hooktoken-ding-3"),
            Some("dingsigning-secret-4"),
        ),
        (
            "wecom",
            "wecom",
            rx.url("wecom", "key=hooktoken-wecom-5"),
            None,
        ),
        ("flaky", "webhook", rx.url("flaky", ""), None),
    ] {
        let mut body = json!({"name": name, "kind": kind, "url": url});
        if let Some(sec) = secret {
            body["secret"] = json!(sec);
        }
        let c = s.ok("POST", "/api/alerts/channels", Some(&body));
        assert_no_channel_secrets("a created channel", &c.to_string());
        assert_eq!(c["endpoint"], format!("http://{}", rx.addr));
        assert_eq!(c["has_secret"], secret.is_some());
        channels.push(c["id"].as_i64().unwrap());
    }
    let listed = s.ok("GET", "/api/alerts/channels", None);
    assert_eq!(listed.as_array().unwrap().len(), 5);
    assert_no_channel_secrets("the channel list", &listed.to_string());
    // A channel in clear: refused with the field named.
    let (st, e) = s.call(
        "POST",
        "/api/alerts/channels",
        Some(&json!({"name": "x", "kind": "teams", "url": "http://h/"})),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("kind")), "{e}");

    // A MySQL task whose target column is too narrow: it fails.
    let password = "alert-db-pass-1";
    let u = user(password);
    let db = items(50);
    let ds = mysql_ds(&s, &u, password, &db);
    let dst = mariadb().create_database("dtalerts_dst");
    mariadb().exec(&format!(
        "CREATE TABLE {dst}.items (id INT PRIMARY KEY, name VARCHAR(6), price DECIMAL(10,2))"
    ));
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "narrow <b>orders</b> @all", "source": {"datasource": ds, "tables": [format!("{db}.items")]},
                     "target": {"datasource": ds, "database": dst},
                     "settings": {"retry": {"max_attempts": 2, "initial_backoff": 10, "max_backoff": 20}}})),
    );
    let task = t["id"].as_i64().unwrap();
    let rule = s.ok(
        "POST",
        "/api/alerts/rules",
        Some(
            &json!({"name": "orders failed", "kind": "task_failed", "task_id": task,
                     "level": "critical", "channels": channels}),
        ),
    );
    let rule_id = rule["id"].as_i64().unwrap();
    assert_eq!(
        (rule["for_secs"].as_u64(), rule["enabled"].as_bool()),
        (Some(0), Some(true))
    );
    let (st, e) = s.call(
        "POST",
        "/api/alerts/rules",
        Some(&json!({"name": "bad", "kind": "lag", "channels": [999999]})),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("channels[0]")), "{e}");

    s.ok("POST", &format!("/api/tasks/{task}/start"), None);
    let status = |s: &Server| s.ok("GET", &format!("/api/tasks/{task}"), None)["status"].clone();
    wait_for(60, "failed", || status(&s) == "failed");

    // Fired once, delivered to all five channels (the flaky one on its second attempt).
    let q = format!("rule={rule_id}&state=firing");
    wait_for(60, "the firing delivered", || {
        history(&s, &q)
            .first()
            .is_some_and(|h| h["deliveries"].as_array().is_some_and(|d| d.len() == 5))
    });
    let fired = history(&s, &q);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let h = &fired[0];
    assert_eq!(
        (h["level"].as_str(), h["task_id"].as_i64()),
        (Some("critical"), Some(task))
    );
    for d in h["deliveries"].as_array().unwrap() {
        assert_eq!(d["ok"], true, "{d}");
        if d["channel"] == "flaky" {
            assert_eq!(d["attempts"], 2, "{d}");
            assert_eq!(d["tries"][0]["status"], 500, "{d}");
            assert_eq!(d["tries"][1]["status"], 200, "{d}");
        } else {
            assert_eq!(d["attempts"], 1, "{d}");
        }
    }
    assert_eq!(rx.posts("flaky").len(), 2, "a retry after the 500");

    // Each receiver got its payload shape.
    let w = &rx.posts("webhook")[0];
    assert!(w.query.contains("hooktoken-webhook-1"), "{w:?}");
    let a = &w.body["alert"];
    assert_eq!(
        (
            a["kind"].as_str(),
            a["state"].as_str(),
            a["level"].as_str(),
            a["task_id"].as_i64()
        ),
        (
            Some("task_failed"),
            Some("firing"),
            Some("critical"),
            Some(task)
        ),
        "{w:?}"
    );
    assert!(a["message"].as_str().unwrap().contains("failed"), "{w:?}");
    let sl = &rx.posts("slack")[0].body;
    assert_eq!(sl["blocks"][0]["type"], "header", "{sl}");
    let text = sl["text"].as_str().unwrap();
    assert!(
        text.contains("[CRITICAL] orders failed") && !text.contains("<b>"),
        "{text}"
    );
    let d = &rx.posts("dingtalk")[0];
    assert_eq!(d.body["msgtype"], "markdown", "{d:?}");
    assert_eq!(d.body["at"]["isAtAll"], false, "{d:?}");
    assert!(
        d.query.contains("access_token=hooktoken-ding-3&timestamp=") && d.query.contains("&sign="),
        "signed with the secret: {d:?}"
    );
    let md = d.body["markdown"]["text"].as_str().unwrap();
    assert!(!md.contains("@all") && md.contains("＠all"), "{md}");
    let wc = &rx.posts("wecom")[0].body;
    assert_eq!(wc["msgtype"], "markdown", "{wc}");
    assert!(
        wc["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("orders failed"),
        "{wc}"
    );

    // Fixed and retried: the alert resolves, once, and the receivers hear it.
    mariadb().exec(&format!("ALTER TABLE {dst}.items MODIFY name VARCHAR(64)"));
    s.ok("POST", &format!("/api/tasks/{task}/retry"), None);
    wait_for(60, "done", || status(&s) == "done");
    assert_eq!(count(&dst, "items"), 50);
    let q = format!("rule={rule_id}&state=resolved");
    wait_for(60, "resolved", || {
        history(&s, &q)
            .first()
            .is_some_and(|h| h["deliveries"].as_array().is_some_and(|d| d.len() == 5))
    });
    assert_eq!(
        history(&s, &format!("rule={rule_id}")).len(),
        2,
        "one firing, one resolution"
    );
    wait_for(10, "the resolved webhook", || {
        rx.posts("webhook")
            .iter()
            .any(|p| p.body["alert"]["state"] == "resolved")
    });
    assert_eq!(history(&s, &format!("task={task}&level=critical")).len(), 2);
    assert!(history(&s, "level=info&state=firing").is_empty());
    let (st, e) = s.call("GET", "/api/alerts/history?state=burning", None);
    assert_eq!((st, e["field"].as_str()), (400, Some("state")), "{e}");
    let logs = s
        .ok(
            "GET",
            &format!("/api/tasks/{task}/logs?q=alert&limit=100"),
            None,
        )
        .to_string();
    assert!(logs.contains("alert firing (orders failed)"), "{logs}");
    assert!(logs.contains("alert resolved (orders failed)"), "{logs}");

    // A test send answers its outcome, also when the channel refuses.
    let out = s.ok(
        "POST",
        &format!("/api/alerts/channels/{}/test", channels[1]),
        None,
    );
    assert_eq!(
        (out["ok"].as_bool(), out["attempts"].as_u64()),
        (Some(true), Some(1)),
        "{out}"
    );
    assert!(rx
        .posts("slack")
        .iter()
        .any(|p| p.body["text"].as_str().unwrap_or("").contains("test send")));
    let refused = s.ok(
        "POST",
        "/api/alerts/channels",
        Some(&json!({"name": "refusing", "kind": "webhook", "url": rx.url("refuse", "")})),
    );
    let out = s.ok(
        "POST",
        &format!("/api/alerts/channels/{}/test", refused["id"]),
        None,
    );
    assert_eq!(
        (out["ok"].as_bool(), out["status"].as_u64()),
        (Some(false), Some(403)),
        "{out}"
    );
    assert!(
        out["error"].as_str().unwrap().contains("no such robot"),
        "{out}"
    );
    assert_eq!(history(&s, "state=test").len(), 2);

    // Changes: a channel in use cannot go; an update keeps the stored URL.
    let (st, _) = s.call(
        "DELETE",
        &format!("/api/alerts/channels/{}", channels[0]),
        None,
    );
    assert_eq!(st, 409);
    let renamed = s.ok(
        "PUT",
        &format!("/api/alerts/channels/{}", channels[1]),
        Some(&json!({"name": "slack-ops", "kind": "slack"})),
    );
    assert_eq!(renamed["name"], "slack-ops");
    let out = s.ok(
        "POST",
        &format!("/api/alerts/channels/{}/test", channels[1]),
        None,
    );
    assert_eq!(out["ok"], true, "{out}");
    s.ok("DELETE", &format!("/api/alerts/rules/{rule_id}"), None);
    s.ok(
        "DELETE",
        &format!("/api/alerts/channels/{}", channels[0]),
        None,
    );

    // Audited, and no secret anywhere.
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (_, _, audit) = request_full(
        &s.addr,
        "GET",
        "/api/audit?action=alert&limit=1000",
        &[&auth],
        None,
    );
    for action in [
        "alert_channel.create",
        "alert_rule.create",
        "alert_channel.test",
        "alert_channel.update",
        "alert_rule.delete",
    ] {
        assert!(audit.contains(action), "{action} not audited: {audit}");
    }
    assert_no_channel_secrets("the audit log", &audit);
    assert_no_channel_secrets(
        "the history",
        &history(&s, "limit=1000")
            .iter()
            .map(Value::to_string)
            .collect::<String>(),
    );
    let (_, _, metrics) = request_full(&s.addr, "GET", "/metrics", &[&auth], None);
    assert_no_channel_secrets("the metrics", &metrics);
    assert_no_channel_secrets("the task's logs", &logs);
    assert_no_channel_secrets("the server output", &s.output());
}

/// Records rejected into the dead letters fire `dlq_growing` (read from the dead-letter
/// store, not from the task's status: the task ends `done`), delivered to the channel;
/// discarding them resolves it.
#[test]
fn new_dead_letters_fire_dlq_growing_and_discarding_them_resolves_it() {
    let rx = Receiver::start();
    let dir = workdir("alerts-dlq");
    let s = Server::start_args(&dir, &[], &["--alert-check-secs", "1"]).unwrap();
    let c = s.ok(
        "POST",
        "/api/alerts/channels",
        Some(&json!({"name": "dlq hook", "kind": "webhook", "url": rx.url("dlq", "")})),
    );
    let password = "alert-dlq-pass-2";
    let u = user(password);
    let db = items(30);
    let ds = mysql_ds(&s, &u, password, &db);
    let dst = mariadb().create_database("dtalerts_dlq");
    // `name` holds 'item N': from 'item 10' on, longer than 6 characters: rejected.
    mariadb().exec(&format!(
        "CREATE TABLE {dst}.items (id INT PRIMARY KEY, name VARCHAR(6), price DECIMAL(10,2))"
    ));
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "dlq orders", "source": {"datasource": ds, "tables": [format!("{db}.items")]},
                     "target": {"datasource": ds, "database": dst},
                     "settings": {"error_policy": "dead-letter"}})),
    );
    let task = t["id"].as_i64().unwrap();
    let rule = s.ok(
        "POST",
        "/api/alerts/rules",
        Some(
            &json!({"name": "dead letters", "kind": "dlq_growing", "task_id": task,
                     "level": "warning", "channels": [c["id"]]}),
        ),
    );
    let rule_id = rule["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{task}/start"), None);
    wait_for(60, "done", || {
        s.ok("GET", &format!("/api/tasks/{task}"), None)["status"] == "done"
    });
    let rejected = s.ok("GET", &format!("/api/tasks/{task}"), None)["overall"]["rejected"]
        .as_u64()
        .unwrap();
    assert!(rejected > 0, "the narrow column rejected nothing");

    let q = format!("rule={rule_id}&state=firing");
    wait_for(60, "dlq_growing delivered", || {
        history(&s, &q)
            .first()
            .is_some_and(|h| h["deliveries"].as_array().is_some_and(|d| d.len() == 1))
    });
    let fired = history(&s, &q);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["task_id"].as_i64(), Some(task), "{fired:?}");
    assert_eq!(fired[0]["deliveries"][0]["ok"], true, "{fired:?}");
    assert_eq!(rx.posts("dlq").len(), 1);

    // Every new dead letter discarded: nothing new is waiting, the alert resolves once.
    s.ok(
        "POST",
        &format!("/api/tasks/{task}/dead-letters/discard"),
        None,
    );
    let resolved = format!("rule={rule_id}&state=resolved");
    wait_for(60, "dlq_growing resolved", || {
        !history(&s, &resolved).is_empty()
    });
    assert_eq!(history(&s, &resolved).len(), 1);
    assert_eq!(history(&s, &q).len(), 1, "fired once");
}

/// A change stream with nothing to write fires `task_idle` (the evaluator follows the live
/// written counter of a running task); a change written resolves it.
#[test]
fn an_idle_change_stream_fires_task_idle_and_a_change_resolves_it() {
    let rx = Receiver::start();
    let dir = workdir("alerts-idle");
    let s = Server::start_args(&dir, &[], &["--alert-check-secs", "1"]).unwrap();
    let c = s.ok(
        "POST",
        "/api/alerts/channels",
        Some(&json!({"name": "idle hook", "kind": "webhook", "url": rx.url("idle", "")})),
    );
    let password = "alert-idle-pass-3";
    let u = user(password);
    let db = items(20);
    let ds = mysql_ds(&s, &u, password, &db);
    let dst = mariadb().create_database("dtalerts_idle");
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "idle stream", "mode": "full+incremental",
                     "source": {"datasource": ds, "tables": [format!("{db}.items")],
                                "cdc": {"server_id": 9473, "heartbeat_secs": 1}},
                     "target": {"datasource": ds, "database": dst}})),
    );
    let task = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{task}/start"), None);
    let created = || {
        mariadb()
            .exec(&format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{dst}'"
            ))
            .trim()
            == "1"
    };
    wait_for(60, "the snapshot copied", || {
        created() && count(&dst, "items") == 20
    });
    // Created once the copy is in: what it watches from here is the stream's silence.
    let rule = s.ok(
        "POST",
        "/api/alerts/rules",
        Some(
            &json!({"name": "quiet stream", "kind": "task_idle", "task_id": task,
                     "threshold": 3, "level": "info", "channels": [c["id"]]}),
        ),
    );
    let rule_id = rule["id"].as_i64().unwrap();
    let firing = format!("rule={rule_id}&state=firing");
    wait_for(60, "task_idle delivered", || {
        history(&s, &firing)
            .first()
            .is_some_and(|h| h["deliveries"].as_array().is_some_and(|d| d.len() == 1))
    });
    assert_eq!(
        s.ok("GET", &format!("/api/tasks/{task}"), None)["status"],
        "running"
    );
    mariadb().exec(&format!(
        "INSERT INTO {db}.items VALUES (5001, 'late row', 2.5)"
    ));
    wait_for(60, "the change written", || count(&dst, "items") == 21);
    let resolved = format!("rule={rule_id}&state=resolved");
    wait_for(60, "task_idle resolved", || {
        !history(&s, &resolved).is_empty()
    });
    s.ok("POST", &format!("/api/tasks/{task}/stop"), None);
    wait_for(60, "stopped", || {
        s.ok("GET", &format!("/api/tasks/{task}"), None)["status"] == "stopped"
    });
}

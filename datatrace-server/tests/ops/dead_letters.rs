//! Dead letters in serve: kept per key in the metadata store, listed, filtered, inspected
//! with their values, replayed through the task's target, discarded, and audited.

use std::collections::BTreeSet;

use datatrace_testkit::mariadb;
use serde_json::{json, Value};

use crate::common::{wait_for, workdir, Server};
use crate::fixtures::{count, items, mysql_ds, user};

const PASSWORD: &str = "Dead-Letter-5521";

fn entries(page: &Value) -> Vec<Value> {
    page["dead_letters"].as_array().unwrap().clone()
}

fn keys(list: &[Value]) -> BTreeSet<u32> {
    list.iter()
        .map(|e| e["key"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn dead_letters_are_listed_inspected_replayed_and_discarded() {
    let dir = workdir("dead-letters");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(30);
    let dst = mariadb().create_database("dtops_dl");
    // Names longer than six characters ("item 10" on) do not fit: 21 rejects.
    mariadb().exec(&format!(
        "CREATE TABLE {dst}.items (id INT PRIMARY KEY, name VARCHAR(6), price DECIMAL(10,2))"
    ));
    let src = mysql_ds(&s, &u, PASSWORD, &db);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "dead-letters", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst},
                     "settings": {"error_policy": "dead-letter", "batch_size": 10}})),
    );
    let id = t["id"].as_i64().unwrap();
    let run = || {
        s.ok("POST", &format!("/api/tasks/{id}/start"), None);
        wait_for(60, "finished", || {
            let v = s.ok("GET", &format!("/api/tasks/{id}"), None);
            v["status"] == "done" || v["status"] == "failed"
        });
        let v = s.ok("GET", &format!("/api/tasks/{id}"), None);
        assert_eq!(v["status"], "done", "{v}");
        assert_eq!(v["overall"]["rejected"], 21, "{v}");
    };
    run();
    let base = format!("/api/tasks/{id}/dead-letters");
    let page = s.ok("GET", &base, None);
    assert_eq!(page["total"], 21, "{page}");
    assert_eq!(
        page["counts"],
        json!({"new": 21, "replayed": 0, "discarded": 0})
    );
    let all = entries(&page);
    assert_eq!(keys(&all), (10..=30).collect());
    for e in &all {
        assert_eq!(
            (e["state"].as_str(), e["count"].as_u64()),
            (Some("new"), Some(1)),
            "{e}"
        );
        assert_eq!(e["unit"], format!("{db}.items"));
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("too long"),
            "{e}"
        );
    }
    // The records never went to a file beside the metadata.
    assert!(!dir.join("data/dead-letters").exists());

    // Paging, newest first.
    let mut seen = Vec::new();
    let mut next = format!("{base}?limit=8");
    loop {
        let p = s.ok("GET", &next, None);
        seen.extend(entries(&p));
        match p["next_before"].as_i64() {
            Some(b) => next = format!("{base}?limit=8&before={b}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 21);
    assert_eq!(keys(&seen).len(), 21);

    // Filters: error text, unit, state, time; wrong ones name the field.
    let total = |q: &str| s.ok("GET", &format!("{base}?{q}"), None)["total"].clone();
    assert_eq!(total("q=TOO+LONG"), 21);
    assert_eq!(total("q=nothing+like+this"), 0);
    assert_eq!(total("unit=other.items"), 0);
    assert_eq!(total(&format!("unit={db}.items")), 21);
    assert_eq!(total("state=replayed"), 0);
    assert_eq!(total("since=2000-01-01T00:00:00Z"), 21);
    assert_eq!(total("until=2000-01-01T00:00:00Z"), 0);
    for (q, field) in [("state=lost", "state"), ("since=yesterday", "since")] {
        let (st, e) = s.call("GET", &format!("{base}?{q}"), None);
        assert_eq!((st, e["field"].as_str()), (400, Some(field)), "{e}");
    }

    // One record with its error and values.
    let id_of = |key: &str| {
        all.iter().find(|e| e["key"] == key).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (k17, k10) = (id_of("17"), id_of("10"));
    let one = s.ok("GET", &format!("{base}/{k17}"), None);
    let fields = one["record"]["fields"].as_array().unwrap();
    let field = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap().clone();
    assert_eq!(field("id")["value"], "17", "{one}");
    assert_eq!(field("id")["key"], true, "{one}");
    assert_eq!(field("name")["value"], "item 17", "{one}");
    assert_eq!(field("price")["value"], "17.25", "{one}");
    assert!(one["error"].as_str().unwrap().contains("too long"), "{one}");
    let (st, _) = s.call("GET", &format!("{base}/999999"), None);
    assert_eq!(st, 404);

    // A second run rejects the same keys: counted, not listed twice.
    run();
    let again = s.ok("GET", &base, None);
    assert_eq!(again["total"], 21, "{again}");
    assert!(entries(&again).iter().all(|e| e["count"] == 2), "{again}");

    // Replayed while the column is still too narrow: refused again, still new.
    let r = s.ok("POST", &format!("{base}/{k17}/replay"), None);
    assert_eq!(r, json!({"done": 0, "refused": 1}));
    let one = s.ok("GET", &format!("{base}/{k17}"), None);
    assert_eq!(
        (one["state"].as_str(), one["attempts"].as_u64()),
        (Some("new"), Some(2))
    );

    // Discard one; widen the column; replay one, then all the others.
    assert_eq!(
        s.ok("POST", &format!("{base}/{k10}/discard"), None),
        json!({"done": 1, "refused": 0})
    );
    mariadb().exec(&format!("ALTER TABLE {dst}.items MODIFY name VARCHAR(64)"));
    assert_eq!(count(&dst, "items"), 9);
    assert_eq!(
        s.ok("POST", &format!("{base}/{k17}/replay"), None),
        json!({"done": 1, "refused": 0})
    );
    assert_eq!(count(&dst, "items"), 10);
    let (st, e) = s.call("POST", &format!("{base}/{k17}/replay"), None);
    assert_eq!(st, 409, "{e}");
    let (st, e) = s.call("POST", &format!("{base}/replay?limit=3"), None);
    assert_eq!((st, e["field"].as_str()), (400, Some("limit")), "{e}");
    assert_eq!(
        s.ok("POST", &format!("{base}/replay"), None),
        json!({"done": 19, "refused": 0})
    );
    assert_eq!(count(&dst, "items"), 29);
    let kept = mariadb().exec(&format!(
        "SELECT name FROM {dst}.items WHERE id IN (10, 17, 30) ORDER BY id"
    ));
    assert_eq!(
        kept.split_whitespace().collect::<Vec<_>>(),
        ["item", "17", "item", "30"]
    );
    let page = s.ok("GET", &base, None);
    assert_eq!(
        page["counts"],
        json!({"new": 0, "replayed": 20, "discarded": 1})
    );
    let replayed = s.ok("GET", &format!("{base}?state=replayed&limit=500"), None);
    assert!(
        entries(&replayed).iter().all(|e| e["state_by"] == "token"),
        "{replayed}"
    );

    // Audited, with the entry; the values reach neither the audit log nor the server's log.
    let audit = s.ok("GET", "/api/audit?action=dead_letter&limit=100", None);
    let rows = audit.as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["action"] == "dead_letter.replay"
            && r["target"] == format!("task {id} dead letter {k17}")),
        "{audit}"
    );
    assert!(
        rows.iter()
            .any(|r| r["action"] == "dead_letter.discard" && r["outcome"] == "ok"),
        "{audit}"
    );
    assert!(!audit.to_string().contains("item 1"), "{audit}");
    let logs = s.ok("GET", &format!("/api/tasks/{id}/logs?limit=1000"), None);
    for text in [s.output(), logs.to_string()] {
        assert!(!text.contains("item 17"), "values in a log: {text}");
    }

    // A deleted task takes its dead letters with it.
    s.ok("DELETE", &format!("/api/tasks/{id}"), None);
    let (st, _) = s.call("GET", &base, None);
    assert_eq!(st, 404);
}

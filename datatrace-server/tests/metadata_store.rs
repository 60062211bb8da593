//! The metadata store on both backends (SQLite, and MySQL on a real MariaDB): the same
//! calls give the same answers, from one schema definition.

use datatrace_core::UnitState;
use datatrace_server::serve::schema::MIGRATIONS;
use datatrace_server::serve::sql_store::accounts::epoch_now;
use datatrace_server::serve::sql_store::dead_letters::{DeadLetterFilter, NewDeadLetter};
use datatrace_server::serve::sql_store::{AuditFilter, RunEnd, RunFilter, ScheduleRow, SqlStore};
use datatrace_server::serve::store::{DataSourceRow, LogFilter, UnitRow, UnitStatus};
use datatrace_testkit::mariadb;
use serde_json::json;

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dt-metadata-{name}-{}-{}",
        std::process::id(),
        datatrace_testkit::unique_name("d")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sqlite() -> SqlStore {
    SqlStore::open_sqlite(&tempdir("sqlite")).await.unwrap()
}

async fn mysql() -> SqlStore {
    let db = mariadb().create_database("dtmeta");
    let url = format!("mysql://root@127.0.0.1:{}/{db}", mariadb().port());
    SqlStore::open_mysql(&url).await.unwrap()
}

fn ds(name: &str) -> DataSourceRow {
    DataSourceRow {
        id: 0,
        name: name.into(),
        kind: "mysql".into(),
        url: "mysql://u@h:3306/".into(),
        username: None,
        options: json!({"ssl_mode": "required"}),
        password_enc: Some("enc:secret".into()),
        api_key_enc: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// Every call of the store, with answers that do not depend on the backend.
async fn exercise(s: &SqlStore) {
    assert_eq!(s.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(s.meta("k").await.unwrap(), None);
    s.set_meta("k", "1").await.unwrap();
    s.set_meta("k", "2").await.unwrap();
    assert_eq!(s.meta("k").await.unwrap().as_deref(), Some("2"));

    // Data sources: insert, unique names, update, delete.
    let a = s.save_datasource(&ds("a")).await.unwrap();
    let e = s.save_datasource(&ds("a")).await.unwrap_err();
    assert!(e.conflict, "{e}");
    let mut row = s.datasource(a).await.unwrap().unwrap();
    assert_eq!(row.options, json!({"ssl_mode": "required"}));
    assert_eq!(row.password_enc.as_deref(), Some("enc:secret"));
    row.url = "mysql://u@other:3306/".into();
    row.password_enc = None;
    s.save_datasource(&row).await.unwrap();
    let row = s.datasource(a).await.unwrap().unwrap();
    assert_eq!(
        (row.url.as_str(), row.password_enc),
        ("mysql://u@other:3306/", None)
    );
    let b = s.save_datasource(&ds("b")).await.unwrap();
    let names: Vec<_> = s
        .datasources()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(s.delete_datasource(b).await.unwrap());
    assert!(!s.delete_datasource(b).await.unwrap());

    // Tasks, their status and times.
    let config = json!({"source": {"datasource": a}, "target": {"type": "discard"},
                        "note": "x".repeat(100_000)});
    let t = s.save_task(0, "t", &config).await.unwrap();
    assert!(s.save_task(0, "t", &config).await.unwrap_err().conflict);
    assert_eq!(s.tasks_using(a).await.unwrap(), ["t"]);
    assert_eq!(s.tasks_using(b).await.unwrap(), Vec::<String>::new());
    s.set_task_status(t, "running", None, true, false)
        .await
        .unwrap();
    let task = s.task(t).await.unwrap().unwrap();
    assert_eq!(task.config, config, "a large configuration survives");
    assert!(task.started_at.is_some() && task.finished_at.is_none());
    s.set_task_status(t, "failed", Some("boom"), false, true)
        .await
        .unwrap();
    let task = s.task(t).await.unwrap().unwrap();
    assert_eq!(
        (task.status.as_str(), task.error.as_deref()),
        ("failed", Some("boom"))
    );
    assert!(task.finished_at.is_some());
    s.set_task_status(t, "running", None, true, false)
        .await
        .unwrap();
    assert!(s.task(t).await.unwrap().unwrap().finished_at.is_none());

    // Units keep the planned order; planning again keeps their state and forgets the
    // units no longer planned.
    let plan = |names: &[&str]| -> Vec<(String, String, Option<u64>)> {
        names
            .iter()
            .map(|n| (n.to_string(), format!("idx_{n}"), Some(10)))
            .collect()
    };
    s.plan_units(t, &plan(&["z", "a", "m"])).await.unwrap();
    let units: Vec<_> = s
        .units(t)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.unit)
        .collect();
    assert_eq!(units, ["z", "a", "m"]);
    let mut z: UnitRow = s.units(t).await.unwrap().remove(0);
    z.state = UnitStatus::RUNNING;
    z.read = 5;
    z.written = u64::MAX;
    s.update_unit(t, &z, true).await.unwrap();
    s.plan_units(t, &plan(&["z", "m", "n"])).await.unwrap();
    let units = s.units(t).await.unwrap();
    let names: Vec<_> = units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names, ["z", "m", "n"]);
    assert_eq!(
        (units[0].state.as_str(), units[0].read, units[0].written),
        ("running", 5, i64::MAX as u64)
    );
    assert!(units[0].started_at.is_some());

    // Checkpoints: written never goes back; clearing resets the unit.
    s.save_checkpoint(t, "m", Some(("{\"p\":1}", UnitState::Running, 100, None)))
        .await
        .unwrap();
    s.save_checkpoint(
        t,
        "m",
        Some(("{\"p\":2}", UnitState::Running, 50, Some("e"))),
    )
    .await
    .unwrap();
    assert_eq!(
        s.checkpoint(t, "m").await.unwrap().as_deref(),
        Some("{\"p\":2}")
    );
    let m = s.units(t).await.unwrap().remove(1);
    assert_eq!((m.written, m.error.as_deref()), (100, Some("e")));
    s.save_checkpoint(t, "new", Some(("{}", UnitState::Done, 1, None)))
        .await
        .unwrap();
    assert_eq!(
        s.checkpoints(t).await.unwrap(),
        [
            ("m".to_owned(), "{\"p\":2}".to_owned()),
            ("new".to_owned(), "{}".to_owned())
        ]
    );
    s.save_checkpoint(t, "m", None).await.unwrap();
    assert_eq!(s.checkpoint(t, "m").await.unwrap(), None);
    let m = s.units(t).await.unwrap().remove(1);
    assert_eq!((m.state.as_str(), m.written), ("pending", 0));

    // Logs: pages, since, category, search with LIKE's special characters taken literally.
    let mut ids = Vec::new();
    for (i, text) in ["100% done", "1000 done", "a_b", "AxB", "wow!"]
        .iter()
        .enumerate()
    {
        let cat = if i % 2 == 0 { "system" } else { "error" };
        ids.push(
            s.add_log(Some(t), cat, "info", Some("z"), text)
                .await
                .unwrap()
                .id,
        );
    }
    s.add_log(None, "system", "info", None, "server line")
        .await
        .unwrap();
    let msgs = |rows: Vec<datatrace_server::serve::store::LogRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.message).collect()
    };
    let f = |search: Option<&str>| LogFilter {
        search: search.map(str::to_owned),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        msgs(s.logs(Some(t), &f(None)).await.unwrap()),
        ["wow!", "AxB", "a_b", "1000 done", "100% done"]
    );
    assert_eq!(
        msgs(s.logs(Some(t), &f(Some("0%"))).await.unwrap()),
        ["100% done"]
    );
    assert_eq!(
        msgs(s.logs(Some(t), &f(Some("a_b"))).await.unwrap()),
        ["a_b"]
    );
    assert_eq!(
        msgs(s.logs(Some(t), &f(Some("w!"))).await.unwrap()),
        ["wow!"]
    );
    assert_eq!(
        msgs(s.logs(Some(t), &f(Some("DONE"))).await.unwrap()).len(),
        2
    );
    assert_eq!(msgs(s.logs(None, &f(None)).await.unwrap()), ["server line"]);
    let page = LogFilter {
        before: Some(ids[3]),
        limit: 2,
        ..Default::default()
    };
    assert_eq!(
        msgs(s.logs(Some(t), &page).await.unwrap()),
        ["a_b", "1000 done"]
    );
    let since = LogFilter {
        after: Some(ids[2]),
        category: Some("error".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(msgs(s.logs(Some(t), &since).await.unwrap()), ["AxB"]);

    // Users, sessions, API tokens, the audit log.
    let u = s
        .add_user("ann", "operator", "$argon2id$hash")
        .await
        .unwrap();
    assert!(s.add_user("ann", "viewer", "x").await.unwrap_err().conflict);
    let (user, hash) = s.user_for_login("ann").await.unwrap().unwrap();
    assert_eq!(
        (user.role.as_str(), hash.as_str()),
        ("operator", "$argon2id$hash")
    );
    assert_eq!(s.count_role("operator").await.unwrap(), 1);
    let far = epoch_now() + 3600;
    s.add_session("digest-live", u, "csrf-1", far)
        .await
        .unwrap();
    s.add_session("digest-old", u, "csrf-2", epoch_now() - 1)
        .await
        .unwrap();
    let (who, csrf) = s.session("digest-live").await.unwrap().unwrap();
    assert_eq!((who.username.as_str(), csrf.as_str()), ("ann", "csrf-1"));
    assert!(s.session("digest-old").await.unwrap().is_none(), "expired");
    let tok = s.add_token(u, "ci", "tokdigest").await.unwrap();
    assert_eq!(s.token_user("tokdigest").await.unwrap().unwrap().1, tok);
    assert!(s.tokens(u).await.unwrap()[0].last_used_at.is_some());
    assert!(
        !s.revoke_token(tok, Some(u + 1)).await.unwrap(),
        "not the owner"
    );
    assert!(s.revoke_token(tok, Some(u)).await.unwrap());
    assert!(s.token_user("tokdigest").await.unwrap().is_none());
    s.update_user(u, Some("admin"), Some("new-hash"))
        .await
        .unwrap();
    assert!(
        s.session("digest-live").await.unwrap().is_none(),
        "a new password signs out"
    );
    assert_eq!(s.user(u).await.unwrap().unwrap().role, "admin");
    for (a, act) in [
        ("ann", "login"),
        ("ann", "task.start"),
        ("bob", "task_x"),
        ("ann", "user.create"),
    ] {
        s.audit(a, act, Some("task 1"), None, "ok").await.unwrap();
    }
    s.audit("ann (token 7)", "token.use", None, None, "ok")
        .await
        .unwrap();
    s.audit("ann_x", "login", None, None, "ok").await.unwrap();
    let audit = |actor: Option<&str>, action: Option<&str>| AuditFilter {
        actor: actor.map(str::to_owned),
        action: action.map(str::to_owned),
        limit: 100,
        ..Default::default()
    };
    let acts = |rows: Vec<datatrace_server::serve::sql_store::AuditRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.action).collect()
    };
    assert_eq!(
        acts(s.audit_log(&audit(Some("ann"), None)).await.unwrap()),
        ["token.use", "user.create", "task.start", "login"]
    );
    assert_eq!(
        acts(s.audit_log(&audit(None, Some("task."))).await.unwrap()),
        ["task.start"]
    );
    assert_eq!(
        acts(s.audit_log(&audit(None, Some("task_"))).await.unwrap()),
        ["task_x"]
    );
    assert!(s.delete_user(u).await.unwrap());
    assert!(s.tokens(u).await.unwrap().is_empty());

    schedules_and_runs(s, t).await;

    // Deleting a task takes its units, logs, schedules and runs.
    assert!(s.delete_task(t).await.unwrap());
    assert!(s.task_schedules(t).await.unwrap().is_empty());
    let all = RunFilter {
        task: Some(t),
        limit: 10,
        ..Default::default()
    };
    assert!(s.runs(&all).await.unwrap().is_empty());
    assert!(s.task(t).await.unwrap().is_none());
    assert!(s.units(t).await.unwrap().is_empty());
    assert!(s.logs(Some(t), &f(None)).await.unwrap().is_empty());
    assert!(!s.delete_task(t).await.unwrap());
}

/// Dead letters: one entry per key, counted; filters; states; retention.
async fn dead_letters(s: &SqlStore) {
    let t = s.save_task(0, "dead-letters", &json!({})).await.unwrap();
    let e = |unit: &str, key: &str, error: &str| NewDeadLetter {
        unit: unit.into(),
        key_digest: format!("digest-{key}"),
        key_text: key.into(),
        stage: "sink".into(),
        error: error.into(),
        entry: format!("{{\"key\": {key}, \"error\": {error:?}}}"),
        attempts: 1,
    };
    let all = |limit| DeadLetterFilter {
        limit,
        ..DeadLetterFilter::default()
    };
    s.put_dead_letters(
        t,
        &[
            e("u", "1", "Data too long"),
            e("u", "2", "Data too long"),
            e("v", "1", "bad date 100%"),
        ],
    )
    .await
    .unwrap();
    // The same key rejected again: one entry, counted, with the newest reason and record.
    s.put_dead_letters(t, &[e("u", "1", "Data too long again")])
        .await
        .unwrap();
    let rows = s.dead_letters(t, &all(10)).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let u1 = rows.iter().find(|r| r.unit == "u" && r.key == "1").unwrap();
    assert_eq!((u1.count, u1.error.as_str()), (2, "Data too long again"));
    let (_, entry) = s.dead_letter(t, u1.id).await.unwrap().unwrap();
    assert!(entry.contains("again"), "{entry}");
    let u2 = rows
        .iter()
        .find(|r| r.unit == "u" && r.key == "2")
        .unwrap()
        .id;
    // Newest first, paged.
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id));
    let older = DeadLetterFilter {
        before: Some(rows[0].id),
        ..all(10)
    };
    assert_eq!(s.dead_letters(t, &older).await.unwrap().len(), 2);
    // Filters: unit, text (case-insensitive, % taken literally), state, time.
    let only = |f: DeadLetterFilter| async move { s.dead_letters(t, &f).await.unwrap().len() };
    let by_unit = DeadLetterFilter {
        unit: Some("v".into()),
        ..all(10)
    };
    assert_eq!(only(by_unit.clone()).await, 1);
    assert_eq!(s.count_dead_letters(t, &by_unit).await.unwrap(), 1);
    for (q, n) in [("AGAIN", 1), ("too long", 2), ("100%", 1), ("1%", 0)] {
        let f = DeadLetterFilter {
            search: Some(q.into()),
            ..all(10)
        };
        assert_eq!(only(f).await, n, "{q}");
    }
    let now = datatrace_core::Timestamp::now().as_unix_micros();
    let since = DeadLetterFilter {
        since_us: Some(now + 60_000_000),
        ..all(10)
    };
    assert_eq!(only(since).await, 0);
    let until = DeadLetterFilter {
        until_us: Some(now + 60_000_000),
        ..all(10)
    };
    assert_eq!(only(until).await, 3);
    // States: only new entries change.
    assert_eq!(
        s.set_dead_letter_state(t, &[u2], "discarded", "ann")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.set_dead_letter_state(t, &[u2], "replayed", "ann")
            .await
            .unwrap(),
        0
    );
    let c = s.dead_letter_counts(t).await.unwrap();
    assert_eq!((c.new, c.replayed, c.discarded), (2, 0, 1), "{c:?}");
    assert!(c.newest_new_us.is_some(), "{c:?}");
    let discarded = DeadLetterFilter {
        state: Some("discarded".into()),
        ..all(10)
    };
    let d = s.dead_letters(t, &discarded).await.unwrap();
    assert_eq!(d[0].state_by.as_deref(), Some("ann"));
    // Rejected again after a decision: new again.
    s.put_dead_letters(t, &[e("u", "2", "Data too long")])
        .await
        .unwrap();
    assert_eq!(s.dead_letter_counts(t).await.unwrap().new, 3);
    // Retention takes decided entries only.
    s.set_dead_letter_state(t, &[u1.id], "replayed", "ann")
        .await
        .unwrap();
    assert_eq!(s.prune_dead_letters(now - 60_000_000).await.unwrap(), 0);
    assert_eq!(s.prune_dead_letters(now + 60_000_000).await.unwrap(), 1);
    let c = s.dead_letter_counts(t).await.unwrap();
    assert_eq!((c.new, c.replayed, c.discarded), (2, 0, 0), "{c:?}");
    assert!(c.newest_new_us.is_some(), "{c:?}");
    // Deleting the task takes them.
    assert!(s.delete_task(t).await.unwrap());
    assert_eq!(s.dead_letters(t, &all(10)).await.unwrap().len(), 0);
}

#[tokio::test]
async fn metadata_store_on_sqlite() {
    let s = sqlite().await;
    exercise(&s).await;
    dead_letters(&s).await;
}

#[tokio::test]
async fn metadata_store_on_mysql() {
    let s = mysql().await;
    exercise(&s).await;
    dead_letters(&s).await;
}

#[tokio::test]
async fn metadata_store_reopens_without_migrating_twice() {
    let dir = tempdir("reopen");
    let s = SqlStore::open_sqlite(&dir).await.unwrap();
    s.set_meta("kept", "yes").await.unwrap();
    drop(s);
    let s = SqlStore::open_sqlite(&dir).await.unwrap();
    assert_eq!(s.meta("kept").await.unwrap().as_deref(), Some("yes"));
    assert_eq!(s.schema_version().await.unwrap(), MIGRATIONS.len() as i64);

    let db = mariadb().create_database("dtmeta");
    let url = format!("mysql://root@127.0.0.1:{}/{db}", mariadb().port());
    SqlStore::open_mysql(&url)
        .await
        .unwrap()
        .set_meta("kept", "yes")
        .await
        .unwrap();
    let s = SqlStore::open_mysql(&url).await.unwrap();
    assert_eq!(s.meta("kept").await.unwrap().as_deref(), Some("yes"));
    let versions = mariadb().exec(&format!("SELECT COUNT(*) FROM `{db}`.schema_version"));
    assert!(
        versions.trim().ends_with(&MIGRATIONS.len().to_string()),
        "{versions}"
    );
}

/// A SQLite file written by the earlier store (its own copy of the schema: `meta.key`,
/// units ordered by `rowid`) is adopted with its data.
#[tokio::test]
async fn metadata_store_adopts_an_earlier_sqlite_file() {
    use sqlx::Connection;
    let dir = tempdir("legacy");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("metadata.sqlite").display()
    );
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for sql in [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version VALUES (1)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta VALUES ('key_check', 'v1')",
        "CREATE TABLE datasources (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
           kind TEXT NOT NULL, url TEXT NOT NULL, username TEXT, options TEXT NOT NULL DEFAULT '{}',
           password_enc TEXT, api_key_enc TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
           config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'idle', error TEXT,
           created_at TEXT NOT NULL, updated_at TEXT NOT NULL, started_at TEXT, finished_at TEXT)",
        "INSERT INTO tasks (name, config, created_at, updated_at) VALUES ('old', '{}', 'x', 'x')",
        "CREATE TABLE task_units (task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
           unit TEXT NOT NULL, target TEXT, state TEXT NOT NULL DEFAULT 'pending',
           read INTEGER NOT NULL DEFAULT 0, written INTEGER NOT NULL DEFAULT 0,
           rejected INTEGER NOT NULL DEFAULT 0, estimated_total INTEGER, checkpoint TEXT,
           error TEXT, started_at TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (task_id, unit))",
        "INSERT INTO task_units (task_id, unit, written, checkpoint, updated_at)
           VALUES (1, 'zz', 7, '{\"c\":1}', 'x'), (1, 'aa', 0, NULL, 'x')",
        "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id INTEGER,
           category TEXT NOT NULL, level TEXT NOT NULL, unit TEXT, message TEXT NOT NULL,
           ts TEXT NOT NULL)",
        "CREATE INDEX logs_task ON logs (task_id, id)",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
    let s = SqlStore::open_sqlite(&dir).await.unwrap();
    assert_eq!(s.meta("key_check").await.unwrap().as_deref(), Some("v1"));
    let units = s.units(1).await.unwrap();
    let names: Vec<_> = units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names, ["zz", "aa"], "the planned order is kept");
    assert_eq!(units[0].written, 7);
    assert_eq!(
        s.checkpoint(1, "zz").await.unwrap().as_deref(),
        Some("{\"c\":1}")
    );
    s.plan_units(
        1,
        &[
            ("aa".into(), "t".into(), None),
            ("bb".into(), "t".into(), None),
        ],
    )
    .await
    .unwrap();
    let names: Vec<_> = s
        .units(1)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.unit)
        .collect();
    assert_eq!(names, ["aa", "bb"]);
    drop(s);
    // And once only.
    let s = SqlStore::open_sqlite(&dir).await.unwrap();
    assert_eq!(s.meta("key_check").await.unwrap().as_deref(), Some("v1"));
}

/// Schedules (a firing claimed once), runs (recorded, ended, listed newest first, paged,
/// interrupted after a restart) and the drift figures of task `t`.
async fn schedules_and_runs(s: &SqlStore, t: i64) {
    let mut row = ScheduleRow {
        id: 0,
        task_id: t,
        cron: "*/5 * * * *".into(),
        timezone: "Europe/Berlin".into(),
        action: "drift_check".into(),
        repair: true,
        delete_extra: false,
        enabled: true,
        next_fire: Some("2026-12-07T03:05:00Z".into()),
        last_fire: None,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let id = s.save_schedule(&row).await.unwrap();
    let stored = s.schedule(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.cron.as_str(), stored.repair, stored.enabled),
        ("*/5 * * * *", true, true)
    );
    // The firing is claimed once: a second claim of the same due time (a restart, another
    // server) finds it moved.
    let due = "2026-12-07T03:05:00Z";
    let next_due = "2026-12-07T03:10:00Z";
    let next = Some(next_due);
    assert!(s.claim_schedule(id, due, next).await.unwrap());
    assert!(!s.claim_schedule(id, due, next).await.unwrap());
    let claimed = s.schedule(id).await.unwrap().unwrap();
    assert_eq!(claimed.last_fire.as_deref(), Some(due));
    assert_eq!(claimed.next_fire.as_deref(), next);
    row.id = id;
    row.enabled = false;
    row.next_fire = None;
    s.save_schedule(&row).await.unwrap();
    assert!(
        !s.claim_schedule(id, next_due, None).await.unwrap(),
        "a disabled schedule is never claimed"
    );
    assert_eq!(s.task_schedules(t).await.unwrap().len(), 1);
    assert_eq!(s.schedules().await.unwrap().len(), 1);

    // Runs.
    let sync = s
        .begin_run(t, None, "sync", "manual", "running", None)
        .await
        .unwrap();
    let end = RunEnd {
        result: "done".into(),
        rows_read: Some(10),
        rows_written: Some(10),
        bytes_written: Some(1234),
        rejected: Some(0),
        ..RunEnd::default()
    };
    s.end_run(sync, &end).await.unwrap();
    let busy = Some("the task is already running");
    let skipped = s
        .begin_run(t, Some(id), "sync", "schedule", "skipped", busy)
        .await
        .unwrap();
    let check = s
        .begin_run(t, Some(id), "drift_check", "schedule", "running", None)
        .await
        .unwrap();
    let end = RunEnd {
        result: "differs".into(),
        rows_read: Some(10),
        diff_found: Some(4),
        diff_left: Some(4),
        detail: Some(json!({"units": [{"unit": "items", "missing": 4}]})),
        ..RunEnd::default()
    };
    s.end_run(check, &end).await.unwrap();
    let open = s
        .begin_run(t, None, "resume", "restart", "running", None)
        .await
        .unwrap();
    let page = |before: Option<i64>| RunFilter {
        task: Some(t),
        before,
        limit: 10,
        ..Default::default()
    };
    let ids: Vec<i64> = s
        .runs(&page(None))
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [open, check, skipped, sync]);
    let older = s.runs(&page(Some(skipped))).await.unwrap();
    assert_eq!(older.len(), 1);
    let r = &older[0];
    assert_eq!(
        (r.result.as_str(), r.rows_written, r.bytes_written),
        ("done", Some(10), Some(1234))
    );
    assert!(r.finished_at.is_some());
    let r = s.run(skipped).await.unwrap().unwrap();
    assert_eq!(
        (r.result.as_str(), r.origin.as_str(), r.schedule_id),
        ("skipped", "schedule", Some(id))
    );
    assert_eq!(r.error.as_deref(), busy);
    assert!(r.finished_at.is_some(), "a skipped run ends when recorded");
    let r = s.run(check).await.unwrap().unwrap();
    assert_eq!((r.diff_found, r.diff_left), (Some(4), Some(4)));
    assert_eq!(r.detail.unwrap()["units"][0]["missing"], 4);
    let kind = RunFilter {
        kind: Some("drift_check".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.runs(&kind).await.unwrap().len(), 1);
    let drifts = s.drifts().await.unwrap();
    assert_eq!(drifts.len(), 1);
    assert_eq!(
        (
            drifts[0].task_id,
            drifts[0].rows_differing,
            drifts[0].run_id
        ),
        (t, 4, check)
    );
    // A restart closes the runs left open.
    assert_eq!(s.interrupt_open_runs().await.unwrap(), 1);
    assert_eq!(s.run(open).await.unwrap().unwrap().result, "interrupted");
    assert_eq!(s.interrupt_open_runs().await.unwrap(), 0);
    assert!(s.delete_schedule(id).await.unwrap());
    assert!(!s.delete_schedule(id).await.unwrap());
}

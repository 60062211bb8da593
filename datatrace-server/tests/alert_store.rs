//! Alert channels, rules and history in the metadata store, on both backends
//! (SQLite, and MySQL on a real MariaDB): the same calls give the same answers.

use datatrace_server::serve::sql_store::alerts::{ChannelRow, HistoryFilter, HistoryRow, RuleRow};
use datatrace_server::serve::sql_store::SqlStore;
use datatrace_testkit::mariadb;
use serde_json::json;

async fn sqlite() -> SqlStore {
    let dir = std::env::temp_dir().join(format!(
        "dt-alert-store-{}-{}",
        std::process::id(),
        datatrace_testkit::unique_name("d")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    SqlStore::open_sqlite(&dir).await.unwrap()
}

async fn mysql() -> SqlStore {
    let db = mariadb().create_database("dtalerts");
    let url = format!("mysql://root@127.0.0.1:{}/{db}", mariadb().port());
    SqlStore::open_mysql(&url).await.unwrap()
}

fn channel(name: &str) -> ChannelRow {
    ChannelRow {
        id: 0,
        name: name.into(),
        kind: "slack".into(),
        endpoint: "https://hooks.slack.com:443".into(),
        url_enc: "enc:url".into(),
        secret_enc: None,
        enabled: true,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn rule(name: &str, channels: Vec<i64>) -> RuleRow {
    RuleRow {
        id: 0,
        name: name.into(),
        kind: "lag".into(),
        task_id: Some(3),
        threshold: Some(12.5),
        for_secs: 30,
        level: "critical".into(),
        channels,
        enabled: true,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn entry(rule_id: i64, task: i64, state: &str, level: &str) -> HistoryRow {
    HistoryRow {
        id: 0,
        ts: String::new(),
        rule_id,
        rule: "r".into(),
        kind: "lag".into(),
        level: level.into(),
        state: state.into(),
        task_id: Some(task),
        task: Some("t".into()),
        message: "lag 90 s".into(),
        value: Some(90.25),
        threshold: Some(60.0),
        deliveries: json!([]),
    }
}

async fn exercise(s: &SqlStore) {
    // Channels: insert, unique names, update, delete.
    let a = s.save_alert_channel(&channel("a")).await.unwrap();
    assert!(
        s.save_alert_channel(&channel("a"))
            .await
            .unwrap_err()
            .conflict
    );
    let mut c = s.alert_channel(a).await.unwrap().unwrap();
    assert_eq!(
        (c.kind.as_str(), c.url_enc.as_str(), c.enabled),
        ("slack", "enc:url", true)
    );
    c.secret_enc = Some("enc:secret".into());
    c.enabled = false;
    s.save_alert_channel(&c).await.unwrap();
    let c = s.alert_channel(a).await.unwrap().unwrap();
    assert_eq!(
        (c.secret_enc.as_deref(), c.enabled),
        (Some("enc:secret"), false)
    );
    let b = s.save_alert_channel(&channel("b")).await.unwrap();
    assert_eq!(s.alert_channels().await.unwrap().len(), 2);

    // Rules, with their channels and a fractional threshold.
    let r = s.save_alert_rule(&rule("lag", vec![a, b])).await.unwrap();
    let got = s.alert_rule(r).await.unwrap().unwrap();
    assert_eq!(
        (
            got.threshold,
            got.for_secs,
            got.channels.clone(),
            got.task_id
        ),
        (Some(12.5), 30, vec![a, b], Some(3))
    );
    let mut changed = got.clone();
    changed.threshold = None;
    changed.enabled = false;
    changed.channels = vec![b];
    s.save_alert_rule(&changed).await.unwrap();
    let got = s.alert_rule(r).await.unwrap().unwrap();
    assert_eq!(
        (got.threshold, got.enabled, got.channels),
        (None, false, vec![b])
    );
    assert_eq!(s.rules_using_channel(b).await.unwrap(), ["lag"]);
    assert!(s.rules_using_channel(a).await.unwrap().is_empty());
    assert!(s.delete_alert_channel(a).await.unwrap());
    assert!(!s.delete_alert_channel(a).await.unwrap());

    // History: filters, newest first, deliveries, open alerts.
    let f1 = s
        .add_alert_history(&entry(r, 3, "firing", "critical"))
        .await
        .unwrap();
    s.add_alert_history(&entry(r, 3, "resolved", "critical"))
        .await
        .unwrap();
    s.add_alert_history(&entry(r, 4, "firing", "critical"))
        .await
        .unwrap();
    s.add_alert_history(&entry(9, 3, "firing", "info"))
        .await
        .unwrap();
    s.set_alert_deliveries(f1, &json!([{"channel_id": b, "ok": true, "attempts": 2}]))
        .await
        .unwrap();
    let all = s
        .alert_history(&HistoryFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all[0].id > all[3].id, "newest first");
    assert_eq!(all[3].deliveries[0]["attempts"], 2);
    assert_eq!((all[3].value, all[3].threshold), (Some(90.25), Some(60.0)));
    assert!(!all[3].ts.is_empty());
    let count = |f: HistoryFilter| async move { s.alert_history(&f).await.unwrap().len() };
    let f = |rule, level: Option<&str>, task, state: Option<&str>| HistoryFilter {
        rule,
        level: level.map(str::to_owned),
        task,
        state: state.map(str::to_owned),
        before: None,
        limit: 100,
    };
    assert_eq!(count(f(Some(r), None, None, None)).await, 3);
    assert_eq!(count(f(None, Some("info"), None, None)).await, 1);
    assert_eq!(count(f(None, None, Some(3), None)).await, 3);
    assert_eq!(count(f(Some(r), None, Some(3), Some("firing"))).await, 1);
    assert_eq!(count(f(None, None, None, Some("resolved"))).await, 1);
    let page = s
        .alert_history(&HistoryFilter {
            before: Some(all[1].id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let mut open = s.open_alerts().await.unwrap();
    open.sort();
    assert_eq!(open, [(r, 4), (9, 3)], "(r, 3) fired and resolved");
    assert!(s.delete_alert_rule(r).await.unwrap());
    assert_eq!(
        count(f(Some(r), None, None, None)).await,
        3,
        "history stays"
    );
}

#[tokio::test]
async fn alert_store_on_sqlite() {
    exercise(&sqlite().await).await;
}

#[tokio::test]
async fn alert_store_on_mysql() {
    exercise(&mysql().await).await;
}

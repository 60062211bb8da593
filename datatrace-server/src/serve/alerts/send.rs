//! Sending an alert to stored channels and recording it: one alert-history entry per
//! firing, resolution or test send, completed with each channel's delivery outcome (every
//! attempt's status or error; never the channel's URL).

use serde_json::{json, Value};

use super::channels::{Alert, AlertState};
use super::config::target;
use super::deliver::{deliver, RetryPolicy};
use crate::serve::crypto::MasterKey;
use crate::serve::sql_store::alerts::{ChannelRow, HistoryRow};
use crate::serve::sql_store::SqlStore;
use crate::serve::store::StoreResult;

/// The outcome of delivering `alert` to `channel`, as the history and the API show it.
pub async fn to_channel(
    client: &reqwest::Client,
    channel: &ChannelRow,
    key: &MasterKey,
    alert: &Alert,
    policy: RetryPolicy,
) -> Value {
    let head = json!({"channel_id": channel.id, "channel": channel.name, "kind": channel.kind});
    let outcome = match target(channel, key) {
        Ok(t) => serde_json::to_value(deliver(client, &t, alert, policy).await).unwrap_or_default(),
        Err(e) => {
            json!({"ok": false, "attempts": 0, "status": null, "error": e.message, "tries": []})
        }
    };
    let mut v = head;
    if let (Some(h), Value::Object(o)) = (v.as_object_mut(), outcome) {
        h.extend(o);
    }
    v
}

/// A history entry for `alert` (deliveries still empty).
pub fn history_entry(alert: &Alert, state: &str) -> HistoryRow {
    HistoryRow {
        id: 0,
        ts: String::new(),
        rule_id: alert.rule_id,
        rule: alert.rule.clone(),
        kind: alert.kind.clone(),
        level: alert.level.as_str().to_owned(),
        state: state.to_owned(),
        task_id: alert.task_id,
        task: alert.task.clone(),
        message: alert.message.clone(),
        value: alert.value,
        threshold: alert.threshold,
        deliveries: json!([]),
    }
}

/// The state's name in the history.
pub fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

/// Records `alert` in the history, delivers it to each enabled channel of `channels` in
/// turn, records the outcomes; returns them.
pub async fn record_and_send(
    store: &SqlStore,
    client: &reqwest::Client,
    key: &MasterKey,
    alert: &Alert,
    state: &str,
    channels: &[i64],
    policy: RetryPolicy,
) -> StoreResult<Vec<Value>> {
    let id = store
        .add_alert_history(&history_entry(alert, state))
        .await?;
    send_recorded(store, client, key, alert, (id, state), channels, policy).await
}

/// Delivers `alert`, recorded as history entry `entry` (its id and state), to each enabled
/// channel of `channels` in turn (a test send: to disabled ones too), and records the
/// outcomes; returns them.
pub async fn send_recorded(
    store: &SqlStore,
    client: &reqwest::Client,
    key: &MasterKey,
    alert: &Alert,
    entry: (i64, &str),
    channels: &[i64],
    policy: RetryPolicy,
) -> StoreResult<Vec<Value>> {
    let (id, state) = entry;
    let mut outcomes = Vec::new();
    for c in channels {
        let Some(channel) = store.alert_channel(*c).await? else {
            continue;
        };
        if !channel.enabled && state != "test" {
            continue;
        }
        outcomes.push(to_channel(client, &channel, key, alert, policy).await);
    }
    store
        .set_alert_deliveries(id, &Value::Array(outcomes.clone()))
        .await?;
    Ok(outcomes)
}

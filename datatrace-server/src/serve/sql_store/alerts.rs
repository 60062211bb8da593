//! Alert channels, alert rules and the alert history in the metadata store. A channel's URL (which holds its token) and signing secret are stored
//! encrypted (see [`crate::serve::crypto`]); only its endpoint (scheme, host, port) is kept
//! in clear, to be shown.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{err, opt_i, opt_s, s, SqlStore};
use crate::serve::store::{now, StoreResult};

/// An alert channel (secrets still encrypted).
#[derive(Clone, PartialEq)]
pub struct ChannelRow {
    /// Its id (0 for a new one).
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// `webhook`, `slack`, `dingtalk` or `wecom`.
    pub kind: String,
    /// `scheme://host:port` of the URL, shown instead of it.
    pub endpoint: String,
    /// The encrypted URL.
    pub url_enc: String,
    /// The encrypted signing secret (DingTalk).
    pub secret_enc: Option<String>,
    /// Whether alerts go to it.
    pub enabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRow {
    /// Its id (0 for a new one).
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// What it watches (`task_failed`, `lag`, ...).
    pub kind: String,
    /// Only this task (`None`: every task).
    pub task_id: Option<i64>,
    /// The threshold (`None`: the kind's default).
    pub threshold: Option<f64>,
    /// Seconds the condition must hold before it fires.
    pub for_secs: u64,
    /// `info`, `warning` or `critical`.
    pub level: String,
    /// The channels its alerts go to.
    pub channels: Vec<i64>,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// One entry of the alert history: a firing, a resolution or a test send, with the outcome
/// of its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    /// Increasing id.
    pub id: i64,
    /// When (RFC 3339).
    pub ts: String,
    /// The rule (0 for a test send).
    pub rule_id: i64,
    /// The rule's name then.
    pub rule: String,
    /// The rule's kind (`test` for a test send).
    pub kind: String,
    /// `info`, `warning`, `critical`.
    pub level: String,
    /// `firing`, `resolved` or `test`.
    pub state: String,
    /// The task.
    pub task_id: Option<i64>,
    /// Its name then.
    pub task: Option<String>,
    /// What happened.
    pub message: String,
    /// The value measured.
    pub value: Option<f64>,
    /// The rule's threshold.
    pub threshold: Option<f64>,
    /// Per channel: `{channel_id, channel, ok, attempts, status, error, tries}` (`[]` while
    /// being delivered or when the rule has no channel).
    pub deliveries: serde_json::Value,
}

/// Which history entries to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only this rule.
    pub rule: Option<i64>,
    /// Only this level.
    pub level: Option<String>,
    /// Only this task.
    pub task: Option<i64>,
    /// Only this state (`firing`, `resolved`, `test`).
    pub state: Option<String>,
    /// Only ids below this (older pages).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

const CHANNEL_SELECT: &str = "SELECT id, name, kind, endpoint, url_enc, secret_enc, enabled,
    created_at, updated_at FROM alert_channels";

fn channel_row(r: &AnyRow) -> Result<ChannelRow, sqlx::Error> {
    Ok(ChannelRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        name: s(r, 1)?,
        kind: s(r, 2)?,
        endpoint: s(r, 3)?,
        url_enc: s(r, 4)?,
        secret_enc: opt_s(r, 5)?,
        enabled: opt_i(r, 6)?.unwrap_or(0) != 0,
        created_at: s(r, 7)?,
        updated_at: s(r, 8)?,
    })
}

const RULE_SELECT: &str = "SELECT id, name, kind, task_id, threshold, for_secs, level, channels,
    enabled, created_at, updated_at FROM alert_rules";

/// A floating-point column (some drivers hand back whole numbers as integers).
fn opt_f(r: &AnyRow, i: usize) -> Result<Option<f64>, sqlx::Error> {
    match r.try_get::<Option<f64>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => Ok(opt_i(r, i)?.map(|v| v as f64)),
    }
}

fn rule_row(r: &AnyRow) -> Result<RuleRow, sqlx::Error> {
    Ok(RuleRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        name: s(r, 1)?,
        kind: s(r, 2)?,
        task_id: opt_i(r, 3)?,
        threshold: opt_f(r, 4)?,
        for_secs: opt_i(r, 5)?.unwrap_or(0).max(0) as u64,
        level: s(r, 6)?,
        channels: serde_json::from_str(&s(r, 7)?).unwrap_or_default(),
        enabled: opt_i(r, 8)?.unwrap_or(0) != 0,
        created_at: s(r, 9)?,
        updated_at: s(r, 10)?,
    })
}

fn history_row(r: &AnyRow) -> Result<HistoryRow, sqlx::Error> {
    Ok(HistoryRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        ts: s(r, 1)?,
        rule_id: opt_i(r, 2)?.unwrap_or(0),
        rule: s(r, 3)?,
        kind: s(r, 4)?,
        level: s(r, 5)?,
        state: s(r, 6)?,
        task_id: opt_i(r, 7)?,
        task: opt_s(r, 8)?,
        message: s(r, 9)?,
        value: opt_f(r, 10)?,
        threshold: opt_f(r, 11)?,
        deliveries: opt_s(r, 12)?
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_else(|| serde_json::json!([])),
    })
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl SqlStore {
    // ---- channels ----

    /// Every alert channel, by id.
    pub async fn alert_channels(&self) -> StoreResult<Vec<ChannelRow>> {
        self.rows_by_id(CHANNEL_SELECT, channel_row, "listing alert channels")
            .await
    }

    /// One alert channel.
    pub async fn alert_channel(&self, id: i64) -> StoreResult<Option<ChannelRow>> {
        self.row_by_id(CHANNEL_SELECT, id, channel_row, "reading an alert channel")
            .await
    }

    /// Inserts (`id` 0) or updates an alert channel; its id (a taken name is a conflict).
    pub async fn save_alert_channel(&self, c: &ChannelRow) -> StoreResult<i64> {
        let what = "saving an alert channel";
        let ts = now();
        if c.id == 0 {
            let sql = self.returning_id(
                "INSERT INTO alert_channels (name, kind, endpoint, url_enc, secret_enc, enabled,
                   created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            );
            self.insert_id(
                sqlx::query(&sql)
                    .bind(&c.name)
                    .bind(&c.kind)
                    .bind(&c.endpoint)
                    .bind(&c.url_enc)
                    .bind(&c.secret_enc)
                    .bind(flag(c.enabled))
                    .bind(&ts)
                    .bind(&ts),
                what,
            )
            .await
        } else {
            sqlx::query(
                "UPDATE alert_channels SET name = ?, kind = ?, endpoint = ?, url_enc = ?,
                   secret_enc = ?, enabled = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&c.name)
            .bind(&c.kind)
            .bind(&c.endpoint)
            .bind(&c.url_enc)
            .bind(&c.secret_enc)
            .bind(flag(c.enabled))
            .bind(&ts)
            .bind(c.id)
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
            Ok(c.id)
        }
    }

    /// Deletes an alert channel; whether it existed.
    pub async fn delete_alert_channel(&self, id: i64) -> StoreResult<bool> {
        self.delete_by_id("alert_channels", id, "deleting an alert channel")
            .await
    }

    // ---- rules ----

    /// Every alert rule, by id.
    pub async fn alert_rules(&self) -> StoreResult<Vec<RuleRow>> {
        self.rows_by_id(RULE_SELECT, rule_row, "listing alert rules")
            .await
    }

    /// One alert rule.
    pub async fn alert_rule(&self, id: i64) -> StoreResult<Option<RuleRow>> {
        self.row_by_id(RULE_SELECT, id, rule_row, "reading an alert rule")
            .await
    }

    /// Inserts (`id` 0) or updates an alert rule; its id (a taken name is a conflict).
    pub async fn save_alert_rule(&self, r: &RuleRow) -> StoreResult<i64> {
        let what = "saving an alert rule";
        let ts = now();
        let channels = serde_json::to_string(&r.channels).unwrap_or_else(|_| "[]".into());
        let for_secs = i64::try_from(r.for_secs).unwrap_or(i64::MAX);
        if r.id == 0 {
            let sql = self.returning_id(
                "INSERT INTO alert_rules (name, kind, task_id, threshold, for_secs, level,
                   channels, enabled, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            self.insert_id(
                sqlx::query(&sql)
                    .bind(&r.name)
                    .bind(&r.kind)
                    .bind(r.task_id)
                    .bind(r.threshold)
                    .bind(for_secs)
                    .bind(&r.level)
                    .bind(&channels)
                    .bind(flag(r.enabled))
                    .bind(&ts)
                    .bind(&ts),
                what,
            )
            .await
        } else {
            sqlx::query(
                "UPDATE alert_rules SET name = ?, kind = ?, task_id = ?, threshold = ?,
                   for_secs = ?, level = ?, channels = ?, enabled = ?, updated_at = ?
                 WHERE id = ?",
            )
            .bind(&r.name)
            .bind(&r.kind)
            .bind(r.task_id)
            .bind(r.threshold)
            .bind(for_secs)
            .bind(&r.level)
            .bind(&channels)
            .bind(flag(r.enabled))
            .bind(&ts)
            .bind(r.id)
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
            Ok(r.id)
        }
    }

    /// Deletes an alert rule (its history stays); whether it existed.
    pub async fn delete_alert_rule(&self, id: i64) -> StoreResult<bool> {
        self.delete_by_id("alert_rules", id, "deleting an alert rule")
            .await
    }

    /// Names of the rules that send to channel `id`.
    pub async fn rules_using_channel(&self, id: i64) -> StoreResult<Vec<String>> {
        Ok(self
            .alert_rules()
            .await?
            .into_iter()
            .filter(|r| r.channels.contains(&id))
            .map(|r| r.name)
            .collect())
    }

    // ---- history ----

    /// Appends a history entry (its `id` and `ts` are set here); returns its id.
    pub async fn add_alert_history(&self, h: &HistoryRow) -> StoreResult<i64> {
        let sql = self.returning_id(
            "INSERT INTO alert_history (ts, rule_id, rule, kind, level, state, task_id, task,
               message, value, threshold, deliveries) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        self.insert_id(
            sqlx::query(&sql)
                .bind(now())
                .bind(h.rule_id)
                .bind(&h.rule)
                .bind(&h.kind)
                .bind(&h.level)
                .bind(&h.state)
                .bind(h.task_id)
                .bind(&h.task)
                .bind(&h.message)
                .bind(h.value)
                .bind(h.threshold)
                .bind(h.deliveries.to_string()),
            "writing the alert history",
        )
        .await
    }

    /// Records how the deliveries of history entry `id` went.
    pub async fn set_alert_deliveries(
        &self,
        id: i64,
        deliveries: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE alert_history SET deliveries = ? WHERE id = ?")
            .bind(deliveries.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(err("writing the alert history"))
            .map(|_| ())
    }

    /// History entries passing `filter`, newest first.
    pub async fn alert_history(&self, f: &HistoryFilter) -> StoreResult<Vec<HistoryRow>> {
        let what = "reading the alert history";
        let rows = sqlx::query(
            "SELECT id, ts, rule_id, rule, kind, level, state, task_id, task, message, value,
               threshold, deliveries FROM alert_history
             WHERE (? IS NULL OR rule_id = ?) AND (? IS NULL OR level = ?)
               AND (? IS NULL OR task_id = ?) AND (? IS NULL OR state = ?)
               AND (? IS NULL OR id < ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(f.rule)
        .bind(f.rule)
        .bind(&f.level)
        .bind(&f.level)
        .bind(f.task)
        .bind(f.task)
        .bind(&f.state)
        .bind(&f.state)
        .bind(f.before)
        .bind(f.before)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(history_row)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// The (rule, task) pairs whose latest firing or resolution is a firing: alerts still
    /// open (the evaluator resumes them after a restart instead of firing them again).
    pub async fn open_alerts(&self) -> StoreResult<Vec<(i64, i64)>> {
        let what = "reading open alerts";
        let rows = sqlx::query(
            "SELECT h.rule_id, h.task_id FROM alert_history h
             WHERE h.state = 'firing' AND h.task_id IS NOT NULL AND h.id = (
               SELECT MAX(x.id) FROM alert_history x
               WHERE x.rule_id = h.rule_id AND x.task_id = h.task_id
                 AND x.state IN ('firing', 'resolved'))",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| Ok((opt_i(r, 0)?.unwrap_or(0), opt_i(r, 1)?.unwrap_or(0))))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err(what))
    }
}

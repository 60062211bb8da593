//! What clients send to create or change alert channels and rules, how it is checked, and
//! how channels are shown: never with their URL (it holds the channel's token) or signing
//! secret, only the endpoint (`https://hooks.slack.com:443`) and whether a secret is set.

use serde::{Deserialize, Serialize};

use super::channels::{ChannelKind, Level};
use super::deliver::Target;
use super::rules::{RuleKind, RuleSpec};
use crate::serve::crypto::MasterKey;
use crate::serve::http::ApiError;
use crate::serve::sql_store::alerts::{ChannelRow, RuleRow};

/// The longest URL a channel may have.
const MAX_URL: usize = 2048;
/// The largest threshold (seconds, rows: far beyond any real one).
const MAX_THRESHOLD: f64 = 1e12;
/// The longest `for_secs`: 30 days.
const MAX_FOR_SECS: u64 = 30 * 24 * 3600;
/// The most channels a rule may send to.
const MAX_CHANNELS: usize = 50;

/// A channel as a client sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// A unique name.
    pub name: String,
    /// `webhook`, `slack`, `dingtalk` or `wecom`.
    pub kind: String,
    /// The URL to post to (with its token); on update, absent keeps the stored one.
    #[serde(default)]
    pub url: Option<String>,
    /// DingTalk's signing secret; on update, absent keeps the stored one and `""` removes it.
    #[serde(default)]
    pub secret: Option<String>,
    /// Whether alerts go to it (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for ChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInput")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A channel as the API shows it.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Scheme, host and port of its URL (the URL itself is never shown).
    pub endpoint: String,
    /// Whether a signing secret is stored.
    pub has_secret: bool,
    /// Whether alerts go to it.
    pub enabled: bool,
    /// Created.
    pub created_at: String,
    /// Changed.
    pub updated_at: String,
}

impl From<&ChannelRow> for ChannelView {
    fn from(r: &ChannelRow) -> Self {
        ChannelView {
            id: r.id,
            name: r.name.clone(),
            kind: r.kind.clone(),
            endpoint: r.endpoint.clone(),
            has_secret: r.secret_enc.is_some(),
            enabled: r.enabled,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

fn name_of(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 191 {
        return Err(ApiError::bad(
            "name",
            "the name must have 1 to 191 characters",
        ));
    }
    Ok(name.to_owned())
}

/// `scheme://host:port` of a channel URL, checked: http(s), a host, at most 2048 bytes.
fn endpoint_of(url: &str) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::bad("url", m);
    if url.len() > MAX_URL {
        return Err(bad("the URL is longer than 2048 bytes"));
    }
    let parsed = url::Url::parse(url).map_err(|e| {
        ApiError::bad(
            "url",
            format!("not a URL ({e}): expected https://host/path"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("expected an http:// or https:// URL"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("the URL has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or_default();
    Ok(format!(
        "{}://{}:{port}",
        parsed.scheme(),
        host.to_ascii_lowercase()
    ))
}

/// Checks a channel input and turns it into a row (encrypting its URL and secret); `old` is
/// the stored row on update.
pub fn channel_row(
    input: ChannelInput,
    old: Option<&ChannelRow>,
    key: &MasterKey,
) -> Result<ChannelRow, ApiError> {
    let name = name_of(&input.name)?;
    let kind = ChannelKind::parse(input.kind.trim()).ok_or_else(|| {
        ApiError::bad(
            "kind",
            format!(
                "unknown kind {:?}: expected webhook, slack, dingtalk or wecom",
                input.kind
            ),
        )
    })?;
    let seal = |s: &str| {
        key.encrypt(s)
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    let (endpoint, url_enc) = match (input.url.as_deref().map(str::trim), old) {
        (Some(u), _) => (endpoint_of(u)?, seal(u)?),
        (None, Some(o)) => (o.endpoint.clone(), o.url_enc.clone()),
        (None, None) => return Err(ApiError::bad("url", "the channel needs a url")),
    };
    let secret_enc = match (input.secret.as_deref(), old) {
        (Some(""), _) => None,
        (Some(s), _) => Some(seal(s)?),
        (None, Some(o)) => {
            // A stored secret is never used for another host than the one it was given for.
            if o.secret_enc.is_some() && o.endpoint != endpoint {
                return Err(ApiError::bad(
                    "secret",
                    format!(
                        "the URL now points to {endpoint} instead of {}: give the secret again \
                         (or \"\" for none)",
                        o.endpoint
                    ),
                ));
            }
            o.secret_enc.clone()
        }
        (None, None) => None,
    };
    if secret_enc.is_some() && kind != ChannelKind::DingTalk {
        return Err(ApiError::bad(
            "secret",
            "only DingTalk robots take a signing secret",
        ));
    }
    Ok(ChannelRow {
        id: old.map_or(0, |o| o.id),
        name,
        kind: kind.as_str().to_owned(),
        endpoint,
        url_enc,
        secret_enc,
        enabled: input.enabled.unwrap_or(true),
        created_at: old.map(|o| o.created_at.clone()).unwrap_or_default(),
        updated_at: String::new(),
    })
}

/// Where a channel's alerts go, its secrets decrypted (in memory only).
pub fn target(row: &ChannelRow, key: &MasterKey) -> Result<Target, ApiError> {
    let open = |enc: &str| {
        key.decrypt(enc)
            .map_err(|e| ApiError::internal(format!("alert channel {:?}: {e}", row.name)))
    };
    Ok(Target {
        kind: ChannelKind::parse(&row.kind)
            .ok_or_else(|| ApiError::internal(format!("alert channel {:?}: bad kind", row.name)))?,
        url: open(&row.url_enc)?,
        secret: row.secret_enc.as_deref().map(open).transpose()?,
    })
}

/// A rule as a client sends it (the whole rule, on create and update alike).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// A unique name.
    pub name: String,
    /// What it watches: `task_failed`, `lag`, `dlq_growing`, `drift_found`,
    /// `binlog_retention`, `task_idle`.
    pub kind: String,
    /// Only this task (absent: every task).
    #[serde(default)]
    pub task_id: Option<i64>,
    /// The threshold (absent: the kind's default).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Seconds the condition must hold before it fires (default 0).
    #[serde(default)]
    pub for_secs: Option<u64>,
    /// `info`, `warning` (default) or `critical`.
    #[serde(default)]
    pub level: Option<String>,
    /// The channels its alerts go to.
    #[serde(default)]
    pub channels: Vec<i64>,
    /// Whether it is evaluated (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Checks a rule input (the channels and the task must exist: `known_channels`,
/// `task_exists`) and turns it into a row; `id` 0 for a new rule.
pub fn rule_row(
    input: RuleInput,
    id: i64,
    known_channels: &[i64],
    task_exists: bool,
) -> Result<RuleRow, ApiError> {
    let name = name_of(&input.name)?;
    let kind = RuleKind::parse(input.kind.trim()).ok_or_else(|| {
        let all: Vec<&str> = RuleKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::bad(
            "kind",
            format!(
                "unknown kind {:?}: expected one of {}",
                input.kind,
                all.join(", ")
            ),
        )
    })?;
    if let Some(t) = input.threshold {
        if !t.is_finite() || !(0.0..=MAX_THRESHOLD).contains(&t) {
            return Err(ApiError::bad(
                "threshold",
                format!("the threshold must be a number from 0 to {MAX_THRESHOLD:e}"),
            ));
        }
    }
    let for_secs = input.for_secs.unwrap_or(0);
    if for_secs > MAX_FOR_SECS {
        return Err(ApiError::bad(
            "for_secs",
            format!("for_secs must be at most {MAX_FOR_SECS} (30 days)"),
        ));
    }
    let level = match input.level.as_deref().map(str::trim) {
        None | Some("") => Level::Warning,
        Some(l) => Level::parse(l).ok_or_else(|| {
            ApiError::bad(
                "level",
                format!("unknown level {l:?}: expected info, warning or critical"),
            )
        })?,
    };
    if input.channels.len() > MAX_CHANNELS {
        return Err(ApiError::bad(
            "channels",
            format!("at most {MAX_CHANNELS} channels"),
        ));
    }
    let mut channels = Vec::new();
    for (i, c) in input.channels.iter().enumerate() {
        if !known_channels.contains(c) {
            return Err(ApiError::bad(
                format!("channels[{i}]"),
                format!("no alert channel {c}"),
            ));
        }
        if !channels.contains(c) {
            channels.push(*c);
        }
    }
    if input.task_id.is_some() && !task_exists {
        return Err(ApiError::bad(
            "task_id",
            format!("no task {}", input.task_id.unwrap_or_default()),
        ));
    }
    Ok(RuleRow {
        id,
        name,
        kind: kind.as_str().to_owned(),
        task_id: input.task_id,
        threshold: input.threshold,
        for_secs,
        level: level.as_str().to_owned(),
        channels,
        enabled: input.enabled.unwrap_or(true),
        created_at: String::new(),
        updated_at: String::new(),
    })
}

/// The evaluator's view of a stored rule (`None` for a row it cannot read).
pub fn spec(r: &RuleRow) -> Option<RuleSpec> {
    Some(RuleSpec {
        id: r.id,
        kind: RuleKind::parse(&r.kind)?,
        task_id: r.task_id,
        threshold: r.threshold,
        for_secs: r.for_secs,
        level: Level::parse(&r.level)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_bytes(&[7; 32], "test")
    }

    fn input(url: Option<&str>, secret: Option<&str>) -> ChannelInput {
        ChannelInput {
            name: "ops".into(),
            kind: "dingtalk".into(),
            url: url.map(str::to_owned),
            secret: secret.map(str::to_owned),
            enabled: None,
        }
    }

    #[test]
    fn channels_keep_their_secrets_encrypted_and_for_their_host() {
        let k = key();
        let url = "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123";
        let row = channel_row(input(Some(url), Some("SEC456")), None, &k).unwrap();
        assert_eq!(row.endpoint, "https://oapi.dingtalk.com:443");
        assert!(!row.url_enc.contains("TOKEN123"));
        let t = target(&row, &k).unwrap();
        assert_eq!((t.url.as_str(), t.secret.as_deref()), (url, Some("SEC456")));
        let view = serde_json::to_string(&ChannelView::from(&row)).unwrap();
        assert!(
            !view.contains("TOKEN123") && !view.contains("SEC456"),
            "{view}"
        );
        // Absent keeps; another host needs the secret again; "" removes it.
        let same = channel_row(input(None, None), Some(&row), &k).unwrap();
        assert_eq!(same.secret_enc, row.secret_enc);
        let moved = channel_row(input(Some("https://evil.example/x"), None), Some(&row), &k);
        assert_eq!(moved.unwrap_err().field.as_deref(), Some("secret"));
        let none = channel_row(input(None, Some("")), Some(&row), &k).unwrap();
        assert!(none.secret_enc.is_none());
        let e = channel_row(input(Some("ftp://h/x"), None), None, &k).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"));
        let e = channel_row(input(None, None), None, &k).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"));
    }

    #[test]
    fn rules_are_checked() {
        let r = |kind: &str, threshold: Option<f64>, channels: Vec<i64>| RuleInput {
            name: "r".into(),
            kind: kind.into(),
            task_id: None,
            threshold,
            for_secs: None,
            level: Some("critical".into()),
            channels,
            enabled: None,
        };
        let ok = rule_row(r("lag", Some(30.0), vec![1, 1]), 0, &[1], false).unwrap();
        assert_eq!((ok.channels, ok.level.as_str()), (vec![1], "critical"));
        let e = rule_row(r("lagg", None, vec![]), 0, &[], false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("kind"));
        let e = rule_row(r("lag", Some(f64::NAN), vec![]), 0, &[], false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("threshold"));
        let e = rule_row(r("lag", Some(-1.0), vec![]), 0, &[], false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("threshold"));
        let e = rule_row(r("lag", None, vec![2]), 0, &[1], false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("channels[0]"));
    }
}

//! Alert channels and their payloads: a generic webhook (the alert as JSON), Slack incoming
//! webhooks, DingTalk custom robots (optionally signed with the robot's secret) and WeCom
//! (企业微信) group robots. Text from users (task and rule names, messages) is escaped for
//! each chat's markup, so a task name cannot mention `@all` or forge a link.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// For the record.
    Info,
    /// Needs a look soon.
    Warning,
    /// Needs action now.
    Critical,
}

impl Level {
    /// `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    /// Parses a name of [`Level::as_str`].
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Info, Level::Warning, Level::Critical]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// It no longer holds.
    Resolved,
}

/// One alert as channels receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's id (0 for a test message).
    pub rule_id: i64,
    /// The rule's name.
    pub rule: String,
    /// What the rule watches (`task_failed`, `lag`, ...).
    pub kind: String,
    /// How bad.
    pub level: Level,
    /// Firing or resolved.
    pub state: AlertState,
    /// The task, when the alert is about one.
    pub task_id: Option<i64>,
    /// Its name.
    pub task: Option<String>,
    /// What happened, in a sentence.
    pub message: String,
    /// The value measured, when there is one (seconds of lag, rows differing, ...).
    pub value: Option<f64>,
    /// The rule's threshold, when it has one.
    pub threshold: Option<f64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The kinds of channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Any HTTP endpoint: the alert as JSON.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A DingTalk custom robot.
    DingTalk,
    /// A WeCom group robot.
    WeCom,
}

impl ChannelKind {
    /// Parses `webhook`, `slack`, `dingtalk`, `wecom`.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        Some(match s {
            "webhook" => ChannelKind::Webhook,
            "slack" => ChannelKind::Slack,
            "dingtalk" => ChannelKind::DingTalk,
            "wecom" => ChannelKind::WeCom,
            _ => return None,
        })
    }

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::DingTalk => "dingtalk",
            ChannelKind::WeCom => "wecom",
        }
    }

    /// Whether the service answers `{"errcode": 0}` on success (HTTP 200 alone is not).
    pub fn has_errcode(self) -> bool {
        matches!(self, ChannelKind::DingTalk | ChannelKind::WeCom)
    }
}

fn title(a: &Alert) -> String {
    let state = match a.state {
        AlertState::Firing => a.level.as_str().to_uppercase(),
        AlertState::Resolved => "RESOLVED".to_owned(),
    };
    match &a.task {
        Some(t) => format!("[{state}] {} - task {t}", a.rule),
        None => format!("[{state}] {}", a.rule),
    }
}

fn details(a: &Alert) -> Vec<(String, String)> {
    let mut v = vec![("Level".to_owned(), a.level.as_str().to_owned())];
    if let Some(t) = &a.task {
        v.push((
            "Task".into(),
            format!("{t} (#{})", a.task_id.unwrap_or_default()),
        ));
    }
    if let Some(x) = a.value {
        v.push(("Value".into(), trim_float(x)));
    }
    if let Some(x) = a.threshold {
        v.push(("Threshold".into(), trim_float(x)));
    }
    v.push((
        "At".into(),
        a.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    ));
    v
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// Slack's mrkdwn: `&`, `<` and `>` escaped (no `<!channel>`, no forged links).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown of DingTalk and WeCom: what could mention (`@all`, `<@id>`), link
/// (`[text](url)`) or add markup tags (`<font>`) becomes its full-width look-alike, so user
/// text reads the same and does nothing.
fn markdown_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '@' => '＠',
            '<' => '＜',
            '>' => '＞',
            '[' => '［',
            ']' => '］',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// The request body for `kind`.
pub fn payload(kind: ChannelKind, a: &Alert) -> Value {
    match kind {
        ChannelKind::Webhook => json!({
            "source": "datatrace",
            "alert": a,
            "title": title(a),
        }),
        ChannelKind::Slack => {
            let fields: Vec<Value> = details(a)
                .into_iter()
                .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
                .collect();
            json!({
                "text": slack_escape(&format!("{}: {}", title(a), a.message)),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": truncate(&title(a), 150)}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&a.message)}},
                    {"type": "section", "fields": fields},
                ]
            })
        }
        ChannelKind::DingTalk => {
            let mut text = format!(
                "### {}\n\n{}\n\n",
                markdown_escape(&title(a)),
                markdown_escape(&a.message)
            );
            for (k, v) in details(a) {
                text.push_str(&format!("- **{k}**: {}\n", markdown_escape(&v)));
            }
            json!({
                "msgtype": "markdown",
                "markdown": {"title": truncate(&title(a), 60), "text": text},
                "at": {"isAtAll": false, "atMobiles": [], "atUserIds": []},
            })
        }
        ChannelKind::WeCom => {
            let color = match (a.state, a.level) {
                (AlertState::Resolved, _) => "info",
                (_, Level::Critical) => "warning",
                (_, Level::Warning) => "comment",
                (_, Level::Info) => "info",
            };
            let mut content = format!(
                "**<font color=\"{color}\">{}</font>**\n{}\n",
                markdown_escape(&title(a)),
                markdown_escape(&a.message)
            );
            for (k, v) in details(a) {
                content.push_str(&format!("> {k}: {}\n", markdown_escape(&v)));
            }
            json!({"msgtype": "markdown", "markdown": {"content": truncate(&content, 4000)}})
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// DingTalk's signature of a robot with a secret: `&timestamp=<ms>&sign=<base64(HMAC-SHA256
/// of "<ms>\n<secret>")>` appended to the URL.
pub fn dingtalk_signed_url(url: &str, secret: &str, now_ms: i64) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{now_ms}\n{secret}").as_bytes());
    let sign = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let sign: String = form_urlencoded::byte_serialize(sign.as_bytes()).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={now_ms}&sign={sign}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn alert(task: &str) -> Alert {
        Alert {
            rule_id: 3,
            rule: "lag above 60s".into(),
            kind: "lag".into(),
            level: Level::Critical,
            state: AlertState::Firing,
            task_id: Some(7),
            task: Some(task.into()),
            message: format!("task {task}: lag 95 s (threshold 60 s)"),
            value: Some(95.0),
            threshold: Some(60.0),
            at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    #[test]
    fn webhook_carries_the_alert() {
        let p = payload(ChannelKind::Webhook, &alert("orders"));
        assert_eq!(p["alert"]["level"], "critical");
        assert_eq!(p["alert"]["state"], "firing");
        assert_eq!(p["alert"]["task_id"], 7);
        assert_eq!(p["alert"]["value"], 95.0);
        assert_eq!(p["title"], "[CRITICAL] lag above 60s - task orders");
    }

    #[test]
    fn chat_payloads_have_their_shapes_and_escape_user_text() {
        let evil = "x <!channel> <http://evil|click> @all *bold*";
        let s = payload(ChannelKind::Slack, &alert(evil));
        let text = s["text"].as_str().unwrap();
        assert!(
            !text.contains("<!channel>") && !text.contains("<http"),
            "{text}"
        );
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert_eq!(s["blocks"][0]["type"], "header");

        let d = payload(ChannelKind::DingTalk, &alert(evil));
        assert_eq!(d["msgtype"], "markdown");
        let md = d["markdown"]["text"].as_str().unwrap();
        assert!(!md.contains("@all") && md.contains("＠all"), "{md}");
        assert!(
            !md.contains("<http") && !md.contains("[") && md.contains("＜http"),
            "{md}"
        );
        assert_eq!(d["at"]["isAtAll"], false);

        let w = payload(ChannelKind::WeCom, &alert(evil));
        assert_eq!(w["msgtype"], "markdown");
        let c = w["markdown"]["content"].as_str().unwrap();
        assert!(c.contains("<font color=\"warning\">"), "{c}");
        assert!(!c.contains("<http") && !c.contains("@all"), "{c}");
    }

    #[test]
    fn dingtalk_signature() {
        // The documented algorithm, checked against a value computed independently
        // (python3: base64(hmac.new(b"SEC", b"1700000000000\nSEC", sha256).digest())).
        let u = dingtalk_signed_url(
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            "SEC",
            1_700_000_000_000,
        );
        assert!(
            u.starts_with(
                "https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign="
            ),
            "{u}"
        );
        assert!(
            u.ends_with("&sign=r%2B2we0q01lkZqz38LA5IPNbHN81U1leRf3Au4PSQb6Q%3D"),
            "{u}"
        );
    }
}

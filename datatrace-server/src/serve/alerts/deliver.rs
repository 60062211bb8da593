//! Sending an alert to a channel: one HTTP POST of the channel's payload, retried with
//! backoff on network errors, `429` and `5xx` (and DingTalk / WeCom answers whose `errcode`
//! is not 0 for a rate limit); a `4xx` or a refusal is final. The URL (it holds the
//! channel's token) is never part of an error text.

use std::time::Duration;

use serde::Serialize;

use super::channels::{dingtalk_signed_url, payload, Alert, ChannelKind};

/// Attempts in all and the first pause (doubled after each failure).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts, the first included.
    pub attempts: u32,
    /// The pause before the second attempt.
    pub backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Where to send: the channel's kind, URL and (DingTalk) signing secret.
#[derive(Clone)]
pub struct Target {
    /// The kind.
    pub kind: ChannelKind,
    /// The URL, with its token.
    pub url: String,
    /// DingTalk's signing secret.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Whether the channel took it.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Why it failed (never with the URL).
    pub error: Option<String>,
    /// Each attempt's answer, in order.
    pub tries: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Why it failed (`None`: taken).
    pub error: Option<String>,
}

enum Try {
    Ok(u16),
    Retry(Option<u16>, String),
    Final(Option<u16>, String),
}

/// A client for channels: rustls, no redirects (a webhook that redirects is misconfigured,
/// and the alert should not travel on to another host).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("datatrace/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends `alert` to `target`, retrying per `policy`.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    alert: &Alert,
    policy: RetryPolicy,
) -> Delivery {
    let body = payload(target.kind, alert);
    let mut pause = policy.backoff;
    let mut last = (None, String::new());
    let mut tries = Vec::new();
    let attempts = policy.attempts.max(1);
    for attempt in 1..=attempts {
        match attempt_once(client, target, &body, policy.timeout).await {
            Try::Ok(status) => {
                tries.push(Attempt {
                    status: Some(status),
                    error: None,
                });
                return Delivery {
                    ok: true,
                    attempts: attempt,
                    status: Some(status),
                    error: None,
                    tries,
                };
            }
            Try::Final(status, e) => {
                tries.push(Attempt {
                    status,
                    error: Some(e.clone()),
                });
                return Delivery {
                    ok: false,
                    attempts: attempt,
                    status,
                    error: Some(e),
                    tries,
                };
            }
            Try::Retry(status, e) => {
                tries.push(Attempt {
                    status,
                    error: Some(e.clone()),
                });
                last = (status, e);
            }
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
    Delivery {
        ok: false,
        attempts,
        status: last.0,
        error: Some(format!("{} (gave up after {attempts} attempts)", last.1)),
        tries,
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    target: &Target,
    body: &serde_json::Value,
    timeout: Duration,
) -> Try {
    let url = match (&target.kind, &target.secret) {
        (ChannelKind::DingTalk, Some(secret)) => {
            dingtalk_signed_url(&target.url, secret, chrono::Utc::now().timestamp_millis())
        }
        _ => target.url.clone(),
    };
    let resp = client.post(&url).timeout(timeout).json(body).send().await;
    let resp = match resp {
        Ok(r) => r,
        // reqwest's errors name the URL: keep only the kind of failure.
        Err(e) => return Try::Retry(None, describe(&e)),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status == 429 || status >= 500 {
        return Try::Retry(Some(status), format!("HTTP {status}"));
    }
    if !(200..300).contains(&status) {
        return Try::Final(
            Some(status),
            format!(
                "HTTP {status}: {}",
                crate::secrets::scrub_shapes(&short(&text))
            ),
        );
    }
    if target.kind.has_errcode() {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        match v.get("errcode").and_then(|c| c.as_i64()) {
            Some(0) => {}
            // DingTalk 130101 and WeCom 45009: sending too fast.
            Some(code @ (130101 | 45009)) => {
                return Try::Retry(Some(status), format!("rate limited (errcode {code})"))
            }
            Some(code) => {
                let msg = v.get("errmsg").and_then(|m| m.as_str()).unwrap_or_default();
                return Try::Final(
                    Some(status),
                    format!("refused: errcode {code}: {}", short(msg)),
                );
            }
            None => {
                return Try::Final(Some(status), format!("unexpected answer: {}", short(&text)))
            }
        }
    }
    Try::Ok(status)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_request() {
        "request failed".into()
    } else {
        "transport error".into()
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

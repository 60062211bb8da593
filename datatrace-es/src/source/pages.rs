//! One page of a read, whatever the link and the cluster do meanwhile. Each request already
//! has the connection's `retry`; a page also has the source's `reconnect` budget (default 10
//! minutes, started again once a page arrives), so a read waits through a restarting cluster
//! or a long network outage instead of failing its unit. A page with failed shards (shards
//! still recovering after a restart answer with partial results) is a failure too, never a
//! short page: a short page would end its slice with documents unread.

use bytes::Bytes;
use datatrace_core::Retry;
use elasticsearch::http::Method;
use serde_json::Value as Json;

use super::EsSource;
use crate::contexts::is_context_missing;
use crate::errors::{error_reason, EsError};

/// What a page request gave.
pub(super) enum Page {
    /// The answer, every shard included.
    Body(Bytes),
    /// The search context is gone (expired, or lost in a restart of the cluster).
    ContextMissing,
}

impl EsSource {
    /// A search that may be sent again as it is (a first page, a `search_after` page under a
    /// point-in-time), retried within the `reconnect` budget.
    pub(super) async fn search(
        &self,
        context: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Json,
    ) -> Result<Page, EsError> {
        let mut retry = self.cfg.reconnect.start();
        loop {
            match self.search_once(context, path, query, body, true).await {
                Err(e) if e.is_transient() => self.pause(&mut retry, e).await?,
                other => return other,
            }
        }
    }

    /// A search sent once; `repeatable`: with the connection's retries (never for a scroll
    /// continuation, which the cluster may have served before the answer was lost: sent
    /// again, it would return the page after the lost one).
    pub(super) async fn search_once(
        &self,
        context: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Json,
        repeatable: bool,
    ) -> Result<Page, EsError> {
        let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let r = if repeatable {
            self.client
                .request_retry(context, Method::Post, path, query, Some(bytes))
                .await?
        } else {
            self.client
                .request(Method::Post, path, query, Some(bytes))
                .await
                .map_err(|e| match e {
                    EsError::Unreachable { url, reason } => EsError::Unreachable {
                        url,
                        reason: format!("{context}: {reason}"),
                    },
                    other => other,
                })?
        };
        if !r.is_success() {
            if is_context_missing(r.status, &r.body) {
                return Ok(Page::ContextMissing);
            }
            return Err(self.client.status_error(&r, context, Some(&self.cfg.index)));
        }
        if let Some(reason) = shard_failures(&r.body) {
            return Err(EsError::Http {
                context: context.to_string(),
                status: 503,
                reason,
            });
        }
        Ok(Page::Body(r.body))
    }

    /// Waits before the next attempt after the transient failure `e`, or returns `e` when the
    /// `reconnect` budget is spent.
    pub(super) async fn pause(&self, retry: &mut Retry, e: EsError) -> Result<(), EsError> {
        let Some(delay) = retry.failed(None) else {
            tracing::warn!(index = %self.cfg.index, error = %e, "giving up the read after {}", self.cfg.reconnect.describe_budget());
            return Err(e);
        };
        tracing::warn!(index = %self.cfg.index, attempt = retry.failures(), error = %e, "read interrupted, trying again in {} ms", delay.as_millis());
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// `Some(reason)` when some shards failed to answer a search (`_shards.failed > 0`).
pub(super) fn shard_failures(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "_shards")]
        shards: Option<Shards>,
    }
    #[derive(serde::Deserialize)]
    struct Shards {
        #[serde(default)]
        total: u64,
        #[serde(default)]
        failed: u64,
        #[serde(default)]
        failures: Vec<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    let s = a.shards?;
    if s.failed == 0 {
        return None;
    }
    let first = s
        .failures
        .first()
        .and_then(|f| f.get("reason"))
        .map(|r| {
            let wrapped = serde_json::json!({ "error": r }).to_string();
            format!(": {}", error_reason(wrapped.as_bytes()))
        })
        .unwrap_or_default();
    Some(format!(
        "{} of {} shards failed (partial results are never used){first}",
        s.failed, s.total
    ))
}

#[cfg(test)]
mod tests {
    use super::shard_failures;

    #[test]
    fn partial_answers_are_failures() {
        let ok =
            br#"{"_shards":{"total":3,"successful":3,"skipped":0,"failed":0},"hits":{"hits":[]}}"#;
        assert_eq!(shard_failures(ok), None);
        let partial = br#"{"_shards":{"total":3,"successful":2,"failed":1,"failures":[{"shard":1,"index":"x","reason":{"type":"no_shard_available_action_exception","reason":"No shard available"}}]},"hits":{"hits":[]}}"#;
        let r = shard_failures(partial).unwrap();
        assert!(r.starts_with("1 of 3 shards failed"), "{r}");
        assert!(r.contains("no_shard_available_action_exception"), "{r}");
        assert_eq!(shard_failures(b"{\"hits\":{}}"), None);
    }
}

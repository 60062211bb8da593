//! Search contexts: the point-in-time shared by a source's slices, and scroll release.
//!
//! A point-in-time is opened by the first reader and shared by the slices of the run, so
//! they all read one snapshot. It is closed when the last slice of the split finishes, when
//! a reader stops on an error or a cancel and no other reader is active, and, as a last
//! resort, by a background task when the source is dropped with a context still open.
//! Contexts that expire in between (a long pause, a crash) are replaced by a new one; reads
//! then continue from the stored `search_after` values.

use std::sync::Mutex;

use bytes::Bytes;
use elasticsearch::http::Method;
use serde_json::json;

use crate::client::{encode_path, EsClient, PitApi};
use crate::errors::EsError;

#[derive(Debug, Default)]
struct PitState {
    id: Option<String>,
    active: usize,
    failed: bool,
    /// Parts of the current split and how many finished (unknown on a resumed run).
    expected: Option<usize>,
    finished: usize,
}

/// The point-in-time of one source.
#[derive(Debug)]
pub struct SharedPit {
    api: PitApi,
    index: String,
    keep_alive: String,
    state: tokio::sync::Mutex<PitState>,
    /// Every context id this source opened and whether it was closed (for tests/metrics).
    history: Mutex<Vec<(String, bool)>>,
}

impl SharedPit {
    /// A point-in-time over `index` (not opened yet).
    pub fn new(api: PitApi, index: &str, keep_alive: &str) -> Self {
        SharedPit {
            api,
            index: index.into(),
            keep_alive: keep_alive.into(),
            state: tokio::sync::Mutex::new(PitState::default()),
            history: Mutex::new(Vec::new()),
        }
    }

    /// Declares how many parts the coming run reads, so the context is closed after the
    /// last one.
    pub async fn expect_parts(&self, n: usize) {
        let mut s = self.state.lock().await;
        s.expected = Some(n);
        s.finished = 0;
    }

    /// Opens (or joins) the point-in-time; the caller must call [`SharedPit::leave`].
    pub async fn join(&self, client: &EsClient) -> Result<String, EsError> {
        let mut s = self.state.lock().await;
        if s.id.is_none() {
            s.id = Some(self.open(client).await?);
            s.failed = false;
        }
        s.active += 1;
        Ok(s.id.clone().unwrap_or_default())
    }

    /// Like [`SharedPit::join`], but first adopts `stored` (the context a checkpoint was taken
    /// under) when no context is open yet, so a resumed read continues in the same snapshot.
    /// Returns the id joined; it differs from `stored` when another one was already open.
    pub async fn join_stored(&self, client: &EsClient, stored: &str) -> Result<String, EsError> {
        {
            let mut s = self.state.lock().await;
            if s.id.is_none() {
                s.id = Some(stored.to_string());
                s.failed = false;
                self.history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((stored.to_string(), false));
            }
        }
        self.join(client).await
    }

    /// Replaces an expired context `old` with a new one (unless another reader already did).
    pub async fn renew(&self, client: &EsClient, old: &str) -> Result<String, EsError> {
        let mut s = self.state.lock().await;
        if s.id.as_deref() == Some(old) || s.id.is_none() {
            self.mark_closed(old);
            s.id = Some(self.open(client).await?);
        }
        Ok(s.id.clone().unwrap_or_default())
    }

    /// Records a newer id the cluster returned for the same context.
    pub async fn update(&self, old: &str, new: &str) {
        if old == new {
            return;
        }
        let mut s = self.state.lock().await;
        if s.id.as_deref() == Some(old) {
            s.id = Some(new.to_string());
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.push((new.to_string(), false));
            if let Some(e) = h.iter_mut().find(|(i, _)| i == old) {
                e.1 = true;
            }
        }
    }

    /// A reader is done with the context (`ok`: its part is finished). Closes the context
    /// when nothing more will use it.
    pub async fn leave(&self, client: &EsClient, ok: bool) {
        let mut s = self.state.lock().await;
        s.active = s.active.saturating_sub(1);
        if ok {
            s.finished += 1;
        } else {
            s.failed = true;
        }
        let all_done = s.expected.is_none_or(|n| s.finished >= n);
        if s.active == 0 && (s.failed || all_done) {
            if let Some(id) = s.id.take() {
                self.close(client, &id).await;
            }
            s.failed = false;
        }
    }

    /// A reader stopped by a cancel, in a read whose checkpoints need this very context to
    /// resume exactly (`_shard_doc`): once no reader uses it, the context is left open (it
    /// expires after `keep_alive`) and forgotten here, so a resumed run can adopt it.
    pub async fn leave_for_resume(&self, client: &EsClient) {
        let mut s = self.state.lock().await;
        s.active = s.active.saturating_sub(1);
        if s.active > 0 {
            return;
        }
        if s.failed {
            if let Some(id) = s.id.take() {
                self.close(client, &id).await;
            }
            s.failed = false;
        } else if s.id.take().is_some() {
            tracing::info!(index = %self.index, keep_alive = %self.keep_alive, "point-in-time left open for a resume (it expires after keep_alive)");
        }
    }

    /// Ids of contexts opened so far with whether each was closed.
    pub fn history(&self) -> Vec<(String, bool)> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn mark_closed(&self, id: &str) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = h.iter_mut().find(|(i, _)| i == id) {
            e.1 = true;
        }
    }

    async fn open(&self, client: &EsClient) -> Result<String, EsError> {
        // OpenSearch opens a context over the shards it can reach unless told not to: one
        // opened while shards recover (after a restart) would read part of the index.
        let ka = self.keep_alive.as_str();
        let (path, key, query) = match self.api {
            PitApi::Elasticsearch => (
                format!("/{}/_pit", encode_path(&self.index)),
                "id",
                vec![("keep_alive", ka)],
            ),
            PitApi::OpenSearch => (
                format!("/{}/_search/point_in_time", encode_path(&self.index)),
                "pit_id",
                vec![("keep_alive", ka), ("allow_partial_pit_creation", "false")],
            ),
        };
        let v = client
            .json(
                &format!("opening a point-in-time on index {}", self.index),
                Method::Post,
                &path,
                &query,
                None,
                Some(&self.index),
            )
            .await?;
        let id = v
            .get(key)
            .and_then(|i| i.as_str())
            .ok_or_else(|| EsError::Protocol {
                context: format!("opening a point-in-time on index {}", self.index),
                reason: format!("no {key} in the answer"),
            })?
            .to_string();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id.clone(), false));
        tracing::debug!(index = %self.index, "point-in-time opened");
        Ok(id)
    }

    async fn close(&self, client: &EsClient, id: &str) {
        close_pit(client, self.api, id).await;
        self.mark_closed(id);
        tracing::debug!(index = %self.index, "point-in-time closed");
    }

    /// The open context, if any, for a last-resort close when the source is dropped.
    pub fn take_open(&self) -> Option<String> {
        self.state.try_lock().ok().and_then(|mut s| s.id.take())
    }

    /// The API flavour.
    pub fn api(&self) -> PitApi {
        self.api
    }
}

/// Closes a point-in-time; failures are logged (the context expires anyway).
pub async fn close_pit(client: &EsClient, api: PitApi, id: &str) {
    let (path, body) = match api {
        PitApi::Elasticsearch => ("/_pit", json!({ "id": id })),
        PitApi::OpenSearch => ("/_search/point_in_time", json!({ "pit_id": [id] })),
    };
    let body = Bytes::from(body.to_string());
    match client
        .request_retry(
            "closing a point-in-time",
            Method::Delete,
            path,
            &[],
            Some(body),
        )
        .await
    {
        Ok(r) if r.is_success() || r.status == 404 => {}
        Ok(r) => tracing::warn!(status = r.status, "closing a point-in-time failed"),
        Err(e) => tracing::warn!(error = %e, "closing a point-in-time failed"),
    }
}

/// Releases a scroll context; failures are logged.
pub async fn clear_scroll(client: &EsClient, id: &str) {
    let body = Bytes::from(json!({ "scroll_id": [id] }).to_string());
    match client
        .request_retry(
            "clearing a scroll",
            Method::Delete,
            "/_search/scroll",
            &[],
            Some(body),
        )
        .await
    {
        Ok(r) if r.is_success() || r.status == 404 => {}
        Ok(r) => tracing::warn!(status = r.status, "clearing a scroll failed"),
        Err(e) => tracing::warn!(error = %e, "clearing a scroll failed"),
    }
}

/// Whether an error answer says the search context is gone (expired or closed).
pub fn is_context_missing(status: u16, body: &[u8]) -> bool {
    status == 404
        && std::str::from_utf8(body).is_ok_and(|b| {
            b.contains("search_context_missing_exception") || b.contains("No search context found")
        })
}

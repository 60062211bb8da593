//! Point-in-time reads (`pit` + `search_after`), checkpointed as the last page's sort values
//! (with the point-in-time they came from when the order is relative to it).
//!
//! A slice joins the source's shared point-in-time (the stored one when resuming in an order
//! relative to it). A context that expired or was lost in a restart of the cluster is
//! renewed; sort values relative to the old context mean nothing in the new one, so such a
//! slice is read again from its start (rows are delivered again with the same values).

use datatrace_core::{Emitter, Position, Retry};
use serde_json::{json, Value as Json};

use super::pages::Page;
use super::{EsSource, PitPosition};
use crate::contexts::SharedPit;
use crate::hits::Decoder;

/// Where a slice's point-in-time read stands.
struct PitCursor {
    /// The point-in-time id in use.
    id: String,
    /// The sort values of the last delivered document (`None`: the slice's start).
    after: Option<Json>,
    /// Whether the sort values mean something only in the point-in-time they came from.
    relative: bool,
}

impl EsSource {
    /// Reads `slice` under the shared point-in-time `pit`, from `from` (a [`PitPosition`])
    /// or from the slice's start, then leaves the point-in-time (kept open for a resume
    /// when cancelled in a relative order).
    pub(super) async fn read_pit(
        &self,
        pit: &SharedPit,
        slice: (u64, u64),
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let inferred = self.inferred().await?;
        let decoder = self.decoder(&inferred);
        let relative = self.order_is_pit_relative();
        let resume: Option<PitPosition> = match &from {
            Some(p) => Some(self.resume_from(p, slice, "a point-in-time position")?),
            None => None,
        };
        let mut after: Option<Json> = resume.as_ref().map(|p| Json::Array(p.after.clone()));
        let stored = resume.and_then(|p| p.pit);
        let mut retry = self.cfg.reconnect.start();
        let rejoin = match (&after, &stored) {
            (Some(_), Some(stored)) if relative => Some(stored.as_str()),
            _ => None,
        };
        let id = self.join_pit(pit, rejoin, &mut retry).await?;
        if relative && after.is_some() && stored.as_deref() != Some(id.as_str()) {
            tracing::warn!(index = %self.cfg.index, slice = slice.0, "the point-in-time of the checkpoint is not the open one: reading the slice again from its start (rows are delivered again with the same values)");
            after = None;
        }
        let cursor = PitCursor {
            id,
            after,
            relative,
        };
        let result = self
            .pit_pages(pit, slice, &decoder, cursor, &mut retry, out)
            .await;
        if relative && matches!(result, Err(datatrace_core::Error::Cancelled)) {
            pit.leave_for_resume(&self.client).await;
        } else {
            pit.leave(&self.client, result.is_ok()).await;
        }
        result
    }

    /// Joins the shared point-in-time (the `stored` one, when resuming in a relative order),
    /// waiting through transient failures within the `reconnect` budget.
    async fn join_pit(
        &self,
        pit: &SharedPit,
        stored: Option<&str>,
        retry: &mut Retry,
    ) -> datatrace_core::Result<String> {
        loop {
            let joined = match stored {
                Some(stored) => pit.join_stored(&self.client, stored).await,
                None => pit.join(&self.client).await,
            };
            match joined {
                Err(e) if e.is_transient() => self.pause(retry, e).await?,
                other => break Ok(other?),
            }
        }
    }

    /// Reads the pages of `slice` from `cursor` on, delivering their documents and a
    /// checkpoint after each page, until a short or empty page ends the slice.
    async fn pit_pages(
        &self,
        pit: &SharedPit,
        slice: (u64, u64),
        decoder: &Decoder<'_>,
        mut cursor: PitCursor,
        retry: &mut Retry,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let context = format!(
            "reading index {} (slice {} of {})",
            self.cfg.index, slice.0, slice.1
        );
        loop {
            let mut body = self.base_body(slice);
            body.insert(
                "pit".into(),
                json!({"id": cursor.id, "keep_alive": self.cfg.keep_alive}),
            );
            if let Some(a) = &cursor.after {
                body.insert("search_after".into(), a.clone());
            }
            let bytes = match self
                .search(&context, "/_search", &[], &Json::Object(body))
                .await?
            {
                Page::Body(b) => b,
                Page::ContextMissing => {
                    self.renew_pit(pit, slice.0, &mut cursor, retry).await?;
                    continue;
                }
            };
            let answer = self.parse(&context, &bytes)?;
            if let Some(new) = &answer.pit_id {
                pit.update(&cursor.id, new).await;
                cursor.id = new.clone();
            }
            retry.succeeded();
            let hits = answer.hits.hits;
            let n = hits.len();
            if n == 0 {
                return Ok(());
            }
            let last_sort = hits.last().and_then(|h| h.sort.clone());
            for hit in hits {
                let record = self.decode(decoder, &context, hit)?;
                out.emit(record).await?;
            }
            let Some(sort) = last_sort else {
                return Err(crate::errors::EsError::Protocol {
                    context,
                    reason: "hits without sort values".into(),
                }
                .into());
            };
            let state = PitPosition {
                slice: slice.0,
                after: sort.clone(),
                pit: cursor.relative.then(|| cursor.id.clone()),
            };
            cursor.after = Some(Json::Array(sort));
            out.checkpoint(Position::of(&state)).await?;
            if n < self.cfg.page_size {
                return Ok(());
            }
        }
    }

    /// The point-in-time is gone (expired, or lost in a restart of the cluster, which may
    /// still be recovering its shards: opening a new one is retried). In a relative order
    /// the slice starts over in the new one rather than skip documents.
    async fn renew_pit(
        &self,
        pit: &SharedPit,
        slice: u64,
        cursor: &mut PitCursor,
        retry: &mut Retry,
    ) -> datatrace_core::Result<()> {
        cursor.id = loop {
            match pit.renew(&self.client, &cursor.id).await {
                Err(e) if e.is_transient() => self.pause(retry, e).await?,
                other => break other?,
            }
        };
        if cursor.relative && cursor.after.is_some() {
            // `_doc`/`_shard_doc` values of the old context mean nothing in the new one:
            // start the slice over rather than skip documents.
            tracing::warn!(index = %self.cfg.index, slice, "point-in-time expired: reading the slice again from its start in a new one (raise keep_alive; rows are delivered again with the same values)");
            cursor.after = None;
        } else {
            tracing::info!(index = %self.cfg.index, "point-in-time expired, opening a new one");
        }
        Ok(())
    }
}

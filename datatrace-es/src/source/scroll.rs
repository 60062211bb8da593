//! Sliced scroll reads (clusters without a point-in-time, or `method = "scroll"`), in `_doc`
//! order, checkpointed as the number of documents delivered.
//!
//! A scroll cannot be asked for the same page twice: each continuation moves the context on,
//! so a continuation whose answer was lost (a dropped connection) must not be sent again (it
//! would return the page after the lost one), and a context lost in a restart of the cluster
//! or expired cannot be continued at all. In both cases the slice's scroll starts over and
//! skips the documents already delivered, exactly as a resumed read does: nothing is read
//! twice or skipped if the index did not change meanwhile (a scroll has no stable order
//! across contexts otherwise; a point-in-time read does not have this limit).

use serde_json::{json, Value as Json};

use super::pages::Page;
use super::{EsSource, ScrollPosition};
use crate::client::encode_path;
use crate::contexts::clear_scroll;
use crate::errors::EsError;
use crate::hits::{Decoder, Hit};
use datatrace_core::{Emitter, Position};

impl EsSource {
    /// Reads `slice` with a scroll, from `from` (a [`ScrollPosition`]) or from the slice's
    /// start, and clears the scroll at the end.
    pub(super) async fn read_scroll(
        &self,
        slice: (u64, u64),
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let inferred = self.inferred().await?;
        let decoder = self.decoder(&inferred);
        let read = match from {
            Some(p) => {
                let p: ScrollPosition = self.resume_from(&p, slice, "a scroll position")?;
                p.read
            }
            None => 0,
        };
        let mut scroll_id: Option<String> = None;
        let result = self
            .scroll_slice(slice, &decoder, read, &mut scroll_id, out)
            .await;
        if let Some(sid) = scroll_id {
            clear_scroll(&self.client, &sid).await;
        }
        result
    }

    /// Scrolls through `slice`, skipping the first `read` documents (delivered before),
    /// starting over (and skipping what was delivered) when the scroll is lost or
    /// interrupted; `scroll_id` is the open scroll.
    async fn scroll_slice(
        &self,
        slice: (u64, u64),
        decoder: &Decoder<'_>,
        mut read: u64,
        scroll_id: &mut Option<String>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let context = format!(
            "scrolling index {} (slice {} of {})",
            self.cfg.index, slice.0, slice.1
        );
        let ka = self.cfg.keep_alive.as_str();
        let path = format!("/{}/_search", encode_path(&self.cfg.index));
        let first = Json::Object(self.base_body(slice));
        let mut retry = self.cfg.reconnect.start();
        'scroll: loop {
            // (Re)start the slice's scroll; skip what was delivered before.
            let mut skip = read;
            let mut page = self
                .search(&context, &path, &[("scroll", ka)], &first)
                .await?;
            loop {
                let bytes = match page {
                    Page::Body(b) => b,
                    Page::ContextMissing => {
                        let lost = EsError::Protocol {
                            context: context.clone(),
                            reason: "the scroll context expired or was lost (raise keep_alive)"
                                .into(),
                        };
                        self.pause(&mut retry, lost).await?;
                        tracing::warn!(index = %self.cfg.index, slice = slice.0, delivered = read, "scroll context lost (expired, or the cluster restarted): reading the slice again from its start, skipping the documents delivered");
                        self.forget_scroll(scroll_id).await;
                        continue 'scroll;
                    }
                };
                let a = self.parse(&context, &bytes)?;
                if a.scroll_id.is_some() {
                    *scroll_id = a.scroll_id.clone();
                }
                let hits = a.hits.hits;
                if hits.is_empty() {
                    return Ok(());
                }
                let before = read;
                self.deliver_hits(decoder, &context, hits, &mut skip, &mut read, out)
                    .await?;
                if read > before {
                    retry.succeeded();
                    out.checkpoint(Position::of(&ScrollPosition {
                        slice: slice.0,
                        read,
                    }))
                    .await?;
                }
                let Some(sid) = scroll_id.as_deref() else {
                    return Ok(());
                };
                let body = json!({"scroll": ka, "scroll_id": sid});
                page = match self
                    .search_once(&context, "/_search/scroll", &[], &body, false)
                    .await
                {
                    Ok(p) => p,
                    Err(e) if e.is_transient() => {
                        // The cluster may have moved the scroll on before the answer was
                        // lost: never ask again, start over.
                        self.pause(&mut retry, e).await?;
                        tracing::warn!(index = %self.cfg.index, slice = slice.0, delivered = read, "scroll interrupted: reading the slice again from its start, skipping the documents delivered");
                        self.forget_scroll(scroll_id).await;
                        continue 'scroll;
                    }
                    Err(e) => return Err(e.into()),
                };
            }
        }
    }

    /// Delivers `hits` past the first `skip` ones (counting `skip` down and `read` up).
    async fn deliver_hits(
        &self,
        decoder: &Decoder<'_>,
        context: &str,
        hits: Vec<Hit<'_>>,
        skip: &mut u64,
        read: &mut u64,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        for hit in hits {
            if *skip > 0 {
                *skip -= 1;
                continue;
            }
            let record = self.decode(decoder, context, hit)?;
            out.emit(record).await?;
            *read += 1;
        }
        Ok(())
    }

    /// Clears the open scroll, if any, before starting over.
    async fn forget_scroll(&self, scroll_id: &mut Option<String>) {
        if let Some(sid) = scroll_id.take() {
            clear_scroll(&self.client, &sid).await;
        }
    }
}

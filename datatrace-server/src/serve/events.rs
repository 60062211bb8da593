//! `GET /api/tasks/{id}/events`: a task's live state over server-sent events, with event
//! ids so that a reconnecting browser (`Last-Event-ID`) gets exactly what it missed, or a
//! fresh snapshot when that is no longer kept (or the server restarted).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::http::{ApiError, Id};
use super::live::{event_id, parse_event_id, Catchup, Numbered};
use super::AppState;

/// Milliseconds a browser waits before reconnecting a dropped stream.
pub const RETRY_MS: u64 = 2000;

/// `GET /api/tasks/{id}/events`: a `snapshot` (or, after `Last-Event-ID`, the events
/// missed), then `progress` (at most one per 250 ms), `unit`, `status` and `log` events.
pub async fn task_events(
    State(app): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let hub = app.manager.hub(id).await?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id);
    let (first, mut rx) = hub.subscribe(last);
    let closing = app.manager.closing();
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let mut sent = 0u64;
        let mut catchup = Some(first);
        loop {
            let batch: Vec<Numbered> = match catchup.take() {
                Some(Catchup::Replay(missed)) => missed,
                Some(Catchup::Snapshot(snap)) => vec![snap],
                None => {
                    let next = tokio::select! {
                        m = rx.recv() => m,
                        _ = closing.cancelled() => break,
                    };
                    match next {
                        Ok(n) if n.seq > sent => vec![n],
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => {
                            // Too slow a reader: catch up from the replay buffer.
                            let (c, again) = hub.subscribe(Some(sent));
                            rx = again;
                            catchup = Some(c);
                            continue;
                        }
                        Err(RecvError::Closed) => break,
                    }
                }
            };
            for n in batch {
                sent = sent.max(n.seq);
                let ev = Event::default()
                    .id(event_id(n.seq))
                    .event(n.msg.name())
                    .data(serde_json::to_string(&*n.msg).unwrap_or_default());
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
    });
    let retry = Event::default().retry(Duration::from_millis(RETRY_MS));
    let stream = futures::stream::unfold((Some(retry), out), |(first, mut out)| async move {
        match first {
            Some(r) => Some((Ok(r), (None, out))),
            None => out.recv().await.map(|e| (Ok(e), (None, out))),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

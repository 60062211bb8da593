//! The committer: follows acknowledgements and saves checkpoints behind the watermark.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::context::{CommitMsg, Ctx};
use super::tracker::AckTracker;
use crate::checkpoint::{CheckpointStore, PartState, UnitCheckpoint};
use crate::error::Result;
use crate::record::Position;
use crate::source::Source;
use crate::temporal::Timestamp;

pub(super) async fn commit_loop(
    ctx: Arc<Ctx>,
    mut rx: mpsc::Receiver<CommitMsg>,
    mut parts: Vec<PartState>,
    store: Arc<dyn CheckpointStore>,
    base: UnitCheckpoint,
    source: Arc<dyn Source>,
) -> Result<Vec<PartState>> {
    let mut tracker = AckTracker::default();
    let mut marks: VecDeque<(u64, usize, Option<Position>, bool)> = VecDeque::new();
    let mut dirty = false;
    let mut last_save = Instant::now();
    let interval = ctx.config.checkpoint_interval;
    loop {
        // A pending checkpoint is saved when its interval has passed even if nothing else
        // arrives (an idle change stream must not keep its last position unsaved).
        let due = dirty.then(|| tokio::time::Instant::from_std(last_save + interval));
        let msg = tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => Some(m),
                None => break,
            },
            _ = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        match msg {
            None => {}
            Some(CommitMsg::Mark {
                at,
                part,
                position,
                done,
            }) => marks.push_back((at, part, position, done)),
            Some(CommitMsg::Ack(runs)) => tracker.ack(&runs),
        }
        while marks.front().is_some_and(|m| m.0 <= tracker.watermark()) {
            let (_, part, position, done) = marks.pop_front().expect("checked");
            if let Some(p) = parts.get_mut(part) {
                if let Some(pos) = &position {
                    source.acknowledged(&p.part, pos).await;
                }
                if position.is_some() {
                    p.position = position;
                }
                p.done |= done;
                dirty = true;
            }
        }
        if dirty && last_save.elapsed() >= interval && !ctx.shared.abort.is_cancelled() {
            let cp = UnitCheckpoint {
                parts: parts.clone(),
                written: base.written + ctx.counters.written.load(Ordering::Relaxed),
                updated_at: Timestamp::now(),
                ..base.clone()
            };
            if let Err(e) = store.save(&ctx.job, &ctx.unit, &cp).await {
                ctx.shared.fail(e);
            }
            dirty = false;
            last_save = Instant::now();
        }
    }
    Ok(parts)
}

//! The part readers: each takes parts off a shared queue and reads them into the channel.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::context::{unwind, Ctx};
use crate::checkpoint::PartState;
use crate::error::Error;
use crate::source::{Emitter, Source, SourceMsg};

pub(super) async fn read_loop(
    ctx: Arc<Ctx>,
    source: Arc<dyn Source>,
    parts: Arc<Vec<PartState>>,
    todo: Arc<Mutex<VecDeque<usize>>>,
    tx: mpsc::Sender<SourceMsg>,
) {
    let halt = &ctx.shared.halt;
    loop {
        if halt.is_cancelled() {
            return;
        }
        let Some(idx) = todo.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            return;
        };
        let state = &parts[idx];
        let mut emitter = Emitter::new(idx, ctx.config.batch_size, tx.clone(), halt.clone())
            .with_max_bytes(ctx.config.max_batch_bytes);
        let read = source.read(&state.part, state.position.clone(), &mut emitter);
        let result = unwind(&ctx.unit, "source", read).await;
        match result {
            Err(e @ Error::Panicked { .. }) => {
                tracing::error!(unit = %ctx.unit, part = %state.part.id, error = %e, "source panicked");
                ctx.shared.fail(e);
                return;
            }
            Ok(()) => {
                if emitter.finish().await.is_err() {
                    return;
                }
            }
            Err(_) if halt.is_cancelled() => return,
            Err(Error::Cancelled) => return,
            Err(e) => {
                tracing::error!(unit = %ctx.unit, part = %state.part.id, error = %e, "source failed");
                ctx.shared.fail(e);
                return;
            }
        }
    }
}

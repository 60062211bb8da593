//! Periodic progress events of a running unit.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::progress::{Counters, ProgressEvent, ProgressKind, ProgressSender};
use crate::source::Source;

#[allow(clippy::too_many_arguments)]
pub(super) async fn progress_loop(
    sender: ProgressSender,
    job: Arc<str>,
    unit: Arc<str>,
    counters: Arc<Counters>,
    source: Arc<dyn Source>,
    interval: Duration,
    base_written: u64,
    done: CancellationToken,
) {
    let estimated = source.estimate_rows().await;
    // The rate is measured over a sliding window of a few seconds, so that a sink writing
    // large batches now and then does not flicker between zero and bursts.
    let window = (interval * 8).max(Duration::from_secs(3));
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
    samples.push_back((Instant::now(), 0));
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = Instant::now();
        let written = counters.written.load(Ordering::Relaxed);
        samples.push_back((now, written));
        while samples.len() > 2 && now.duration_since(samples[1].0) >= window {
            samples.pop_front();
        }
        let (t0, w0) = samples[0];
        let rate =
            written.saturating_sub(w0) as f64 / now.duration_since(t0).as_secs_f64().max(1e-6);
        let mut snap = counters.snapshot(estimated, rate);
        snap.written += base_written;
        snap.retention_secs = source.retention_secs();
        snap.partitions = source.partition_lag();
        let _ = sender.send(ProgressEvent {
            job: job.clone(),
            unit: unit.clone(),
            kind: ProgressKind::Progress(snap),
        });
    }
}

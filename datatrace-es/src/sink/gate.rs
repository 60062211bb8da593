//! [`Gate`]: the in-flight limit of a sink's bulk requests, shared by all its writers. A
//! request takes a [`Slot`] before it is sent and hands it back with what the answer said
//! ([`Slot::finish`]); the [`Aimd`] controller moves the limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::aimd::{Aimd, Signal};

/// The limit's state, for the sink's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateStats {
    /// Requests allowed in flight now.
    pub limit: usize,
    /// The highest limit so far.
    pub highest: usize,
    /// The lowest limit so far.
    pub lowest: usize,
    /// Times the limit was lowered (push-back or rising latency).
    pub decreases: u64,
}

struct State {
    aimd: Aimd,
    in_flight: usize,
}

/// Requests in flight, at most the controller's limit.
pub struct Gate {
    state: Mutex<State>,
    freed: Notify,
}

impl Gate {
    /// A gate under `aimd`.
    pub fn new(aimd: Aimd) -> Gate {
        Gate {
            state: Mutex::new(State { aimd, in_flight: 0 }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limit's state.
    pub fn stats(&self) -> GateStats {
        let s = self.lock();
        GateStats {
            limit: s.aimd.limit(),
            highest: s.aimd.highest(),
            lowest: s.aimd.lowest(),
            decreases: s.aimd.decreases(),
        }
    }

    /// Waits for room under the limit and takes it.
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is not missed.
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                let limit = s.aimd.limit();
                if s.in_flight < limit {
                    s.in_flight += 1;
                    return Slot {
                        gate: self,
                        generation: s.aimd.generation(),
                        reached: s.in_flight >= limit,
                        started: Instant::now(),
                        open: true,
                    };
                }
            }
            freed.await;
        }
    }

    fn release(&self, answer: Option<(Duration, Signal, u64, bool)>) {
        {
            let mut s = self.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            if let Some((rtt, signal, generation, reached)) = answer {
                let before = s.aimd.limit();
                let after = s.aimd.on_answer(rtt, signal, generation, reached);
                if before != after {
                    tracing::debug!(from = before, to = after, "bulk requests in flight");
                }
            }
        }
        self.freed.notify_waiters();
    }
}

/// Room for one request under the limit; given back on [`finish`](Slot::finish) or drop
/// (a request that was cancelled: no evidence either way).
pub struct Slot<'a> {
    gate: &'a Gate,
    generation: u64,
    reached: bool,
    started: Instant,
    open: bool,
}

impl Slot<'_> {
    /// The time since the slot was taken (the request's round trip when called on its answer).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Gives the room back with what the answer said and its round trip.
    pub fn finish(mut self, rtt: Duration, signal: Signal) {
        self.open = false;
        self.gate
            .release(Some((rtt, signal, self.generation, self.reached)));
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.open {
            self.gate.release(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn waits_for_room_and_follows_the_limit() {
        let gate = Arc::new(Gate::new(Aimd::adaptive(2, 4)));
        let a = gate.acquire().await;
        let b = gate.acquire().await;
        assert!(b.reached && !a.reached);
        // A third waits until one is given back.
        let g = gate.clone();
        let third = tokio::spawn(async move {
            let s = g.acquire().await;
            drop(s);
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        // Push-back halves the limit to 1: the freed room is not enough while `b` is out.
        a.finish(Duration::from_millis(5), Signal::BackPressure);
        tokio::task::yield_now().await;
        assert_eq!(gate.stats().limit, 1);
        assert!(!third.is_finished());
        drop(b); // a cancelled request: room back, no evidence
        third.await.unwrap();
        let s = gate.stats();
        assert_eq!((s.limit, s.lowest, s.highest, s.decreases), (1, 1, 2, 1));
    }
}

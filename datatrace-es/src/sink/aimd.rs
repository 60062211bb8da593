//! [`Aimd`]: how many bulk requests may be in flight, adapted to what the cluster answers
//! (additive increase, multiplicative decrease, after Vector's adaptive request concurrency).
//!
//! The controller sees each answered request: its round-trip time, whether the cluster
//! pushed back (HTTP 429/502/503/504, an item rejected with 429 or 503, no answer at all),
//! the limit's generation when it was sent, and whether the limit was reached when it was
//! sent. It decides per window of about `limit` answers:
//!
//! - **push-back**: the limit is halved at once (at least 1) and a new generation starts;
//!   push-back on requests sent before that decrease is not counted again (one decrease per
//!   round of requests, as TCP does per round trip), nor are their latencies.
//! - **latency near the minimum** (a window's mean round trip at most [`NEAR`] x the lowest
//!   window mean seen) while the limit was reached: one more request (at most `max`).
//! - **rising latency** (a window's mean above [`RISE`] x that minimum): halved. At a limit
//!   of 1 the window's mean becomes the new minimum (the cluster is slower for everyone:
//!   the floor's latency is the baseline).
//! - otherwise the limit holds.
//!
//! It holds no clock and does no I/O: the sink's gate ([`super::gate`]) measures and calls
//! it, and the tests feed it round trips.

use std::time::Duration;

/// A window's mean round trip at most this many times the minimum grows the limit.
pub const NEAR: f64 = 1.3;
/// A window's mean round trip above this many times the minimum halves the limit.
pub const RISE: f64 = 2.0;
/// Answers per window at least (a window of one answer is all noise).
const MIN_WINDOW: u32 = 3;

/// What an answered request says about the cluster's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered without push-back (items may still have failed for other reasons).
    Ok,
    /// Pushed back: 429/502/503/504 for the request or an item, or no answer.
    BackPressure,
}

/// The concurrency limit and its evidence (see the module docs).
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: usize,
    max: usize,
    adaptive: bool,
    generation: u64,
    /// The lowest window mean round trip seen (the baseline), in seconds.
    min_rtt: Option<f64>,
    answers: u32,
    rtt_sum: f64,
    reached: bool,
    decreases: u64,
    highest: usize,
    lowest: usize,
}

impl Aimd {
    /// Adaptive, starting at `initial` (at most `max`, at least 1), never above `max`.
    pub fn adaptive(initial: usize, max: usize) -> Aimd {
        let max = max.max(1);
        let limit = initial.clamp(1, max);
        Aimd {
            limit,
            max,
            adaptive: true,
            generation: 0,
            min_rtt: None,
            answers: 0,
            rtt_sum: 0.0,
            reached: false,
            decreases: 0,
            highest: limit,
            lowest: limit,
        }
    }

    /// A fixed limit of `n` (at least 1): answers change nothing.
    pub fn fixed(n: usize) -> Aimd {
        Aimd {
            adaptive: false,
            ..Aimd::adaptive(n, n)
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The current generation (grows at every decrease).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Decreases so far.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }

    /// The highest limit so far.
    pub fn highest(&self) -> usize {
        self.highest
    }

    /// The lowest limit so far.
    pub fn lowest(&self) -> usize {
        self.lowest
    }

    /// Takes one answer: `rtt` its round trip, `sent_in` the generation when it was sent,
    /// `reached` whether the limit was reached when it was sent. Returns the new limit.
    pub fn on_answer(
        &mut self,
        rtt: Duration,
        signal: Signal,
        sent_in: u64,
        reached: bool,
    ) -> usize {
        if !self.adaptive || sent_in != self.generation {
            // Sent under an older (higher) limit: already reacted to.
            return self.limit;
        }
        match signal {
            Signal::BackPressure => self.decrease(),
            Signal::Ok => {
                self.answers += 1;
                self.rtt_sum += rtt.as_secs_f64();
                self.reached |= reached;
                if self.answers >= (self.limit as u32).max(MIN_WINDOW) {
                    self.end_window();
                }
            }
        }
        self.limit
    }

    fn end_window(&mut self) {
        let mean = self.rtt_sum / f64::from(self.answers.max(1));
        let reached = self.reached;
        self.reset_window();
        let min = match self.min_rtt {
            Some(m) if m <= mean => m,
            _ => {
                self.min_rtt = Some(mean);
                mean
            }
        };
        if mean > min * RISE {
            if self.limit == 1 {
                self.min_rtt = Some(mean);
            } else {
                self.decrease();
            }
        } else if mean <= min * NEAR && reached && self.limit < self.max {
            self.limit += 1;
            self.highest = self.highest.max(self.limit);
        }
    }

    fn decrease(&mut self) {
        self.limit = (self.limit / 2).max(1);
        self.lowest = self.lowest.min(self.limit);
        self.generation += 1;
        self.decreases += 1;
        self.reset_window();
    }

    fn reset_window(&mut self) {
        self.answers = 0;
        self.rtt_sum = 0.0;
        self.reached = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Answers `n` requests of the current generation with `rtt`, all sent at the limit.
    fn answer(a: &mut Aimd, n: usize, rtt: Duration, signal: Signal) -> usize {
        for _ in 0..n {
            let g = a.generation();
            a.on_answer(rtt, signal, g, true);
        }
        a.limit()
    }

    #[test]
    fn grows_by_one_per_window_while_latency_stays_near_the_minimum() {
        let mut a = Aimd::adaptive(2, 8);
        // First window: 3 answers (the minimum window) set the baseline and grow.
        assert_eq!(answer(&mut a, 3, MS(100), Signal::Ok), 3);
        assert_eq!(answer(&mut a, 3, MS(110), Signal::Ok), 4);
        assert_eq!(answer(&mut a, 4, MS(120), Signal::Ok), 5);
        // A window is `limit` answers: 4 more answers are not a window yet.
        assert_eq!(answer(&mut a, 4, MS(100), Signal::Ok), 5);
        assert_eq!(answer(&mut a, 1, MS(100), Signal::Ok), 6);
        // Never above the max.
        for _ in 0..20 {
            answer(&mut a, 8, MS(100), Signal::Ok);
        }
        assert_eq!(a.limit(), 8);
        assert_eq!(a.highest(), 8);
        assert_eq!(a.decreases(), 0);
    }

    #[test]
    fn does_not_grow_when_the_limit_was_never_reached() {
        let mut a = Aimd::adaptive(4, 8);
        for _ in 0..10 {
            let g = a.generation();
            a.on_answer(MS(100), Signal::Ok, g, false);
        }
        assert_eq!(a.limit(), 4);
    }

    #[test]
    fn holds_between_near_and_rise() {
        let mut a = Aimd::adaptive(4, 16);
        answer(&mut a, 4, MS(100), Signal::Ok); // baseline 100 ms, limit 5
        assert_eq!(answer(&mut a, 5, MS(150), Signal::Ok), 5);
        assert_eq!(answer(&mut a, 5, MS(190), Signal::Ok), 5);
        assert_eq!(a.decreases(), 0);
    }

    #[test]
    fn halves_on_rising_latency() {
        let mut a = Aimd::adaptive(8, 16);
        answer(&mut a, 8, MS(100), Signal::Ok); // baseline, limit 9
        assert_eq!(answer(&mut a, 9, MS(250), Signal::Ok), 4);
        assert_eq!(a.decreases(), 1);
        assert_eq!(a.lowest(), 4);
    }

    #[test]
    fn halves_once_per_round_on_push_back() {
        let mut a = Aimd::adaptive(8, 16);
        // Eight requests in flight, all sent in generation 0, all answered 429.
        let g = a.generation();
        for _ in 0..8 {
            a.on_answer(MS(5), Signal::BackPressure, g, true);
        }
        assert_eq!(a.limit(), 4, "one decrease for one round of requests");
        // Push-back on requests sent after the decrease halves again.
        assert_eq!(answer(&mut a, 1, MS(5), Signal::BackPressure), 2);
        assert_eq!(answer(&mut a, 1, MS(5), Signal::BackPressure), 1);
        assert_eq!(answer(&mut a, 1, MS(5), Signal::BackPressure), 1);
        assert_eq!(a.lowest(), 1);
        assert_eq!(a.decreases(), 4);
        // Fast answers from older generations do not count as evidence either.
        for _ in 0..10 {
            a.on_answer(MS(1), Signal::Ok, 0, true);
        }
        assert_eq!(a.limit(), 1);
        // Then it recovers additively.
        assert_eq!(answer(&mut a, 3, MS(100), Signal::Ok), 2);
        assert_eq!(answer(&mut a, 3, MS(100), Signal::Ok), 3);
    }

    #[test]
    fn at_the_floor_a_slower_cluster_becomes_the_baseline() {
        let mut a = Aimd::adaptive(1, 8);
        answer(&mut a, 3, MS(10), Signal::Ok); // baseline 10 ms, limit 2
        answer(&mut a, 3, MS(50), Signal::Ok); // rising: back to 1
        assert_eq!(a.limit(), 1);
        // Still slow at 1: 50 ms is the new baseline, and it grows again from there.
        assert_eq!(answer(&mut a, 3, MS(50), Signal::Ok), 1);
        assert_eq!(answer(&mut a, 3, MS(50), Signal::Ok), 2);
    }

    #[test]
    fn fixed_never_moves_and_bounds_are_kept() {
        let mut a = Aimd::fixed(3);
        assert_eq!(answer(&mut a, 10, MS(5), Signal::BackPressure), 3);
        assert_eq!(answer(&mut a, 30, MS(5), Signal::Ok), 3);
        assert_eq!(Aimd::adaptive(0, 0).limit(), 1);
        assert_eq!(Aimd::adaptive(10, 4).limit(), 4);
    }
}

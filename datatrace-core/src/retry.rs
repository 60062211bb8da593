//! [`RetryPolicy`]: the one way DataTrace retries anything (sink batches, table changes,
//! search engine requests, MySQL reads, binlog reconnects, `check` re-reads), and [`Retry`],
//! the state of one operation's retries under it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The longest delay a server's suggestion (`Retry-After`) can impose when the policy has no
/// time budget to cap it.
const MAX_SUGGESTED_DELAY: Duration = Duration::from_secs(300);

/// How transient failures are retried: exponential backoff from `initial_backoff`, doubling up
/// to `max_backoff`, each delay drawn at random between half and all of it (jitter, so that
/// parallel writers do not retry in lockstep); for at most `max_attempts` attempts in all and,
/// when `max_elapsed` is set, for at most that long after the operation's first failure,
/// whichever comes first. A delay the server asks for (`Retry-After`, see
/// [`crate::Cause::retry_after`]) is waited when it is longer than the backoff.
///
/// One operation (a batch with all its records, a request, a connection) has one budget: see
/// [`RetryPolicy::start`].
///
/// ```
/// use std::time::Duration;
/// use datatrace_core::RetryPolicy;
///
/// let policy = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(1));
/// let mut retry = policy.start();
/// assert!(retry.failed(None).is_some()); // attempt 1 failed: wait, then attempt 2
/// assert!(retry.failed(Some(Duration::from_millis(800))).unwrap() >= Duration::from_millis(800));
/// assert_eq!(retry.failed(None), None); // attempt 3 failed: the budget is spent
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    #[serde(with = "crate::runner::millis")]
    pub initial_backoff: Duration,
    /// Upper bound of any delay (a server's suggested delay may be longer).
    #[serde(with = "crate::runner::millis")]
    pub max_backoff: Duration,
    /// How long an operation may keep retrying after its first failure (`None`: attempts
    /// alone bound it).
    #[serde(default, with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    /// The pipelines' policy: back-pressure is not failure, so a batch keeps retrying for up to
    /// 10 minutes (any number of attempts), with delays from 100 ms to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Some(Duration::from_secs(600)),
        }
    }
}

impl RetryPolicy {
    /// A policy bounded by attempts alone.
    pub const fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        RetryPolicy {
            max_attempts,
            initial_backoff,
            max_backoff,
            max_elapsed: None,
        }
    }

    /// The same policy, also bounded by time after the first failure.
    pub const fn with_max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = Some(budget);
        self
    }

    /// The delay after failed attempt number `attempt` (1-based), jitter included.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let nanos = base.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(nanos / 2 + fastrand::u64(0..=nanos / 2))
    }

    /// The retries of one operation under this policy.
    pub fn start(&self) -> Retry {
        Retry {
            policy: *self,
            failures: 0,
            since: None,
        }
    }

    /// `"10 attempts"`, `"10 minutes"`, `"5 attempts or 2 minutes"`: the budget, for messages.
    pub fn describe_budget(&self) -> String {
        let attempts =
            (self.max_attempts != u32::MAX).then(|| format!("{} attempts", self.max_attempts));
        let time = self.max_elapsed.map(|d| match d.as_secs() {
            s if s >= 120 && s % 60 == 0 => format!("{} minutes", s / 60),
            s if s >= 1 => format!("{s} s"),
            _ => format!("{} ms", d.as_millis()),
        });
        match (attempts, time) {
            (Some(a), Some(t)) => format!("{a} or {t}"),
            (Some(a), None) => a,
            (None, Some(t)) => t,
            (None, None) => "no limit".into(),
        }
    }
}

/// Why [`Retry::pause`] did not lead to another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryEnd {
    /// The policy's attempts or time are spent.
    Exhausted,
    /// The operation was cancelled while waiting.
    Cancelled,
}

/// The retries of one operation: how many attempts failed and since when. Call
/// [`Retry::failed`] (or [`Retry::pause`]) after each failed attempt, and
/// [`Retry::succeeded`] when an attempt made progress (the budget then starts again; an
/// operation whose budget is shared by all its parts, such as a batch, never calls it).
#[derive(Debug, Clone)]
pub struct Retry {
    policy: RetryPolicy,
    failures: u32,
    since: Option<Instant>,
}

impl Retry {
    /// An attempt failed: the delay to wait before the next one, or `None` when the budget
    /// is spent. `suggested` is the server's delay (`Retry-After`): waited when longer than
    /// the backoff, never beyond the time budget.
    pub fn failed(&mut self, suggested: Option<Duration>) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        let mut delay = self.policy.backoff(self.failures);
        if let Some(s) = suggested {
            delay = delay.max(s.min(MAX_SUGGESTED_DELAY));
        }
        if let Some(budget) = self.policy.max_elapsed {
            let left = budget.checked_sub(since.elapsed())?;
            if left.is_zero() {
                return None;
            }
            delay = delay.min(left);
        }
        Some(delay)
    }

    /// An attempt made progress: failures and time start again from zero.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.since = None;
    }

    /// Failed attempts since the start (or the last progress).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Time since the first failure.
    pub fn elapsed(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// What was tried, for messages: `"7 attempts over 2.4 s"`.
    pub fn describe(&self) -> String {
        format!(
            "{} attempts over {:.1} s",
            self.failures,
            self.elapsed().as_secs_f64()
        )
    }

    /// [`Retry::failed`], then waits the delay (returning early, with
    /// [`RetryEnd::Cancelled`], when `cancel` fires).
    pub async fn pause(
        &mut self,
        suggested: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<(), RetryEnd> {
        let Some(delay) = self.failed(suggested) else {
            return Err(RetryEnd::Exhausted);
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(RetryEnd::Cancelled),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }
}

/// Optional durations as whole milliseconds.
mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.backoff(9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn attempts_bound_the_retries() {
        let mut r = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(2)).start();
        assert!(r.failed(None).is_some());
        assert!(r.failed(None).is_some());
        assert_eq!(r.failed(None), None);
        r.succeeded();
        assert!(r.failed(None).is_some(), "progress starts the budget again");
    }

    #[test]
    fn time_bounds_the_retries_and_caps_the_last_delay() {
        let p = RetryPolicy::new(u32::MAX, Duration::from_secs(5), Duration::from_secs(5))
            .with_max_elapsed(Duration::from_millis(50));
        let mut r = p.start();
        let d = r.failed(None).expect("within the budget");
        assert!(
            d <= Duration::from_millis(50),
            "capped by the time left: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(r.failed(None), None);
    }

    #[test]
    fn a_suggested_delay_is_honoured_within_limits() {
        let p = RetryPolicy::new(10, Duration::from_millis(1), Duration::from_millis(2));
        let mut r = p.start();
        assert_eq!(
            r.failed(Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            r.failed(Some(Duration::from_secs(86_400))),
            Some(MAX_SUGGESTED_DELAY),
            "an absurd Retry-After is capped"
        );
        let p = p.with_max_elapsed(Duration::from_secs(1));
        let d = p.start().failed(Some(Duration::from_secs(60))).unwrap();
        assert!(
            d <= Duration::from_secs(1),
            "the time budget caps it: {d:?}"
        );
    }

    #[test]
    fn policies_read_from_settings() {
        let p: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts": 4, "initial_backoff": 10, "max_elapsed": 2000}"#,
        )
        .unwrap();
        assert_eq!(p.max_attempts, 4);
        assert_eq!(p.initial_backoff, Duration::from_millis(10));
        assert_eq!(p.max_backoff, RetryPolicy::default().max_backoff);
        assert_eq!(p.max_elapsed, Some(Duration::from_secs(2)));
        assert_eq!(RetryPolicy::default().describe_budget(), "10 minutes");
        assert_eq!(
            RetryPolicy::new(5, Duration::ZERO, Duration::ZERO).describe_budget(),
            "5 attempts"
        );
    }
}

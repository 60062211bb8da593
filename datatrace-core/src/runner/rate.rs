//! A token bucket for records/s and bytes/s limits.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Limits in records and bytes per second; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Records per second.
    pub records_per_sec: Option<f64>,
    /// Bytes per second (by [`crate::Record::approx_size`]).
    pub bytes_per_sec: Option<f64>,
}

impl RateLimit {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.records_per_sec.is_some() || self.bytes_per_sec.is_some()
    }
}

struct Bucket {
    rate: f64,
    /// Tokens available; may go negative (debt) for a batch larger than one second's worth.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Bucket {
            rate,
            tokens: rate, // one second of burst
            last: Instant::now(),
        }
    }
    /// Takes `n` tokens and returns how long to wait before the caller may proceed.
    fn take(&mut self, n: f64, now: Instant) -> Duration {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Shared limiter: callers `acquire` before sending a batch and sleep off any debt.
pub(crate) struct RateLimiter {
    records: Option<Mutex<Bucket>>,
    bytes: Option<Mutex<Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let bucket = |r: Option<f64>| r.filter(|r| *r > 0.0).map(|r| Mutex::new(Bucket::new(r)));
        RateLimiter {
            records: bucket(limit.records_per_sec),
            bytes: bucket(limit.bytes_per_sec),
        }
    }

    pub async fn acquire(&self, records: usize, bytes: usize) {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(b) = &self.records {
            wait = wait.max(b.lock().await.take(records as f64, now));
        }
        if let Some(b) = &self.bytes {
            wait = wait.max(b.lock().await.take(bytes as f64, now));
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_charges_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100.0);
        b.last = t0;
        assert_eq!(b.take(100.0, t0), Duration::ZERO);
        let w = b.take(50.0, t0);
        assert!((w.as_secs_f64() - 0.5).abs() < 1e-9, "{w:?}");
        // After the wait has passed the debt is paid and new tokens accrue.
        let w = b.take(0.0, t0 + Duration::from_millis(1500));
        assert_eq!(w, Duration::ZERO);
        assert!((b.tokens - 100.0).abs() < 1e-6);
    }
}

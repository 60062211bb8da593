//! Login throttling: failed sign-ins are counted per user name and client address, and
//! per client address alone; past the limit further attempts are refused with `429` and
//! `Retry-After` (without checking the password) until the lock ends. The lock doubles
//! with every further failure, up to [`MAX_LOCK`]; failures older than [`WINDOW`] are
//! forgotten, and a successful sign-in clears its user's count from that address.
//!
//! The address is the TCP peer's: behind a reverse proxy every client shares the proxy's,
//! so the per-address limit then applies to all of them together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins of one user name from one address before it is locked.
pub const USER_FAILURES: u32 = 5;
/// Failed sign-ins from one address (any user names) before it is locked.
pub const ADDRESS_FAILURES: u32 = 20;
/// The first lock; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten after this long without another.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most (the oldest go first): memory stays bounded under a flood.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The failed sign-ins the server remembers.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

fn keys(user: &str, addr: Option<IpAddr>) -> [(String, u32); 2] {
    let a = addr.map_or_else(|| "-".to_owned(), |a| a.to_string());
    // Bounded: a megabyte of user name costs no more than a short one.
    let user: String = user.chars().take(64).collect::<String>().to_lowercase();
    [
        (format!("u:{user}\n{a}"), USER_FAILURES),
        (format!("a:{a}"), ADDRESS_FAILURES),
    ]
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` while `user` from `addr` (or `addr` alone) is locked.
    pub fn check(&self, user: &str, addr: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys(user, addr)
            .iter()
            .filter_map(|(k, _)| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in; `Some(wait)` when it locked `user` or `addr`.
    pub fn failed(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.duration_since(e.last) < WINDOW);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        let mut locked = None;
        for (key, limit) in keys(user, addr) {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(e.last) >= WINDOW {
                e.failures = 0;
                e.locked_until = None;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if e.failures >= limit {
                let doublings = (e.failures - limit).min(16);
                let lock = FIRST_LOCK.saturating_mul(1 << doublings).min(MAX_LOCK);
                e.locked_until = Some(now + lock);
                locked = Some(locked.map_or(lock, |l: Duration| l.max(lock)));
            }
        }
        locked
    }

    /// A successful sign-in: `user`'s failures from `addr` are forgotten.
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>) {
        let [(key, _), _] = keys(user, addr);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_a_success_clears() {
        let t = LoginThrottle::new();
        let a = Some("10.0.0.1".parse().unwrap());
        for _ in 1..USER_FAILURES {
            assert!(t.check("ann", a).is_ok());
            assert_eq!(t.failed("ann", a), None);
        }
        assert_eq!(t.failed("ann", a), Some(FIRST_LOCK));
        let wait = t.check("ann", a).unwrap_err();
        assert!(wait <= FIRST_LOCK && wait > FIRST_LOCK / 2, "{wait:?}");
        // Another user, another address: not locked.
        assert!(t.check("bob", a).is_ok());
        assert!(t.check("ann", Some("10.0.0.2".parse().unwrap())).is_ok());
        // One more failure doubles the lock.
        assert_eq!(t.failed("ann", a), Some(FIRST_LOCK * 2));
        t.succeeded("ann", a);
        assert!(t.check("ann", a).is_ok());
    }

    #[test]
    fn one_address_trying_many_names_is_locked() {
        let t = LoginThrottle::new();
        let a = Some("10.0.0.3".parse().unwrap());
        for i in 1..ADDRESS_FAILURES {
            assert_eq!(t.failed(&format!("user{i}"), a), None);
        }
        assert!(t.failed("last", a).is_some());
        assert!(t.check("anyone", a).is_err());
        assert!(t.check("anyone", Some("10.0.0.4".parse().unwrap())).is_ok());
    }
}

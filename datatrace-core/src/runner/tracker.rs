//! Which records have been acknowledged: the contiguous watermark behind every checkpoint.

use std::collections::BTreeMap;
use std::ops::Range;

/// Sequence numbers covered by a batch, as sorted, merged ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Runs(pub Vec<Range<u64>>);

impl Runs {
    /// Adds one sequence number (usually the next after the last).
    pub fn push(&mut self, seq: u64) {
        match self.0.last_mut() {
            Some(last) if last.end == seq => last.end += 1,
            _ => self.0.push(seq..seq + 1),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Tracks acknowledged sequence numbers; the watermark is the first one not yet acknowledged,
/// so every record below it is safely written (or dead-lettered, or filtered).
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    watermark: u64,
    /// Acknowledged ranges above the watermark, by start.
    ahead: BTreeMap<u64, u64>,
}

impl AckTracker {
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    pub fn ack(&mut self, runs: &Runs) {
        for r in &runs.0 {
            if r.start <= self.watermark {
                self.watermark = self.watermark.max(r.end);
            } else {
                let end = self.ahead.entry(r.start).or_insert(r.end);
                *end = (*end).max(r.end);
            }
        }
        while let Some((&start, &end)) = self.ahead.first_key_value() {
            if start > self.watermark {
                break;
            }
            self.ahead.pop_first();
            self.watermark = self.watermark.max(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(v: &[u64]) -> Runs {
        let mut r = Runs::default();
        for &s in v {
            r.push(s);
        }
        r
    }

    #[test]
    fn out_of_order_acks_advance_only_when_contiguous() {
        let mut t = AckTracker::default();
        t.ack(&runs(&[3, 4]));
        assert_eq!(t.watermark(), 0);
        t.ack(&runs(&[0, 1]));
        assert_eq!(t.watermark(), 2);
        t.ack(&runs(&[2]));
        assert_eq!(t.watermark(), 5);
        t.ack(&runs(&[6, 8]));
        assert_eq!(t.watermark(), 5);
        t.ack(&runs(&[5, 7]));
        assert_eq!(t.watermark(), 9);
    }

    #[test]
    fn random_order_always_ends_at_total() {
        for seed in 0..50 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut batches: Vec<Runs> = (0..40).map(|i| runs(&[i * 2, i * 2 + 1])).collect();
            rng.shuffle(&mut batches);
            let mut t = AckTracker::default();
            let mut acked = std::collections::HashSet::new();
            for b in &batches {
                t.ack(b);
                for r in &b.0 {
                    acked.extend(r.clone());
                }
                // The watermark never passes an unacknowledged number.
                assert!((0..t.watermark()).all(|s| acked.contains(&s)));
            }
            assert_eq!(t.watermark(), 80);
        }
    }
}

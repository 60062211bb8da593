//! Per-partition progress of a consumer: what was handed to the pipeline, what the sink
//! acknowledged, and the partition's end (for lag); shared by the poll thread, the rebalance
//! callback and the pipeline's acknowledgements.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A topic and partition.
pub type TopicPartition = (String, i32);

pub use datatrace_core::PartitionLag;

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    /// The offset after the last message handed to the pipeline.
    handed: i64,
    /// The offset after the last message whose record the sink acknowledged (-1: none yet).
    acked: i64,
    /// The high watermark.
    end: i64,
    /// Read to the end (partition EOF) since the last message.
    at_end: bool,
}

/// The shared progress table.
#[derive(Default)]
pub(crate) struct Offsets {
    table: Mutex<BTreeMap<TopicPartition, Progress>>,
    acked: Condvar,
}

impl Offsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, Progress>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions newly assigned, starting at `position` (or unknown: -1).
    pub(crate) fn assigned(&self, tp: TopicPartition, position: i64) {
        self.lock().entry(tp).or_insert(Progress {
            handed: position,
            acked: position,
            end: -1,
            at_end: false,
        });
    }

    /// A message at `offset` was handed to the pipeline.
    pub(crate) fn handed(&self, tp: &TopicPartition, offset: i64) {
        let mut t = self.lock();
        let p = t.entry(tp.clone()).or_default();
        if p.acked < 0 {
            p.acked = offset;
        }
        p.handed = offset + 1;
        p.end = p.end.max(offset + 1);
    }

    /// A message of `tp` was polled: the partition is not at its end (its end-of-partition
    /// event comes after its last message).
    pub(crate) fn polled(&self, tp: &TopicPartition) {
        if let Some(p) = self.lock().get_mut(tp) {
            p.at_end = false;
        }
    }

    /// The sink acknowledged everything before `next` on `tp`; false when `tp` is no longer
    /// assigned here.
    pub(crate) fn acknowledged(&self, tp: &TopicPartition, next: i64) -> bool {
        let mut t = self.lock();
        let Some(p) = t.get_mut(tp) else {
            return false;
        };
        p.acked = p.acked.max(next);
        drop(t);
        self.acked.notify_all();
        true
    }

    /// The partition was read to its end.
    pub(crate) fn at_end(&self, tp: &TopicPartition, end: i64) {
        let mut t = self.lock();
        let p = t.entry(tp.clone()).or_default();
        p.at_end = true;
        if end >= 0 {
            p.end = p.end.max(end);
        }
    }

    /// Whether `tp` was read to its end and nothing came since.
    pub(crate) fn is_at_end(&self, tp: &TopicPartition) -> bool {
        self.lock().get(tp).is_some_and(|p| p.at_end)
    }

    /// Records a partition's high watermark.
    pub(crate) fn set_end(&self, tp: &TopicPartition, end: i64) {
        if let Some(p) = self.lock().get_mut(tp) {
            p.end = p.end.max(end);
        }
    }

    /// Whether no partition is assigned.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether every assigned partition was read to its end and everything handed was
    /// acknowledged.
    pub(crate) fn all_done(&self) -> bool {
        let t = self.lock();
        !t.is_empty() && t.values().all(|p| p.at_end && p.acked >= p.handed)
    }

    /// Waits (up to `timeout`) until everything handed from `tps` is acknowledged; returns
    /// whether it was.
    pub(crate) fn drain(&self, tps: &[TopicPartition], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut t = self.lock();
        loop {
            let pending = tps
                .iter()
                .any(|tp| t.get(tp).is_some_and(|p| p.acked < p.handed));
            if !pending {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            t = self
                .acked
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The acknowledged offsets of `tps` (those with any), to commit.
    pub(crate) fn acked_of(&self, tps: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        let t = self.lock();
        tps.iter()
            .filter_map(|tp| {
                t.get(tp)
                    .filter(|p| p.acked >= 0)
                    .map(|p| (tp.clone(), p.acked))
            })
            .collect()
    }

    /// Forgets revoked partitions.
    pub(crate) fn revoked(&self, tps: &[TopicPartition]) {
        let mut t = self.lock();
        for tp in tps {
            t.remove(tp);
        }
    }

    /// The assigned partitions of `topic`.
    pub(crate) fn partitions_of(&self, topic: &str) -> Vec<i32> {
        self.lock()
            .keys()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| *p)
            .collect()
    }

    /// The lag of every assigned partition.
    pub(crate) fn lag(&self) -> Vec<PartitionLag> {
        self.lock()
            .iter()
            .map(|((topic, partition), p)| {
                let committed = p.acked.max(0);
                let end = p.end.max(committed);
                PartitionLag {
                    topic: topic.clone(),
                    partition: *partition,
                    committed,
                    end,
                    lag: end - committed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_only_behind_acknowledgements() {
        let o = Offsets::default();
        let tp = ("t".to_string(), 0);
        o.assigned(tp.clone(), -1);
        o.handed(&tp, 10);
        o.handed(&tp, 11);
        assert!(!o.drain(std::slice::from_ref(&tp), Duration::from_millis(10)));
        assert!(o.acknowledged(&tp, 11));
        assert!(!o.drain(std::slice::from_ref(&tp), Duration::from_millis(10)));
        assert!(o.acknowledged(&tp, 12));
        assert!(o.drain(std::slice::from_ref(&tp), Duration::from_millis(10)));
        assert_eq!(
            o.acked_of(std::slice::from_ref(&tp)),
            vec![(tp.clone(), 12)]
        );
        o.at_end(&tp, 20);
        assert_eq!(o.lag()[0].lag, 8);
        o.revoked(std::slice::from_ref(&tp));
        assert!(
            !o.acknowledged(&tp, 13),
            "a revoked partition takes no acknowledgement"
        );
    }
}

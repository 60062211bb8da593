//! The dedup window: triggers gathered over a short time (`window_ms`) or until enough are
//! pending, so that a document changed by many rows in a burst (an order and its twenty
//! lines inserted in one transaction) is rebuilt once. The window remembers the highest
//! binlog ordinal seen (the snapshots of its builds must reach it) and the last
//! checkpoint (passed on once its documents are written).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use datatrace_core::{Position, Value};

use super::derive::Trigger;
use super::lookup::Start;
use crate::build::Routing;
use crate::keys::KeyBuf;

/// A document to rebuild: its top's key and the routings its changes implied.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// The top's key.
    pub key: Vec<Value>,
    /// Routings seen in the changes' images (routed kinds).
    pub routings: BTreeSet<Routing>,
}

/// Triggers gathered since the window opened.
#[derive(Debug, Default)]
pub struct Window {
    opened: Option<Instant>,
    /// The highest binlog ordinal seen in the window (builds need snapshots at or past it).
    pub need: u64,
    /// The last checkpoint of the change stream seen in the window.
    pub checkpoint: Option<Position>,
    /// Documents by (definition, kind) and key.
    pub direct: HashMap<(usize, usize), HashMap<KeyBuf, Pending>>,
    /// Lookups by start, with their distinct values.
    pub lookups: HashMap<Start, (HashSet<KeyBuf>, Vec<Vec<Value>>)>,
    size: usize,
    /// Row changes that went into the window.
    pub changes: u64,
}

impl Window {
    /// Adds a trigger (deduplicated).
    pub fn add(&mut self, t: Trigger) {
        self.opened.get_or_insert_with(Instant::now);
        match t {
            Trigger::Direct {
                def,
                kind,
                key,
                routing,
            } => {
                let m = self.direct.entry((def, kind)).or_default();
                let e = m.entry(KeyBuf::of(&key)).or_insert_with(|| {
                    self.size += 1;
                    Pending {
                        key,
                        routings: BTreeSet::new(),
                    }
                });
                e.routings.extend(routing);
            }
            Trigger::Lookup { start, values } => {
                let (seen, list) = self.lookups.entry(start).or_default();
                if seen.insert(KeyBuf::of(&values)) {
                    list.push(values);
                    self.size += 1;
                }
            }
        }
    }

    /// Notes the ordinal of a change or checkpoint.
    pub fn saw(&mut self, ordinal: Option<u64>) {
        if let Some(o) = ordinal {
            self.need = self.need.max(o);
        }
    }

    /// Whether nothing waits to be rebuilt.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Documents and lookups pending.
    pub fn size(&self) -> usize {
        self.size
    }

    /// When the window must be flushed (`None` while empty, and for a window too long to
    /// end at a representable time: then only its size or the stream's end flushes it).
    pub fn deadline(&self, window: Duration) -> Option<Instant> {
        self.opened
            .filter(|_| self.size > 0)
            .and_then(|o| o.checked_add(window))
    }

    /// Takes the window's content, leaving an empty window that keeps `need`.
    pub fn take(&mut self) -> Window {
        let need = self.need;
        let w = std::mem::take(self);
        self.need = need;
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denormal_a_huge_window_never_overflows_its_deadline() {
        let mut w = Window::default();
        assert_eq!(w.deadline(Duration::from_millis(50)), None);
        w.add(Trigger::Direct {
            def: 0,
            kind: 0,
            key: vec![Value::Int(1)],
            routing: None,
        });
        assert!(w.deadline(Duration::from_millis(50)).is_some());
        // Instant + Duration panics past the clock's range: no deadline then.
        let _ = w.deadline(Duration::from_millis(u64::MAX));
        assert_eq!(w.deadline(Duration::MAX), None);
    }
}

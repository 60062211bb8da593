//! A fenced writer: several instances of one reader job, exactly one of them writing.
//!
//! Instances that share a fence id (`transactional_id`) join a consumer group on a one-partition
//! topic `{id}.leader`; the member that is given its partition is the active instance, the
//! others wait. The active instance writes every event inside a Kafka transaction and commits
//! that transaction only together with the job's checkpoint (written to the compacted topic
//! `{id}.checkpoints`, see [`KafkaCheckpointStore`]): what consumers reading committed data see
//! always comes with the position to resume after it.
//!
//! When the active instance dies (kill -9, a lost machine), its group session expires, a
//! standby is given the partition, initialises the same transactional id, which aborts the
//! dead instance's open transaction and fences its producer epoch, loads the last committed
//! checkpoint and resumes from it.
//!
//! Exactly once for consumers reading committed data: a checkpoint is saved (and the
//! transaction committed) some time after the events before it were written, so the committed
//! transaction also holds events written after the checkpoint. Each commit therefore also
//! records the [`Mark`] of the last record written (its position ordinal and how many records
//! with that ordinal came before it in the stream: rows of one binlog event share one); the
//! instance that takes over resumes the stream from the checkpoint and skips the records up to
//! that mark, which are committed already. This needs the writes in stream order, one at a
//! time (`sink_concurrency = 1`, which `datatrace run` sets for fenced targets; the sink
//! refuses overlapping writes). A zombie that wakes up later (a paused process, a network
//! partition) can no longer commit anything: its next transactional call fails as fenced,
//! and its unit fails with an error saying so. It never writes a committed event again.

mod leader;
mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::ClientConfig;
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard};

pub use store::KafkaCheckpointStore;

use crate::error::KafkaError;
use leader::Leadership;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared state of one fenced instance: its leadership and its transactional producer.
pub struct Fence {
    id: String,
    client: ClientConfig,
    brokers: String,
    session_timeout_ms: u64,
    active: OnceCell<Active>,
    /// Writes share it; a commit takes it alone, so no send is half-way when it commits.
    txn: RwLock<()>,
    failed: AtomicBool,
    /// The last record written (in stream order).
    written: Mutex<Option<Mark>>,
    /// After a takeover: the records up to this mark are committed already.
    skip: Mutex<Option<Skip>>,
    /// A write is under way (fenced writes must not overlap).
    writing: AtomicBool,
}

/// The last record written by a fenced writer: its position ordinal, and how many records with
/// that ordinal it had written by then (1 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    /// The record's position ordinal.
    pub ordinal: u64,
    /// Records with this ordinal written up to and including it.
    pub count: u64,
}

impl Mark {
    /// The mark after `ordinal` follows `self`.
    pub fn next(this: Option<Mark>, ordinal: u64) -> Mark {
        match this {
            Some(m) if m.ordinal == ordinal => Mark {
                ordinal,
                count: m.count + 1,
            },
            _ => Mark { ordinal, count: 1 },
        }
    }
}

/// Skipping the records that the last committed transaction holds beyond its checkpoint.
#[derive(Debug, Clone, Copy)]
struct Skip {
    upto: Mark,
    /// The last record seen while skipping.
    seen: Option<Mark>,
}

struct Active {
    producer: FutureProducer,
    leadership: Leadership,
}

impl Fence {
    /// A fence named `id` (the transactional id), for a producer configured by `client`.
    pub fn new(
        id: impl Into<String>,
        client: ClientConfig,
        brokers: &str,
        session_timeout_ms: u64,
    ) -> Arc<Self> {
        Arc::new(Fence {
            id: id.into(),
            client,
            brokers: brokers.to_string(),
            session_timeout_ms,
            active: OnceCell::new(),
            txn: RwLock::new(()),
            failed: AtomicBool::new(false),
            written: Mutex::new(None),
            skip: Mutex::new(None),
            writing: AtomicBool::new(false),
        })
    }

    /// The fence id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The topic holding the job's checkpoints.
    pub fn checkpoints_topic(&self) -> String {
        format!("{}.checkpoints", self.id)
    }

    /// Waits until this instance is the active one, then fences every earlier instance and
    /// opens a transaction. Idempotent.
    pub async fn acquire(&self) -> Result<(), KafkaError> {
        self.active
            .get_or_try_init(|| async {
                let leadership = Leadership::join(
                    &self.id,
                    &self.brokers,
                    self.session_timeout_ms,
                    &self.client,
                )
                .await?;
                let mut c = self.client.clone();
                c.set("transactional.id", &self.id)
                    .set(
                        "transaction.timeout.ms",
                        TXN_TIMEOUT.as_millis().to_string(),
                    )
                    .set("message.timeout.ms", TXN_TIMEOUT.as_millis().to_string());
                let producer: FutureProducer = c.create().map_err(|source| KafkaError::Client {
                    what: "transactional producer",
                    source,
                })?;
                let p = producer.clone();
                blocking(move || {
                    p.init_transactions(TXN_TIMEOUT)?;
                    p.begin_transaction()
                })
                .await
                .map_err(|e| {
                    self.error(
                        "initialising the transactions (fencing earlier instances)",
                        e,
                    )
                })?;
                tracing::info!(fence = %self.id, "this instance is the active writer");
                Ok(Active {
                    producer,
                    leadership,
                })
            })
            .await
            .map(|_| ())
    }

    /// The transactional producer and a guard under which to send (after [`Fence::acquire`]).
    pub(crate) async fn writer(
        &self,
    ) -> Result<(&FutureProducer, RwLockReadGuard<'_, ()>), KafkaError> {
        self.acquire().await?;
        let guard = self.txn.read().await;
        let active = self.check()?;
        Ok((&active.producer, guard))
    }

    fn check(&self) -> Result<&Active, KafkaError> {
        let active = self.active.get().ok_or_else(|| KafkaError::Other {
            context: format!("fence {}", self.id),
            detail: "not acquired".into(),
        })?;
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.fenced("an earlier transactional call failed"));
        }
        if !active.leadership.holds() {
            self.failed.store(true, Ordering::Relaxed);
            return Err(self.fenced("this instance lost its place as the active writer"));
        }
        Ok(active)
    }

    fn fenced(&self, why: &str) -> KafkaError {
        KafkaError::Other {
            context: format!("fence {}", self.id),
            detail: format!("fenced: {why}; another instance of this job is the active writer now, this one stops"),
        }
    }

    fn error(&self, context: &str, e: rdkafka::error::KafkaError) -> KafkaError {
        use rdkafka::types::RDKafkaErrorCode as C;
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(
                C::ProducerFenced
                    | C::InvalidProducerEpoch
                    | C::Fenced
                    | C::InvalidTransactionalState
            )
        ) || e.to_string().to_lowercase().contains("fenced");
        if fenced {
            self.failed.store(true, Ordering::Relaxed);
            return self.fenced(&e.to_string());
        }
        KafkaError::Other {
            context: format!("fence {}: {context}", self.id),
            detail: e.to_string(),
        }
    }

    /// Sends the value `value` makes of the last record written (taken while no write is
    /// under way) under `key` to the checkpoints topic in the open transaction, commits the
    /// transaction (with every event sent before) and opens the next one.
    pub(crate) async fn commit_with(
        &self,
        key: &str,
        value: impl FnOnce(Option<Mark>) -> Option<Vec<u8>>,
    ) -> Result<(), KafkaError> {
        self.acquire().await?;
        let _alone = self.txn.write().await;
        let active = self.check()?;
        let topic = self.checkpoints_topic();
        let value = value(self.written());
        let mut record: rdkafka::producer::FutureRecord<'_, str, [u8]> =
            rdkafka::producer::FutureRecord::to(&topic).key(key);
        if let Some(v) = &value {
            record = record.payload(v);
        }
        active
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| self.error("writing the checkpoint", e))?;
        let p = active.producer.clone();
        blocking(move || {
            p.commit_transaction(TXN_TIMEOUT)?;
            p.begin_transaction()
        })
        .await
        .map_err(|e| self.error("committing the transaction with its checkpoint", e))?;
        // a lost leadership found after the commit still stops the next one
        self.check()?;
        Ok(())
    }

    /// The last record written (what a commit now records).
    pub fn written(&self) -> Option<Mark> {
        *self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a takeover: the records up to `mark` (of the stream resumed from the loaded
    /// checkpoint) are in a committed transaction already; [`Fence::committed_already`] says
    /// which to skip.
    ///
    /// Every commit records the last record written then, so the latest commit holds the
    /// highest mark: of several loaded checkpoints (the units of `snapshot+cdc`), the highest
    /// mark counts.
    pub fn skip_upto(&self, mark: Mark) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mark = match *written {
            Some(w) if (w.ordinal, w.count) > (mark.ordinal, mark.count) => w,
            _ => mark,
        };
        *self.skip.lock().unwrap_or_else(|e| e.into_inner()) = Some(Skip {
            upto: mark,
            seen: None,
        });
        *written = Some(mark);
    }

    /// Whether the record with position ordinal `ordinal` (the next one of the stream) was
    /// committed before a takeover; ends the skipping at the first record past the mark.
    pub(crate) fn committed_already(&self, ordinal: Option<u64>) -> bool {
        let mut skip = self.skip.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(s), Some(ordinal)) = (skip.as_mut(), ordinal) else {
            return false;
        };
        let mark = Mark::next(s.seen, ordinal);
        if (mark.ordinal, mark.count) <= (s.upto.ordinal, s.upto.count) {
            s.seen = Some(mark);
            true
        } else {
            *skip = None;
            false
        }
    }

    /// Records that the records with these ordinals (in stream order) are written.
    pub(crate) fn wrote(&self, ordinals: impl Iterator<Item = Option<u64>>) {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        for o in ordinals.flatten() {
            *w = Some(Mark::next(*w, o));
        }
    }

    /// Marks a write as under way; an error when another one is (the writes of a fenced
    /// writer must follow the stream's order).
    pub(crate) fn begin_write(&self) -> Result<WriteGuard<'_>, KafkaError> {
        if self.writing.swap(true, Ordering::AcqRel) {
            return Err(KafkaError::Config(format!(
                "fence {}: two writes at once; a fenced Kafka writer needs sink_concurrency = 1 (its transactions commit the position of the last record written)",
                self.id
            )));
        }
        Ok(WriteGuard(&self.writing))
    }

    pub(crate) fn brokers(&self) -> &str {
        &self.brokers
    }

    pub(crate) fn client(&self) -> &ClientConfig {
        &self.client
    }
}

/// Ends a write when dropped.
pub(crate) struct WriteGuard<'a>(&'a AtomicBool);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, rdkafka::error::KafkaError> + Send + 'static,
) -> Result<T, rdkafka::error::KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_count_records_of_one_ordinal() {
        let m = Mark::next(None, 5);
        assert_eq!(
            m,
            Mark {
                ordinal: 5,
                count: 1
            }
        );
        let m = Mark::next(Some(m), 5);
        assert_eq!(
            m,
            Mark {
                ordinal: 5,
                count: 2
            }
        );
        assert_eq!(
            Mark::next(Some(m), 9),
            Mark {
                ordinal: 9,
                count: 1
            }
        );
    }

    /// After a takeover the records up to the committed mark are skipped, the rest written.
    #[test]
    fn a_takeover_skips_exactly_what_was_committed() {
        let f = Fence::new("t", ClientConfig::new(), "127.0.0.1:1", 1000);
        // the last commit held records up to the second of ordinal 20
        f.skip_upto(Mark {
            ordinal: 20,
            count: 2,
        });
        let stream = [10, 20, 20, 20, 30];
        let skipped: Vec<bool> = stream
            .iter()
            .map(|&o| f.committed_already(Some(o)))
            .collect();
        assert_eq!(skipped, [true, true, true, false, false]);
        f.wrote([Some(20), Some(30)].into_iter());
        assert_eq!(
            f.written(),
            Some(Mark {
                ordinal: 30,
                count: 1
            })
        );
        // skipping ended at the first record past the mark
        assert!(!f.committed_already(Some(10)));
    }

    #[test]
    fn writes_may_not_overlap() {
        let f = Fence::new("t", ClientConfig::new(), "127.0.0.1:1", 1000);
        let first = f.begin_write().unwrap();
        let e = f.begin_write().err().unwrap();
        assert!(e.to_string().contains("sink_concurrency = 1"), "{e}");
        drop(first);
        assert!(f.begin_write().is_ok());
    }
}

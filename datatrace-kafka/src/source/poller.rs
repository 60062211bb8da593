//! The consumer's poll thread: reads messages, decodes them, holds table-change barriers, and
//! hands batches to the pipeline; and the rebalance callback that drains revoked partitions
//! before giving them up.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datatrace_core::TableChange;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as RdError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use tokio::sync::mpsc;

use super::offsets::{Offsets, TopicPartition};
use crate::debezium::{DecodeError, Decoder, Event};

mod message;

/// What the poll thread hands to the pipeline side.
#[derive(Debug)]
pub(crate) enum Item {
    /// A decoded event at `tp`/`offset`.
    Event {
        tp: TopicPartition,
        offset: i64,
        event: Event,
    },
    /// A table change whose marker every assigned partition of its topic has reached;
    /// `covers` are the markers' positions.
    Barrier {
        change: TableChange,
        covers: Vec<(TopicPartition, i64)>,
    },
    /// A message that is not a change event.
    Bad {
        tp: TopicPartition,
        offset: i64,
        error: DecodeError,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    },
    /// The consumer failed for good.
    Failed(String),
    /// Every assigned partition is read and acknowledged, and nothing came for the idle time.
    Idle,
}

/// A table change seen on some partitions of its topic and not yet on the others.
struct Barrier {
    topic: String,
    id: Vec<u8>,
    change: TableChange,
    seen: BTreeSet<i32>,
    covers: Vec<(TopicPartition, i64)>,
    held: Vec<Item>,
    /// For a change written to one partition only (Debezium's own `TRUNCATE`): its binlog
    /// ordinal. Another partition reaches it with its first message past that ordinal (held,
    /// the partition paused, until the change is handed over) or by being read to its end, so
    /// that the rows written before the change come before it and those after it after it.
    after: Option<u64>,
}

/// State shared by the poll loop and the rebalance callback (which runs inside `poll`, on the
/// same thread, so the lock is never contended between them).
#[derive(Default)]
struct LoopState {
    buffer: Vec<Item>,
    barriers: HashMap<String, Barrier>,
    paused: Vec<TopicPartition>,
    /// The ordinal of the newest change read, per partition.
    newest: HashMap<TopicPartition, u64>,
}

/// The consumer's context: rebalance handling and statistics.
pub(crate) struct Ctx {
    pub(crate) offsets: Arc<Offsets>,
    state: Mutex<LoopState>,
    pub(crate) closing: AtomicBool,
    pub(crate) drain_timeout: Duration,
    pub(crate) rebalances: AtomicU64,
}

impl Ctx {
    pub(crate) fn new(offsets: Arc<Offsets>, drain_timeout: Duration) -> Self {
        Ctx {
            offsets,
            state: Mutex::new(LoopState::default()),
            closing: AtomicBool::new(false),
            drain_timeout,
            rebalances: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LoopState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: RdError, reason: &str) {
        match error.rdkafka_error_code() {
            // the end of a partition is news, not an error (the poll loop handles it)
            Some(RDKafkaErrorCode::PartitionEOF) => {}
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                tracing::error!("Kafka: no broker answers ({reason}); retrying")
            }
            _ => tracing::warn!("Kafka consumer: {error}: {reason}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.ls_offset >= 0 {
                    self.offsets.set_end(&(name.clone(), *p), part.ls_offset);
                }
            }
        }
    }
}

fn tps_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        let revoked = tps_of(tpl);
        {
            // Messages of revoked partitions not yet handed over are left to the new owner.
            let mut st = self.state();
            st.buffer.retain(|i| !matches!(i, Item::Event { tp, .. } | Item::Bad { tp, .. } if revoked.contains(tp)));
            for b in st.barriers.values_mut() {
                b.held.retain(|i| !matches!(i, Item::Event { tp, .. } | Item::Bad { tp, .. } if revoked.contains(tp)));
                let topic = b.topic.clone();
                b.seen
                    .retain(|p| !revoked.iter().any(|(t, q)| *t == topic && q == p));
                b.covers.retain(|(tp, _)| !revoked.contains(tp));
            }
            st.barriers.retain(|_, b| !b.seen.is_empty());
            st.paused.retain(|tp| !revoked.contains(tp));
            st.newest.retain(|tp, _| !revoked.contains(tp));
        }
        // Wait until the sink has written what was handed over from these partitions, so that
        // their new owner starts exactly after it: nothing twice, nothing lost.
        if !self.closing.load(Ordering::Relaxed)
            && !self.offsets.drain(&revoked, self.drain_timeout)
        {
            tracing::warn!(
                partitions = ?revoked,
                "rebalance: records of revoked partitions were not written within {:?}; their new owner reads them again",
                self.drain_timeout
            );
        }
        commit(consumer, &self.offsets.acked_of(&revoked), CommitMode::Sync);
        self.offsets.revoked(&revoked);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let positions = consumer
                .committed_offsets((*tpl).clone(), Duration::from_secs(10))
                .ok();
            for e in tpl.elements() {
                let start = positions
                    .as_ref()
                    .and_then(|c| c.find_partition(e.topic(), e.partition()))
                    .and_then(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0)
                    .unwrap_or(-1);
                self.offsets
                    .assigned((e.topic().to_string(), e.partition()), start);
            }
            tracing::info!(partitions = ?tps_of(tpl), "assigned");
        }
    }
}

/// Commits `offsets` (the next offsets to read) for the group.
pub(crate) fn commit(
    consumer: &BaseConsumer<Ctx>,
    offsets: &[(TopicPartition, i64)],
    mode: CommitMode,
) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in offsets {
        if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
            return;
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!("committing offsets {offsets:?}: {e}");
    }
}

/// The poll loop's settings.
pub(crate) struct LoopConfig {
    pub(crate) batch: usize,
    pub(crate) stop_when_idle: Option<Duration>,
    pub(crate) commit_interval: Duration,
    pub(crate) wait_for_topics: Duration,
}

/// Runs the poll loop until `stop` is set or the receiver is gone.
pub(crate) fn run(
    consumer: Arc<BaseConsumer<Ctx>>,
    decoder: Arc<Decoder>,
    tx: mpsc::Sender<Vec<Item>>,
    stop: Arc<AtomicBool>,
    cfg: LoopConfig,
) {
    let ctx = consumer.context().clone();
    let mut last_message = Instant::now();
    let mut last_commit = Instant::now();
    let mut committed: Vec<(TopicPartition, i64)> = Vec::new();
    // a subscribed topic reported missing, when, and what was said
    let mut missing: Option<(Instant, String)> = None;
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        let waiting = !ctx.state().buffer.is_empty();
        let polled = consumer.poll(if waiting {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        });
        let got_nothing = polled.is_none();
        match polled {
            None => {
                if let Some(idle) = cfg.stop_when_idle {
                    if last_message.elapsed() >= idle && ctx.offsets.all_done() {
                        ctx.state().buffer.push(Item::Idle);
                    }
                }
            }
            Some(Err(RdError::PartitionEOF(p))) => {
                // which topic is not said: mark every assigned partition with this number
                // whose handed offset is its end (the common single-topic case is exact)
                mark_eof(&consumer, &ctx, p);
            }
            Some(Err(e)) if missing_topic(&e) => {
                if missing.is_none() {
                    tracing::warn!(
                        "a subscribed topic does not exist (yet): waiting up to {:?} for it",
                        cfg.wait_for_topics
                    );
                    missing = Some((Instant::now(), e.to_string()));
                }
            }
            Some(Err(e)) => {
                if fatal(&e) {
                    let _ = tx.blocking_send(vec![Item::Failed(e.to_string())]);
                    return;
                }
                tracing::warn!("Kafka consumer: {e}");
            }
            Some(Ok(m)) => {
                last_message = Instant::now();
                if message::on_message(&consumer, &ctx, &decoder, &m) {
                    continue;
                }
            }
        }
        if let Some((since, error)) = &missing {
            if ctx.offsets.is_empty() {
                if since.elapsed() >= cfg.wait_for_topics {
                    let _ = tx.blocking_send(vec![Item::Failed(error.clone())]);
                    return;
                }
            } else {
                missing = None;
            }
        }
        let ready = take_ready(&consumer, &ctx, cfg.batch, got_nothing);
        if !ready.is_empty() {
            mark_handed(&ctx, &ready);
            let idle = matches!(ready.last(), Some(Item::Idle));
            if tx.blocking_send(ready).is_err() || idle {
                break;
            }
        }
        if last_commit.elapsed() >= cfg.commit_interval {
            commit_acked(&consumer, &ctx, &mut committed);
            last_commit = Instant::now();
        }
    }
}

/// What is ready to hand over: a full batch, or all there is once the fetched messages are
/// used up (`got_nothing`), or everything up to an [`Item::Idle`]; empty otherwise.
fn take_ready(
    consumer: &BaseConsumer<Ctx>,
    ctx: &Ctx,
    batch: usize,
    got_nothing: bool,
) -> Vec<Item> {
    let mut st = ctx.state();
    release_complete(consumer, ctx, &mut st);
    let idle = matches!(st.buffer.last(), Some(Item::Idle));
    if st.buffer.len() >= batch || (got_nothing && !st.buffer.is_empty()) || idle {
        std::mem::take(&mut st.buffer)
    } else {
        Vec::new()
    }
}

/// Records the offsets of `ready` as handed over to the pipeline.
fn mark_handed(ctx: &Ctx, ready: &[Item]) {
    for i in ready {
        if let Item::Event { tp, offset, .. } | Item::Bad { tp, offset, .. } = i {
            ctx.offsets.handed(tp, *offset);
        }
        if let Item::Barrier { covers, .. } = i {
            for (tp, o) in covers {
                ctx.offsets.handed(tp, *o);
            }
        }
    }
}

/// Commits (asynchronously) the acknowledged offsets of the assigned partitions, if they
/// changed since the last commit (`committed`).
fn commit_acked(
    consumer: &BaseConsumer<Ctx>,
    ctx: &Ctx,
    committed: &mut Vec<(TopicPartition, i64)>,
) {
    let assigned: Vec<TopicPartition> = ctx
        .offsets
        .lag()
        .into_iter()
        .map(|l| (l.topic, l.partition))
        .collect();
    let acked = ctx.offsets.acked_of(&assigned);
    if acked != *committed {
        commit(consumer, &acked, CommitMode::Async);
        *committed = acked;
    }
}

/// Hands over the pending table changes that every assigned partition of their topic has
/// reached (the assignment may have shrunk since their first marker).
fn release_complete(consumer: &BaseConsumer<Ctx>, ctx: &Ctx, st: &mut LoopState) {
    if st.barriers.is_empty() {
        return;
    }
    let complete: Vec<String> = st
        .barriers
        .iter()
        .filter(|(topic, b)| is_complete(ctx, topic, b))
        .map(|(t, _)| t.clone())
        .collect();
    for t in complete {
        if let Some(b) = st.barriers.remove(&t) {
            release(consumer, st, b);
        }
    }
}

fn mark_eof(consumer: &BaseConsumer<Ctx>, ctx: &Ctx, partition: i32) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let positions = consumer.position().ok();
    for e in assignment.elements() {
        if e.partition() != partition {
            continue;
        }
        let pos = positions
            .as_ref()
            .and_then(|p| p.find_partition(e.topic(), e.partition()))
            .and_then(|e| e.offset().to_raw())
            .unwrap_or(-1);
        tracing::debug!(
            topic = e.topic(),
            partition = e.partition(),
            pos,
            "end of partition"
        );
        ctx.offsets
            .at_end(&(e.topic().to_string(), e.partition()), pos);
        // read to its end: it has reached a one-partition change pending on its topic
        if let Some(b) = ctx.state().barriers.get_mut(e.topic()) {
            if b.after.is_some() {
                b.seen.insert(e.partition());
            }
        }
    }
}

/// Whether a pending table change may be handed over: every assigned partition of its topic
/// reached it (its marker, or for a one-partition change a message past it or its end).
fn is_complete(ctx: &Ctx, topic: &str, b: &Barrier) -> bool {
    ctx.offsets
        .partitions_of(topic)
        .iter()
        .all(|p| b.seen.contains(p))
}

/// A table change's marker arrived at `tp`: hold the partition until every assigned partition
/// of the topic has reached the same marker (or, with `ends`, has been read up to those
/// offsets), then hand the change over once.
fn barrier(
    consumer: &BaseConsumer<Ctx>,
    ctx: &Ctx,
    tp: TopicPartition,
    offset: i64,
    id: Vec<u8>,
    change: TableChange,
    after: Option<u64>,
) {
    let mut st = ctx.state();
    let topic = tp.0.clone();
    if st.barriers.get(&topic).is_some_and(|b| b.id != id) {
        // a different change while one is pending (a partition assigned past the first):
        // hand the pending one over as it is
        if let Some(b) = st.barriers.remove(&topic) {
            release(consumer, &mut st, b);
        }
    }
    let b = st.barriers.entry(topic.clone()).or_insert_with(|| Barrier {
        topic: topic.clone(),
        id,
        change,
        seen: BTreeSet::new(),
        covers: Vec::new(),
        held: Vec::new(),
        after,
    });
    b.seen.insert(tp.1);
    b.covers.push((tp.clone(), offset));
    if b.after.is_some() {
        // partitions read to their end have reached it
        for p in ctx.offsets.partitions_of(&topic) {
            if ctx.offsets.is_at_end(&(topic.clone(), p)) {
                b.seen.insert(p);
            }
        }
    }
    let complete = match st.barriers.get(&topic) {
        Some(b) => is_complete(ctx, &topic, b),
        None => true,
    };
    if complete {
        if let Some(b) = st.barriers.remove(&topic) {
            release(consumer, &mut st, b);
        }
    } else {
        pause(consumer, &mut st, tp);
    }
}

/// Stops fetching `tp` until the pending table change of its topic is handed over.
fn pause(consumer: &BaseConsumer<Ctx>, st: &mut LoopState, tp: TopicPartition) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&tp.0, tp.1);
    if let Err(e) = consumer.pause(&tpl) {
        tracing::warn!("pausing {}[{}]: {e}", tp.0, tp.1);
    }
    st.paused.push(tp);
}

fn release(consumer: &BaseConsumer<Ctx>, st: &mut LoopState, b: Barrier) {
    let mut tpl = TopicPartitionList::new();
    for p in &b.seen {
        let tp = (b.topic.clone(), *p);
        if st.paused.contains(&tp) {
            tpl.add_partition(&tp.0, tp.1);
        }
    }
    st.paused
        .retain(|(t, p)| !(t == &b.topic && b.seen.contains(p)));
    st.buffer.push(Item::Barrier {
        change: b.change,
        covers: b.covers,
    });
    st.buffer.extend(b.held);
    if tpl.count() > 0 {
        if let Err(e) = consumer.resume(&tpl) {
            tracing::warn!("resuming partitions after a table change: {e}");
        }
    }
}

fn missing_topic(e: &RdError) -> bool {
    matches!(
        e,
        RdError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
        )
    )
}

fn fatal(e: &RdError) -> bool {
    match e {
        RdError::MessageConsumptionFatal(_) => true,
        RdError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
        ),
        _ => false,
    }
}

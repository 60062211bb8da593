//! One polled message: decoded, its table changes turned into barriers, and its row changes
//! buffered for the pipeline or held behind a pending table change of their topic.

use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Message as _};

use super::{barrier, pause, Ctx, Item, LoopState};
use crate::debezium::{Decoder, Event, MessageRef};
use crate::source::offsets::TopicPartition;
use datatrace_core::TableChange;

/// Handles the message `m`; `true` when it was a table change (the poll loop then polls
/// again at once, without handing anything over).
pub(super) fn on_message(
    consumer: &BaseConsumer<Ctx>,
    ctx: &Ctx,
    decoder: &Decoder,
    m: &BorrowedMessage<'_>,
) -> bool {
    let tp = (m.topic().to_string(), m.partition());
    let offset = m.offset();
    ctx.offsets.polled(&tp);
    let decoded = decoder.decode(&MessageRef {
        topic: &tp.0,
        partition: tp.1,
        offset,
        key: m.key(),
        value: m.payload(),
    });
    let item = match decoded {
        Ok(Event::TableChange(change)) => {
            let id = m.payload().unwrap_or_default().to_vec();
            barrier(consumer, ctx, tp, offset, id, change, None);
            return true;
        }
        Ok(Event::OnePartitionTableChange(change)) => {
            let Some(after) = change.position.as_ref().and_then(|p| p.ordinal) else {
                // nothing to order it by: applied where it was read
                ctx.state().buffer.push(Item::Barrier {
                    change,
                    covers: vec![(tp, offset)],
                });
                return true;
            };
            let id = m.payload().unwrap_or_default().to_vec();
            warn_if_read_late(ctx, &tp, &change, after);
            barrier(consumer, ctx, tp, offset, id, change, Some(after));
            return true;
        }
        Ok(event) => Item::Event { tp, offset, event },
        Err(error) => Item::Bad {
            tp,
            offset,
            error,
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
        },
    };
    hold_or_buffer(consumer, &mut ctx.state(), item);
    false
}

/// Records the newest ordinal of an event's partition, then holds the item behind its
/// topic's pending table change (pausing a partition that just passed a one-partition
/// change), or buffers it for the pipeline.
fn hold_or_buffer(consumer: &BaseConsumer<Ctx>, st: &mut LoopState, item: Item) {
    let ordinal = match &item {
        Item::Event {
            event: Event::Change(r),
            ..
        } => r.position.as_ref().and_then(|p| p.ordinal),
        _ => None,
    };
    if let (Some(o), Item::Event { tp, .. }) = (ordinal, &item) {
        let newest = st.newest.entry(tp.clone()).or_default();
        *newest = (*newest).max(o);
    }
    let held = match &item {
        Item::Event { tp, .. } | Item::Bad { tp, .. } => match st.barriers.get_mut(&tp.0) {
            Some(b) if b.seen.contains(&tp.1) => true,
            // the first change of this partition past a one-partition change
            Some(b) if b.after.is_some_and(|a| ordinal.is_some_and(|o| o > a)) => {
                b.seen.insert(tp.1);
                pause(consumer, st, tp.clone());
                true
            }
            _ => false,
        },
        _ => false,
    };
    if held {
        if let Some(b) = st.barriers.get_mut(&item_topic(&item)) {
            b.held.push(item);
        }
    } else {
        st.buffer.push(item);
    }
}

fn item_topic(item: &Item) -> String {
    match item {
        Item::Event { tp, .. } | Item::Bad { tp, .. } => tp.0.clone(),
        _ => String::new(),
    }
}

/// A one-partition change (Debezium's `TRUNCATE`) read after changes past it on other
/// partitions, which were handed over already: it will remove their rows. Said loudly, with
/// the fix.
fn warn_if_read_late(ctx: &Ctx, tp: &TopicPartition, change: &TableChange, after: u64) {
    let st = ctx.state();
    let late: Vec<i32> = st
        .newest
        .iter()
        .filter(|((t, p), o)| t == &tp.0 && *p != tp.1 && **o > after)
        .map(|((_, p), _)| *p)
        .collect();
    if !late.is_empty() {
        tracing::warn!(
            "{change} on {}[{}] was read after newer changes of the same table on partitions {late:?}: \
             applying it now removes their rows. Debezium writes such events to one partition; \
             give its topics of tables that see TRUNCATE a single partition",
            tp.0,
            tp.1
        );
    }
}

//! The second look: suspects of the first pass are checked again (after the recheck delay,
//! so that changes still in flight on a live target settle), counted, shown (the first N in
//! key order) and, when repairing, rewritten from the source or deleted, batch by batch.

use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{Batch, Op, Outcome, Record, RetryPolicy, SinkError, Value};

use super::normalize::{cmp_keys, key_display};
use super::pass::Suspects;
use super::report::{Repaired, RowDiff, UnitCheck};
use super::side::R;
use super::side::{key_id, TargetKey};
use super::unit::{Kind, UnitCtx};

/// Repair writes: 6 attempts, 200 ms .. 3.2 s apart.
const REPAIR_RETRY: RetryPolicy =
    RetryPolicy::new(6, Duration::from_millis(200), Duration::from_millis(3200));

/// What a confirmation may do besides counting.
#[derive(Debug, Clone, Copy)]
pub struct Actions {
    /// Rewrite missing and different rows.
    pub repair: bool,
    /// Delete extra rows (with `repair`).
    pub delete_extra: bool,
    /// Keys shown per kind.
    pub shown: usize,
    /// Looks at differing keys (each after the recheck delay) before they count: more than
    /// one for targets fed by a change stream, whose rows converge to the source's.
    pub rounds: u32,
}

fn keep_first<T>(list: &mut Vec<(Vec<Value>, T)>, n: usize) {
    list.sort_by(|a, b| cmp_keys(&a.0, &b.0));
    list.truncate(n);
}

/// Confirms the suspects into `check` (counts, shown keys and diffs); repairs when asked.
pub async fn confirm(
    ctx: &Arc<UnitCtx>,
    mut suspects: Suspects,
    delay: Duration,
    actions: Actions,
    check: &mut UnitCheck,
) -> R<Option<Repaired>> {
    let mut repaired = actions.repair.then(Repaired::default);
    if suspects.source.is_empty() && suspects.extra.is_empty() {
        return Ok(repaired);
    }
    if !delay.is_zero() {
        tracing::info!(
            unit = %ctx.name,
            keys = suspects.source.len() + suspects.extra.len(),
            "keys differ: checking them again in {delay:?} (what settles meanwhile, such as a change stream catching up, is not reported)"
        );
        tokio::time::sleep(delay).await;
    }
    suspects.source.sort_by(|a, b| cmp_keys(a, b));
    suspects.source.dedup();
    suspects.extra.sort_by(|a, b| cmp_keys(&a.key, &b.key));
    suspects.extra.dedup_by(|a, b| a.id == b.id);
    // Rounds before the last: keys that agree now have settled; the others are looked at
    // again after the delay, until they agree or the rounds are used up.
    for _ in 1..actions.rounds.max(1) {
        if suspects.source.is_empty() && suspects.extra.is_empty() {
            break;
        }
        let mut still = Vec::new();
        for keys in suspects.source.chunks(ctx.batch) {
            let records = ctx.source_lookup(keys).await?;
            let (_, compared) = ctx.compare_records(records, false).await?;
            still.extend(compared.into_iter().map(|c| c.key));
        }
        check.settled += (suspects.source.len() - still.len()) as u64;
        suspects.source = still;
        let mut extras = Vec::new();
        for rows in suspects.extra.chunks(ctx.batch) {
            let present = ctx.target_present(rows.to_vec()).await?;
            extras.extend(ctx.find_extras(present).await?);
        }
        check.settled += (suspects.extra.len() - extras.len()) as u64;
        suspects.extra = extras;
        let settled = suspects.source.is_empty() && suspects.extra.is_empty();
        if !settled && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let mut missing: Vec<(Vec<Value>, String)> = Vec::new();
    let mut diffs: Vec<(Vec<Value>, RowDiff)> = Vec::new();
    for keys in suspects.source.chunks(ctx.batch) {
        let records = ctx.source_lookup(keys).await?;
        let (_, compared) = ctx.compare_records(records, actions.repair).await?;
        // Keys now equal, gone from the source or dropped by the transforms no longer differ.
        check.settled += (keys.len() as u64).saturating_sub(compared.len() as u64);
        let mut rewrite = Vec::new();
        for c in compared {
            match c.kind {
                Kind::Missing => {
                    check.missing += 1;
                    missing.push((c.key.clone(), key_display(&c.key)));
                }
                Kind::Different => {
                    check.different += 1;
                    let key = key_display(&c.key);
                    diffs.push((
                        c.key.clone(),
                        RowDiff {
                            key,
                            fields: c.fields,
                        },
                    ));
                }
            }
            if let Some(r) = c.record {
                rewrite.push(r);
            }
        }
        keep_first(&mut missing, actions.shown);
        keep_first(&mut diffs, actions.shown);
        if let Some(rep) = repaired.as_mut() {
            let records: Vec<Record> = rewrite
                .into_iter()
                .filter_map(|r| ctx.transform(r))
                .collect();
            write(ctx, records, rep, actions.shown, false).await?;
        }
    }
    check.missing_keys = missing.into_iter().map(|m| m.1).collect();
    check.diffs = diffs.into_iter().map(|d| d.1).collect();

    suspects.extra.sort_by(|a, b| cmp_keys(&a.key, &b.key));
    suspects.extra.dedup_by(|a, b| a.id == b.id);
    let mut extra: Vec<(Vec<Value>, String)> = Vec::new();
    for rows in suspects.extra.chunks(ctx.batch) {
        let present = ctx.target_present(rows.to_vec()).await?;
        let extras = ctx.find_extras(present).await?;
        check.settled += (rows.len() - extras.len()) as u64;
        check.extra += extras.len() as u64;
        extra.extend(extras.iter().map(|t| (t.key.clone(), t.display())));
        keep_first(&mut extra, actions.shown);
        if let Some(rep) = repaired.as_mut() {
            if actions.delete_extra {
                let doomed = deletable(ctx, extras, rep).await?;
                let deletes = doomed
                    .iter()
                    .map(|t| delete_record(ctx, t))
                    .collect::<R<Vec<_>>>()?;
                write(ctx, deletes, rep, actions.shown, true).await?;
            }
        }
    }
    check.extra_keys = extra.into_iter().map(|e| e.1).collect();
    Ok(repaired)
}

/// The extra rows that may be deleted: the source is read again by key right before, and
/// a row whose key is in the source (whatever the transforms make of it) or whose identity
/// maps to no source key is kept, and counted in `rep.kept`.
async fn deletable(ctx: &UnitCtx, extras: Vec<TargetKey>, rep: &mut Repaired) -> R<Vec<TargetKey>> {
    let mut keyed = Vec::with_capacity(extras.len());
    for t in extras {
        match ctx.source_key_for(&t) {
            Some(k) => keyed.push((t, k)),
            None => {
                tracing::warn!(unit = %ctx.name, row = %t.display(), "extra row kept: its id does not map to a key of the source");
                rep.kept += 1;
            }
        }
    }
    let keys: Vec<Vec<Value>> = keyed.iter().map(|(_, k)| k.clone()).collect();
    let present = ctx.source_has(&keys).await?;
    let mut out = Vec::with_capacity(keyed.len());
    for (t, k) in keyed {
        if present.contains(&key_id(&k)) {
            tracing::warn!(unit = %ctx.name, row = %t.display(), "extra row kept: its key is in the source");
            rep.kept += 1;
        } else {
            out.push(t);
        }
    }
    Ok(out)
}

/// A delete of a target row, in the unit's output schema (the sink derives the table row
/// or document id from its key as it does for copied rows).
fn delete_record(ctx: &UnitCtx, t: &TargetKey) -> R<Record> {
    let schema = ctx.out_schema.clone().ok_or_else(|| {
        format!(
            "unit {}: no schema known, extra rows cannot be deleted",
            ctx.name
        )
    })?;
    let values = ctx
        .target
        .delete_values(t, &schema, &ctx.name, &ctx.target_name)?;
    Ok(Record::new(Op::Delete, schema, values))
}

/// Writes through the unit's sink, retrying transient failures.
pub(super) async fn write(
    ctx: &UnitCtx,
    records: Vec<Record>,
    rep: &mut Repaired,
    shown: usize,
    deletes: bool,
) -> R<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new(records);
    let mut retries = REPAIR_RETRY.start();
    loop {
        let outcomes = match ctx.sink.write(&batch).await {
            Ok(o) => o,
            Err(SinkError::Transient(m)) => match retries.failed(m.suggested_delay()) {
                Some(delay) => {
                    tracing::warn!(unit = %ctx.name, error = %m, "repair write failed, retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                None => {
                    let e = SinkError::Transient(m);
                    return Err(format!("repairing {}: {e}", ctx.target_name));
                }
            },
            Err(e) => return Err(format!("repairing {}: {e}", ctx.target_name)),
        };
        let mut retry = Vec::new();
        let mut suggested = None;
        // Retryable records are retried while the batch's budget lasts.
        let last = retries.failures() + 1 >= REPAIR_RETRY.max_attempts;
        for (o, r) in outcomes.into_iter().zip(std::mem::take(&mut batch.records)) {
            match o {
                Outcome::Written if deletes => rep.deleted += 1,
                Outcome::Written => rep.rewritten += 1,
                Outcome::Retryable(m) if !last => {
                    suggested = suggested.max(m.suggested_delay());
                    retry.push(r)
                }
                Outcome::Retryable(m) | Outcome::Rejected(m) => {
                    rep.rejected_count += 1;
                    if rep.rejected.len() < shown {
                        rep.rejected.push(m.into());
                    }
                }
            }
        }
        if retry.is_empty() {
            return Ok(());
        }
        let delay = retries.failed(suggested).unwrap_or_default();
        tokio::time::sleep(delay).await;
        batch = Batch::new(retry);
    }
}

//! The second look: suspects of the first pass are checked again (after the recheck delay,
//! so that changes still in flight on a live target settle), counted, shown (the first N in
//! key order) and, when repairing, rewritten from the source or deleted, batch by batch.

use std::sync::Arc;
use std::time::Duration;

use datatrace_core::{Batch, Op, Outcome, Record, SinkError, Value};

use super::normalize::{cmp_keys, key_display};
use super::pass::Suspects;
use super::report::{Repaired, RowDiff, UnitCheck};
use super::sides::R;
use super::unit::{Kind, TargetEnd, TargetKey, UnitCtx};

/// What a confirmation may do besides counting.
#[derive(Debug, Clone, Copy)]
pub struct Actions {
    /// Rewrite missing and different rows.
    pub repair: bool,
    /// Delete extra rows (with `repair`).
    pub delete_extra: bool,
    /// Keys shown per kind.
    pub shown: usize,
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
        tokio::time::sleep(delay).await;
    }
    suspects.source.sort_by(|a, b| cmp_keys(a, b));
    suspects.source.dedup();
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
                let deletes = extras
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

/// A delete of a target row, in the unit's output schema (the sink derives the table row
/// or document id from its key as it does for copied rows).
fn delete_record(ctx: &UnitCtx, t: &TargetKey) -> R<Record> {
    let schema = ctx.out_schema.clone().ok_or_else(|| {
        format!(
            "unit {}: no schema known, extra rows cannot be deleted",
            ctx.name
        )
    })?;
    let mut values = vec![Value::Null; schema.len()];
    let pk = schema.primary_key().to_vec();
    match &ctx.target {
        TargetEnd::MySql(table) => {
            for (name, v) in table.key_names().iter().zip(&t.key) {
                let i = schema.index_of(name).ok_or_else(|| {
                    format!(
                        "unit {}: key column {name} of {} is not in the copied rows",
                        ctx.name, ctx.target_name
                    )
                })?;
                values[i] = v.clone();
            }
        }
        TargetEnd::Es { separator, .. } => {
            let parts: Vec<&str> = if pk.len() > 1 {
                t.id.splitn(pk.len(), separator.as_str()).collect()
            } else {
                vec![t.id.as_str()]
            };
            if parts.len() != pk.len() || pk.is_empty() {
                return Err(format!(
                    "unit {}: document id {} does not map to the key of the copied rows",
                    ctx.name, t.id
                ));
            }
            for (&i, p) in pk.iter().zip(parts) {
                values[i] = Value::from(p);
            }
        }
    }
    Ok(Record::new(Op::Delete, schema, values))
}

/// Writes through the unit's sink, retrying transient failures.
async fn write(
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
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcomes = match ctx.sink.write(&batch).await {
            Ok(o) => o,
            Err(SinkError::Transient(m)) if attempt < 6 => {
                tracing::warn!(unit = %ctx.name, error = %m, "repair write failed, retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                continue;
            }
            Err(e) => return Err(format!("repairing {}: {e}", ctx.target_name)),
        };
        let mut retry = Vec::new();
        for (o, r) in outcomes.into_iter().zip(std::mem::take(&mut batch.records)) {
            match o {
                Outcome::Written if deletes => rep.deleted += 1,
                Outcome::Written => rep.rewritten += 1,
                Outcome::Retryable(_) if attempt < 6 => retry.push(r),
                Outcome::Retryable(m) | Outcome::Rejected(m) => {
                    rep.rejected_count += 1;
                    if rep.rejected.len() < shown {
                        rep.rejected.push(m);
                    }
                }
            }
        }
        if retry.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        batch = Batch::new(retry);
    }
}

//! Tables without a key, compared as multisets: the same rows, each as many times.
//!
//! Rows cannot be looked up by key, so both sides are read whole. Each row (source rows
//! through the transforms and type mapping, as for keyed tables) is put in its compared
//! form, hashed (two independent 64-bit hashes), and counted into one of [`BUCKETS`]
//! buckets: per bucket the row count and the wrapping sums of both hashes. Buckets that
//! agree hold the same rows with the same multiplicities (but for a hash collision of both
//! sums). Only rows of buckets that disagree are read again, a group of buckets at a time
//! (at most [`GROUP_ROWS`] rows in memory), to name the rows missing or extra, and to
//! repair them: a missing row is written again (as many times as it is missing), an extra
//! one deleted by matching all its values (as many times as it is extra).

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datatrace_core::{Op, Part, Record, Source, Value};

use super::confirm::{write, Actions};
use super::normalize::Doc;
use super::report::{Repaired, UnitCheck};
use super::side::{read_chunks, R};
use super::unit::UnitCtx;

/// Buckets of the first pass.
pub const BUCKETS: usize = 1024;
/// Rows of differing buckets held at once in the second pass.
pub const GROUP_ROWS: u64 = 200_000;

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Sums {
    rows: u64,
    h1: u64,
    h2: u64,
}

impl Sums {
    fn add(&mut self, (a, b): (u64, u64)) {
        self.rows += 1;
        self.h1 = self.h1.wrapping_add(a);
        self.h2 = self.h2.wrapping_add(b);
    }
}

/// The compared form of a row: its fields in name order, normalized under the unit's
/// rules (FLOAT columns at float precision, JSON as JSON unless both sides are text).
fn canonical(ctx: &UnitCtx, doc: &Doc) -> String {
    // A document equal to this one under the rules has the same text: normalize each field
    // the way the rules compare it.
    let mut out = serde_json::Map::new();
    for (k, v) in doc {
        let v = match (ctx.rules.get(k.as_str()), v) {
            (Some(super::normalize::FieldRule::Float32), serde_json::Value::Number(n)) => n
                .as_f64()
                .and_then(|f| serde_json::Number::from_f64(f as f32 as f64))
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| v.clone()),
            (Some(super::normalize::FieldRule::Json), serde_json::Value::String(s)) => {
                serde_json::from_str(s).unwrap_or_else(|_| v.clone())
            }
            (_, serde_json::Value::Null) => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    serde_json::Value::Object(out).to_string()
}

fn hashes(text: &str) -> (u64, u64) {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5eed_u32.hash(&mut b);
    text.hash(&mut b);
    (a.finish(), b.finish())
}

fn bucket(h: (u64, u64)) -> usize {
    (h.0 % BUCKETS as u64) as usize
}

/// Both sides' readers and parts.
async fn readers(
    ctx: &UnitCtx,
    chunk_rows: u64,
    parallelism: usize,
) -> R<((Arc<dyn Source>, Vec<Part>), (Arc<dyn Source>, Vec<Part>))> {
    let source = ctx.source.parts(chunk_rows, parallelism).await?;
    let target = ctx.target.parts(chunk_rows, parallelism).await?;
    Ok((source, target))
}

/// The compared form of a source record (after the transforms), if they keep it.
fn source_form(ctx: &UnitCtx, r: Record) -> R<Option<(String, Record)>> {
    let Some(tr) = ctx.transform(r) else {
        return Ok(None);
    };
    let doc = ctx.source_doc(&tr)?;
    Ok(Some((canonical(ctx, &doc), tr)))
}

/// Reads every part of `side`, handing each row's compared form (and record) to `f`.
async fn scan<F>(side: &(Arc<dyn Source>, Vec<Part>), batch: usize, f: F) -> R<()>
where
    F: Fn(Record) -> R<()> + Send + Sync + Clone + 'static,
{
    for part in &side.1 {
        let f = f.clone();
        read_chunks(side.0.clone(), part.clone(), batch, move |records| {
            let f = f.clone();
            let r = records.into_iter().try_for_each(&f);
            async move { r }
        })
        .await?;
    }
    Ok(())
}

/// One multiset comparison of a keyless unit (see the module docs); repairs when asked.
pub async fn multiset_pass(
    ctx: Arc<UnitCtx>,
    chunk_rows: u64,
    parallelism: usize,
    actions: Actions,
    check: &mut UnitCheck,
) -> R<Option<Repaired>> {
    let (source, target) = readers(&ctx, chunk_rows, parallelism).await?;
    let src_sums = Arc::new(Mutex::new(vec![Sums::default(); BUCKETS]));
    let tgt_sums = Arc::new(Mutex::new(vec![Sums::default(); BUCKETS]));
    let read_rows = Arc::new(Mutex::new(0u64));
    {
        let (c, sums, n) = (ctx.clone(), src_sums.clone(), read_rows.clone());
        scan(&source, ctx.batch, move |r| {
            *n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            if let Some((text, _)) = source_form(&c, r)? {
                let h = hashes(&text);
                sums.lock().unwrap_or_else(|e| e.into_inner())[bucket(h)].add(h);
            }
            Ok(())
        })
        .await?;
    }
    {
        let (c, sums) = (ctx.clone(), tgt_sums.clone());
        scan(&target, ctx.batch, move |r| {
            let (_, doc) = c.target_row(&r);
            let h = hashes(&canonical(&c, &doc));
            sums.lock().unwrap_or_else(|e| e.into_inner())[bucket(h)].add(h);
            Ok(())
        })
        .await?;
    }
    let src_sums = src_sums.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let tgt_sums = tgt_sums.lock().unwrap_or_else(|e| e.into_inner()).clone();
    check.source_rows = *read_rows.lock().unwrap_or_else(|e| e.into_inner());
    check.target_rows = tgt_sums.iter().map(|s| s.rows).sum();
    check.chunks = BUCKETS as u64;
    let differing: Vec<usize> = (0..BUCKETS)
        .filter(|&b| src_sums[b] != tgt_sums[b])
        .collect();
    check.chunks_differing = differing.len() as u64;
    let mut repaired = actions.repair.then(Repaired::default);
    // Groups of differing buckets small enough to hold their rows.
    let mut groups: Vec<BTreeSet<usize>> = Vec::new();
    let mut size = u64::MAX;
    for b in differing {
        let rows = src_sums[b].rows + tgt_sums[b].rows;
        if size.saturating_add(rows) > GROUP_ROWS {
            groups.push(BTreeSet::new());
            size = 0;
        }
        size += rows;
        if let Some(g) = groups.last_mut() {
            g.insert(b);
        }
    }
    let mut missing_shown: Vec<String> = Vec::new();
    let mut extra_shown: Vec<String> = Vec::new();
    for group in groups {
        let group = Arc::new(group);
        // Compared form -> (count in source - count in target, a source record, a target
        // record).
        type Tally = HashMap<String, (i64, Option<Record>, Option<Record>)>;
        let tally: Arc<Mutex<Tally>> = Arc::default();
        {
            let (c, g, t) = (ctx.clone(), group.clone(), tally.clone());
            scan(&source, ctx.batch, move |r| {
                if let Some((text, tr)) = source_form(&c, r)? {
                    if g.contains(&bucket(hashes(&text))) {
                        let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                        let e = t.entry(text).or_insert((0, None, None));
                        e.0 += 1;
                        e.1.get_or_insert(tr);
                    }
                }
                Ok(())
            })
            .await?;
        }
        {
            let (c, g, t) = (ctx.clone(), group.clone(), tally.clone());
            scan(&target, ctx.batch, move |r| {
                let (_, doc) = c.target_row(&r);
                let text = canonical(&c, &doc);
                if g.contains(&bucket(hashes(&text))) {
                    let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                    let e = t.entry(text).or_insert((0, None, None));
                    e.0 -= 1;
                    e.2.get_or_insert(r);
                }
                Ok(())
            })
            .await?;
        }
        let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
        let mut writes = Vec::new();
        let mut deletes = Vec::new();
        for (text, (n, src, tgt)) in tally {
            if n > 0 {
                check.missing += n as u64;
                missing_shown.push(format!("{text} (x{n})"));
                if let Some(r) = src {
                    writes.extend(std::iter::repeat_n(r, n as usize));
                }
            } else if n < 0 {
                check.extra += n.unsigned_abs();
                extra_shown.push(format!("{text} (x{})", n.unsigned_abs()));
                if let Some(r) = tgt {
                    deletes.extend(std::iter::repeat_n(r, n.unsigned_abs() as usize));
                }
            }
        }
        if let Some(rep) = repaired.as_mut() {
            let writes = writes
                .into_iter()
                .map(|mut r| {
                    r.op = Op::Insert;
                    r
                })
                .collect();
            write(&ctx, writes, rep, actions.shown, false).await?;
            if actions.delete_extra {
                let deletes = deletes
                    .into_iter()
                    .map(|r| delete_of(&ctx, r))
                    .collect::<R<Vec<_>>>()?;
                write(&ctx, deletes, rep, actions.shown, true).await?;
            }
        }
    }
    missing_shown.sort();
    extra_shown.sort();
    missing_shown.truncate(actions.shown);
    extra_shown.truncate(actions.shown);
    check.missing_keys = missing_shown;
    check.extra_keys = extra_shown;
    Ok(repaired)
}

/// A delete of a target row (matched by all its values), in the unit's output schema.
fn delete_of(ctx: &UnitCtx, r: Record) -> R<Record> {
    let schema = ctx.out_schema.clone().ok_or_else(|| {
        format!(
            "unit {}: no schema known, extra rows cannot be deleted",
            ctx.name
        )
    })?;
    let values = schema
        .columns()
        .iter()
        .map(|c| r.get(&c.name).cloned().unwrap_or(Value::Null))
        .collect();
    Ok(Record::new(Op::Delete, schema, values))
}

//! The first pass over a unit: find the keys that may differ, in parallel, with memory
//! bounded by the chunk size.
//!
//! - [`checksum_pass`]: per key range, a checksum on both sides (the connector's
//!   [`RangeChecksum`]; MySQL: `COUNT(*)` and a `BIT_XOR` of row CRC32s on both servers);
//!   only ranges whose checksums differ are read, row by row, on both sides.
//! - [`rows_pass`]: every source row through the transforms, looked up in the target in
//!   batches; then every target row looked up in the source (extras).
//!
//! Both give [`Suspects`]: keys confirmed (after the recheck delay) by
//! [`super::confirm`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use datatrace_core::{Part, Source, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::side::{read_chunks, RangeChecksum, TargetKey, R};
use super::unit::UnitCtx;
use super::CheckOptions;

/// Keys that differed in the first pass.
#[derive(Debug, Default)]
pub struct Suspects {
    /// Source keys of rows missing or different in the target.
    pub source: Vec<Vec<Value>>,
    /// Target rows with no source row.
    pub extra: Vec<TargetKey>,
}

/// Counts of a first pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Source rows.
    pub source_rows: u64,
    /// Target rows.
    pub target_rows: u64,
    /// Ranges checksummed.
    pub chunks: u64,
    /// Ranges whose checksums differed.
    pub chunks_differing: u64,
    /// Sub-ranges of differing ranges, narrowed by checksums, read row by row.
    pub sub_ranges: u64,
    /// Rows read from either side to be compared row by row.
    pub rows_read: u64,
}

/// What a first pass gathers, shared by its tasks.
#[derive(Default)]
pub struct Found {
    /// The counts.
    pub counts: Counts,
    /// The suspects.
    pub suspects: Suspects,
}

type Shared = Arc<Mutex<Found>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Found> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on every item, at most `n` at a time; the first error stops the rest.
pub async fn for_each_parallel<T, F, Fut>(items: Vec<T>, n: usize, f: F) -> R<()>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R<()>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS)));
    let mut set = JoinSet::new();
    for item in items {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(done) = set.try_join_next() {
            done.map_err(|e| format!("check task failed: {e}"))??;
        }
        let fut = f(item);
        set.spawn(async move {
            let _permit = permit;
            fut.await
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| format!("check task failed: {e}"))??;
    }
    Ok(())
}

/// Source rows of one part compared with the target.
async fn compare_part(
    ctx: Arc<UnitCtx>,
    source: Arc<dyn Source>,
    part: Part,
    found: Shared,
    count: bool,
) -> R<()> {
    let batch = ctx.batch;
    read_chunks(source, part, batch, |records| {
        let ctx = ctx.clone();
        let found = found.clone();
        async move {
            let n = records.len() as u64;
            let (_, compared) = ctx.compare_records(records, false).await?;
            let mut f = lock(&found);
            f.counts.rows_read += n;
            if count {
                f.counts.source_rows += n;
            }
            f.suspects
                .source
                .extend(compared.into_iter().map(|c| c.key));
            Ok(())
        }
    })
    .await
}

/// Target rows of one part looked up in the source.
async fn extras_part(
    ctx: Arc<UnitCtx>,
    target: Arc<dyn Source>,
    part: Part,
    found: Shared,
    count: bool,
) -> R<()> {
    let batch = ctx.batch;
    read_chunks(target, part, batch, |records| {
        let ctx = ctx.clone();
        let found = found.clone();
        async move {
            let n = records.len() as u64;
            let rows: Vec<TargetKey> = records.iter().map(|r| ctx.target_row(r).0).collect();
            drop(records);
            let extra = ctx.find_extras(rows).await?;
            let mut f = lock(&found);
            f.counts.rows_read += n;
            if count {
                f.counts.target_rows += n;
            }
            f.suspects.extra.extend(extra);
            Ok(())
        }
    })
    .await
}

/// The whole source, then the whole target, row by row.
pub async fn rows_pass(ctx: Arc<UnitCtx>, chunk_rows: u64, parallelism: usize) -> R<Found> {
    let found: Shared = Arc::default();
    let (source, parts) = ctx.source.parts(chunk_rows, parallelism).await?;
    {
        let (ctx, found, source) = (ctx.clone(), found.clone(), source.clone());
        for_each_parallel(parts, parallelism, move |part| {
            compare_part(ctx.clone(), source.clone(), part, found.clone(), true)
        })
        .await?;
    }
    let (target, parts) = ctx.target.parts(chunk_rows, parallelism).await?;
    {
        let (ctx, found) = (ctx.clone(), found.clone());
        for_each_parallel(parts, parallelism, move |part| {
            extras_part(ctx.clone(), target.clone(), part, found.clone(), true)
        })
        .await?;
    }
    Ok(take(found))
}

fn take(found: Shared) -> Found {
    let mut f = lock(&found);
    std::mem::take(&mut *f)
}

/// Checksums per key range on both sides (the connector's [`RangeChecksum`]); ranges that
/// differ are narrowed to the sub-ranges that still differ ([`RangeChecksum::narrow`]),
/// which are compared row by row.
pub async fn checksum_pass(
    ctx: Arc<UnitCtx>,
    sums: Arc<dyn RangeChecksum>,
    opts: &CheckOptions,
) -> R<Found> {
    let (parallelism, leaf_rows) = (opts.parallelism, opts.narrow_rows);
    let (source, target, parts) = sums.ranges(opts.chunk_size).await?;
    let found: Shared = Arc::default();
    let task_ctx = ctx.clone();
    let shared = found.clone();
    for_each_parallel(parts, parallelism, move |part| {
        let (ctx, found) = (task_ctx.clone(), shared.clone());
        let (source, target, sums) = (source.clone(), target.clone(), sums.clone());
        async move {
            let (source_rows, target_rows, equal) = sums.compare(&part).await?;
            {
                let mut f = lock(&found);
                f.counts.chunks += 1;
                f.counts.source_rows += source_rows;
                f.counts.target_rows += target_rows;
                if equal {
                    return Ok(());
                }
                f.counts.chunks_differing += 1;
            }
            let subs = if leaf_rows == 0 {
                vec![part.clone()]
            } else {
                sums.narrow(&part, (source_rows, target_rows), leaf_rows)
                    .await?
            };
            tracing::debug!(unit = %ctx.name, part = %part.id, sub_ranges = subs.len(), "checksums differ, comparing the rows of the sub-ranges that differ");
            lock(&found).counts.sub_ranges += subs.len() as u64;
            for sub in subs {
                compare_part(ctx.clone(), source.clone(), sub.clone(), found.clone(), false)
                    .await?;
                extras_part(ctx.clone(), target.clone(), sub, found.clone(), false).await?;
            }
            Ok(())
        }
    })
    .await?;
    Ok(take(found))
}

//! The first pass over a unit: find the keys that may differ, in parallel, with memory
//! bounded by the chunk size.
//!
//! - [`checksum_pass`]: per key range, `COUNT(*)` and a `BIT_XOR` of row CRC32s on both
//!   servers (`datatrace_mysql::checksum`); only ranges whose checksums differ are read,
//!   row by row, on both sides.
//! - [`rows_pass`]: every source row through the transforms, looked up in the target in
//!   batches; then every target row looked up in the source (extras).
//!
//! Both give [`Suspects`]: keys confirmed (after the recheck delay) by
//! [`super::confirm`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use datatrace_core::{Part, Source, Value};
use datatrace_mysql::checksum::range_checksum;
use datatrace_mysql::chunk::ChunkSpec;
use datatrace_mysql::SourceOptions;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::sides::{read_chunks, R};
use super::unit::{SourceEnd, TargetEnd, TargetKey, UnitCtx};

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
    let sem = Arc::new(Semaphore::new(n.max(1)));
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
    let (source, parts): (Arc<dyn Source>, Vec<Part>) = match &ctx.source {
        SourceEnd::MySql(t) => {
            let (s, p) = t.parts(chunk_rows).await?;
            (s, p)
        }
        SourceEnd::Es(i) => {
            let (s, p) = i.parts(parallelism).await?;
            (s, p)
        }
    };
    {
        let (ctx, found, source) = (ctx.clone(), found.clone(), source.clone());
        for_each_parallel(parts, parallelism, move |part| {
            compare_part(ctx.clone(), source.clone(), part, found.clone(), true)
        })
        .await?;
    }
    let (target, parts): (Arc<dyn Source>, Vec<Part>) = match &ctx.target {
        TargetEnd::MySql(t) => {
            let (s, p) = t.parts(chunk_rows).await?;
            (s, p)
        }
        TargetEnd::Es { index, .. } => {
            let (s, p) = index.parts(parallelism).await?;
            (s, p)
        }
    };
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

/// MySQL -> MySQL with identical tables: checksums per key range on both servers; ranges
/// that differ are compared row by row.
pub async fn checksum_pass(ctx: Arc<UnitCtx>, chunk_rows: u64, parallelism: usize) -> R<Found> {
    let (SourceEnd::MySql(src), TargetEnd::MySql(tgt)) = (&ctx.source, &ctx.target) else {
        return Err("the checksum method needs MySQL on both sides".into());
    };
    let (source, parts) = src.parts(chunk_rows).await?;
    let target = tgt.source(SourceOptions {
        consistent_snapshot: false,
        ..tgt.opts.clone()
    })?;
    let found: Shared = Arc::default();
    let (src, tgt) = (src.clone(), tgt.clone());
    let task_ctx = ctx.clone();
    let shared = found.clone();
    for_each_parallel(parts, parallelism, move |part| {
        let (ctx, found) = (task_ctx.clone(), shared.clone());
        let (src, tgt) = (src.clone(), tgt.clone());
        let (source, target) = (source.clone(), target.clone());
        async move {
            let spec = ChunkSpec::from_part(&part)?;
            let (lo, hi) = (spec.lo.as_deref(), spec.hi.as_deref());
            let filter = src.opts.filter.as_deref();
            let (a, b) = tokio::try_join!(
                range_checksum(&src.conn, &src.table, lo, hi, filter),
                range_checksum(&tgt.conn, &tgt.table, lo, hi, None),
            )
            .map_err(|e| e.to_string())?;
            {
                let mut f = lock(&found);
                f.counts.chunks += 1;
                f.counts.source_rows += a.rows;
                f.counts.target_rows += b.rows;
                if a == b {
                    return Ok(());
                }
                f.counts.chunks_differing += 1;
            }
            tracing::debug!(unit = %ctx.name, part = %part.id, "checksums differ, comparing rows");
            let source: Arc<dyn Source> = source;
            let target: Arc<dyn Source> = target;
            compare_part(ctx.clone(), source, part.clone(), found.clone(), false).await?;
            extras_part(ctx, target, part, found, false).await
        }
    })
    .await?;
    Ok(take(found))
}

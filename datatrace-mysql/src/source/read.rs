//! Reading one part: keyset pages after the last row read, a checkpoint every
//! `checkpoint_rows` rows or `checkpoint_interval_ms` (whichever comes first), and a lost
//! connection resumed after the last row read.
//!
//! Retries: every failure that may pass (a killed session, a restarted server, a dropped
//! link, a deadlock) is retried with backoff per [`SourceOptions::reconnect`]; its
//! `max_attempts` counts failures in a row *without progress*: once rows arrive again the
//! budget is whole again, so a long read over a flaky link survives any number of drops that
//! are apart. Inside a consistent snapshot the lost session is replaced by a new one in a new
//! consistent snapshot (its rows are as of the reconnect: a `snapshot+cdc` job's stream
//! replays the changes since its start over them; a plain copy logs a warning). A table
//! without a key is scanned again skipping the rows already read (exact when no row before
//! that point was deleted meanwhile: give `key_columns` to make it exact in any case).
//!
//! [`SourceOptions::reconnect`]: crate::SourceOptions::reconnect

use std::time::{Duration, Instant};

use datatrace_core::{Emitter, Position, Retry, RetryPolicy, Value};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row};

use super::MySqlSource;
use crate::chunk::{ChunkPosition, ChunkSpec};
use crate::error::{Context, MySqlError, Result};
use crate::types::to_param;

/// The retries of a read under [`SourceOptions::reconnect`]: failures in a row without
/// progress (the policy's [`Retry`] starts again once more rows were read).
///
/// [`SourceOptions::reconnect`]: crate::SourceOptions::reconnect
pub(crate) struct Budget {
    retry: Retry,
    mark: u64,
}

impl Budget {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Budget {
            retry: policy.start(),
            mark: 0,
        }
    }

    /// A failure after `progress` units of work (rows read so far): the delay before the
    /// next attempt, or `None` once the policy's budget is spent without progress.
    pub(crate) fn failed(&mut self, progress: u64) -> Option<Duration> {
        if progress > self.mark {
            self.mark = progress;
            self.retry.succeeded();
        }
        self.retry.failed(None)
    }

    /// Failures in a row so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.retry.failures()
    }
}

/// Where a part's read stands: the last key read (keyset reads) or the rows read (scans).
struct Cursor {
    last: Option<Vec<Value>>,
    rows: u64,
}

impl MySqlSource {
    pub(super) async fn read_part(
        &self,
        spec: &ChunkSpec,
        resume: Option<ChunkPosition>,
        out: &mut Emitter,
    ) -> Result<()> {
        let resumed = resume.is_some();
        let last: Option<Vec<Value>> = match resume {
            Some(ChunkPosition {
                last: Some(last), ..
            }) => Some(last),
            _ => spec.lo.clone(),
        };
        if spec.scan && resumed {
            tracing::warn!(table = %self.name(), "table without key: resuming means reading it again from the start");
        }
        let mut cursor = Cursor { last, rows: 0 };
        let mut budget = Budget::new(self.opts.reconnect);
        let snap = if self.opts.consistent_snapshot {
            loop {
                match self.begin_snapshot().await {
                    Ok(_) => break self.snapshot.get(),
                    Err(e) => self.pause(e, &mut budget, 0, out).await?,
                }
            }
        } else {
            None
        };
        loop {
            let result = match snap {
                Some(s) => match s.lease().await {
                    Ok(mut c) => {
                        let r = self.pages(&mut c, spec, &mut cursor, out).await;
                        if matches!(&r, Err(e) if e.is_transient()) {
                            c.broken();
                        }
                        r
                    }
                    Err(e) => Err(e),
                },
                None => match self.conn.get().await {
                    Ok(mut c) => self.pages(&mut c, spec, &mut cursor, out).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    // A scan (no key) ends with the position of the snapshot it read, which a
                    // change stream started earlier needs (it skips what the copy holds).
                    if let (true, Some(p)) = (spec.scan, snap.and_then(|s| s.position.clone())) {
                        out.checkpoint(Position::of(&ChunkPosition {
                            last: None,
                            snapshot: Some(p),
                        }))
                        .await?;
                    }
                    return Ok(());
                }
                Err(e) => self.pause(e, &mut budget, cursor.rows, out).await?,
            }
        }
    }

    /// After a failed attempt: returns once it is time for the next one, or the error when it
    /// is not worth retrying (not transient, the budget spent, the pipeline stopped).
    async fn pause(
        &self,
        e: MySqlError,
        budget: &mut Budget,
        progress: u64,
        out: &Emitter,
    ) -> Result<()> {
        if !e.is_transient() || out.is_stopped() {
            return Err(e);
        }
        let Some(delay) = budget.failed(progress) else {
            return Err(MySqlError::Transient {
                context: format!("reading {}", self.name()),
                message: format!(
                    "{} failures in a row without a row read (reconnect.max_attempts): {e}",
                    budget.attempts()
                ),
            });
        };
        self.retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(table = %self.name(), attempt = budget.attempts(), rows = progress, error = %e, "read failed; resuming after the last row read");
        tokio::select! {
            _ = out.cancelled().cancelled() => Err(e),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Reads pages after the cursor until the part ends, advancing it row by row.
    async fn pages(
        &self,
        c: &mut Conn,
        spec: &ChunkSpec,
        cursor: &mut Cursor,
        out: &mut Emitter,
    ) -> Result<()> {
        let schema = self.table.schema.clone();
        let ctx = || format!("reading {}", self.name());
        let interval = Duration::from_millis(self.opts.checkpoint_interval_ms);
        let mut since_checkpoint: u64 = 0;
        let mut checkpointed = Instant::now();
        loop {
            let (mut sql, params) = self.page_query(spec, cursor.last.as_deref());
            if spec.scan && cursor.rows > 0 {
                // A scan again after a lost connection: skip what was read.
                sql.push_str(&format!(" LIMIT {}, 18446744073709551615", cursor.rows));
            }
            let params: Vec<mysql_async::Value> = params.iter().map(to_param).collect();
            let params = if params.is_empty() {
                Params::Empty
            } else {
                Params::Positional(params)
            };
            let mut result = c.exec_iter(sql, params).await.ctx(ctx)?;
            let mut stream =
                result
                    .stream::<Row>()
                    .await
                    .ctx(ctx)?
                    .ok_or_else(|| MySqlError::Driver {
                        context: ctx(),
                        message: "the query returned no result set".into(),
                    })?;
            let mut n: u64 = 0;
            while let Some(row) = stream.next().await {
                let row = row.ctx(ctx)?;
                let mut record = self.to_record(row, &schema)?;
                if let Some(p) = &self.stamp {
                    record.position = Some(p.clone());
                }
                n += 1;
                cursor.rows += 1;
                if !spec.scan {
                    cursor.last = Some(
                        self.table
                            .key
                            .iter()
                            .map(|&i| record.values[i].clone())
                            .collect(),
                    );
                }
                out.emit(record).await?;
                since_checkpoint += 1;
                if !spec.scan
                    && self.stamp.is_none()
                    && (since_checkpoint >= self.opts.checkpoint_rows
                        || checkpointed.elapsed() >= interval)
                {
                    out.checkpoint(self.position(cursor.last.as_deref()))
                        .await?;
                    since_checkpoint = 0;
                    checkpointed = Instant::now();
                }
            }
            drop(stream);
            if spec.scan || n < self.opts.page_rows {
                return Ok(());
            }
            if self.stamp.is_none() {
                out.checkpoint(self.position(cursor.last.as_deref()))
                    .await?;
            }
            since_checkpoint = 0;
            checkpointed = Instant::now();
        }
    }

    fn position(&self, last: Option<&[Value]>) -> Position {
        Position::of(&ChunkPosition {
            last: last.map(<[Value]>::to_vec),
            snapshot: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_whole_again_after_progress() {
        let policy = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(2));
        let mut b = Budget::new(policy);
        assert!(b.failed(0).is_some());
        assert!(b.failed(0).is_some());
        assert!(b.failed(0).is_none(), "the third failure in a row ends it");
        let mut b = Budget::new(policy);
        // A hundred failures, each after some rows: never exhausted.
        for i in 0..100 {
            assert!(b.failed(i * 10 + 1).is_some(), "failure {i}");
        }
        assert_eq!(b.attempts(), 1);
    }
}

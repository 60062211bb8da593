//! Dead letters: records a sink or transform rejected, kept with their error so they can be
//! inspected and replayed ([`FileDeadLetterQueue`], [`MemoryDeadLetterQueue`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::record::{Batch, Record};
use crate::sink::{Outcome, Sink};
use crate::temporal::Timestamp;

/// One rejected record and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job it belongs to.
    pub job: String,
    /// The unit (table or index).
    pub unit: String,
    /// `sink` or `transform`.
    pub stage: String,
    /// The record, with its schema, exactly as it was rejected.
    pub record: Record,
    /// The reason given by the sink or transform.
    pub error: String,
    /// How many write attempts were made (1 when rejected at once).
    pub attempts: u32,
    /// When it was rejected.
    pub time: Timestamp,
}

/// Keeps rejected records.
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Stores entries durably; the runner acknowledges the records only after this returns.
    async fn put(&self, entries: Vec<DeadLetter>) -> Result<()>;
    /// All stored entries, oldest first.
    async fn list(&self) -> Result<Vec<DeadLetter>>;
    /// Replaces the stored entries (used by replay to keep only what failed again).
    async fn replace(&self, entries: Vec<DeadLetter>) -> Result<()>;
}

/// What [`replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries written to the sink and removed from the queue.
    pub written: u64,
    /// Entries that were rejected again and stay in the queue (with attempts increased).
    pub failed: u64,
}

/// Writes every dead letter (optionally only those of one unit) to `sink`, in batches of up
/// to `batch_size`; written entries leave the queue, the others stay with their new error.
pub async fn replay(
    dlq: &dyn DeadLetterQueue,
    sink: &dyn Sink,
    unit: Option<&str>,
    batch_size: usize,
) -> Result<ReplayReport> {
    let all = dlq.list().await?;
    let (mine, mut keep): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|e| unit.is_none_or(|u| e.unit == u));
    let mut report = ReplayReport::default();
    let mut iter = mine.into_iter().peekable();
    while iter.peek().is_some() {
        let chunk: Vec<DeadLetter> = iter.by_ref().take(batch_size.max(1)).collect();
        let batch = Batch::new(chunk.iter().map(|e| e.record.clone()).collect());
        let outcomes = match sink.write(&batch).await {
            Ok(o) if o.len() == chunk.len() => o,
            Ok(o) => {
                return Err(Error::DeadLetter(format!(
                    "replay: sink returned {} outcomes for {} records",
                    o.len(),
                    chunk.len()
                )))
            }
            Err(e) => {
                // Keep this chunk and everything not yet tried; stop.
                keep.extend(chunk);
                keep.extend(iter);
                dlq.replace(keep).await?;
                return Err(Error::DeadLetter(format!("replay: sink failed: {e}")));
            }
        };
        for (mut entry, outcome) in chunk.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Written => report.written += 1,
                Outcome::Rejected(why) | Outcome::Retryable(why) => {
                    entry.attempts += 1;
                    entry.error = why.into();
                    entry.time = Timestamp::now();
                    keep.push(entry);
                    report.failed += 1;
                }
            }
        }
    }
    dlq.replace(keep).await?;
    Ok(report)
}

/// Dead letters in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryDeadLetterQueue {
    entries: Mutex<Vec<DeadLetter>>,
}

impl MemoryDeadLetterQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn put(&self, entries: Vec<DeadLetter>) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(entries);
        Ok(())
    }
    async fn list(&self) -> Result<Vec<DeadLetter>> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
    async fn replace(&self, entries: Vec<DeadLetter>) -> Result<()> {
        *self.entries.lock().unwrap_or_else(|e| e.into_inner()) = entries;
        Ok(())
    }
}

/// Dead letters as NDJSON: one JSON object per line, appended and synced before the records
/// are acknowledged. Readable with `jq`, listable and replayable with `datatrace dlq`.
#[derive(Debug)]
pub struct FileDeadLetterQueue {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileDeadLetterQueue {
    /// A queue in the file at `path` (created with its directory on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileDeadLetterQueue {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl DeadLetterQueue for FileDeadLetterQueue {
    async fn put(&self, entries: Vec<DeadLetter>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut buf, e)
                .map_err(|e| Error::DeadLetter(format!("serializing an entry: {e}")))?;
            buf.push(b'\n');
        }
        let _guard = self.lock.lock().await;
        let ctx = || format!("appending to {}", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let mut opts = tokio::fs::OpenOptions::new();
        opts.create(true).append(true);
        // Full row values: readable by the owner only.
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts
            .open(&self.path)
            .await
            .map_err(|e| Error::io(ctx(), e))?;
        f.write_all(&buf).await.map_err(|e| Error::io(ctx(), e))?;
        f.sync_data().await.map_err(|e| Error::io(ctx(), e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<DeadLetter>> {
        let _guard = self.lock.lock().await;
        let data = match tokio::fs::read(&self.path).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
        };
        data.split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                serde_json::from_slice(line).map_err(|e| {
                    Error::DeadLetter(format!("{} line {}: {e}", self.path.display(), i + 1))
                })
            })
            .collect()
    }

    async fn replace(&self, entries: Vec<DeadLetter>) -> Result<()> {
        let mut buf = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut buf, e)
                .map_err(|e| Error::DeadLetter(format!("serializing an entry: {e}")))?;
            buf.push(b'\n');
        }
        let _guard = self.lock.lock().await;
        crate::checkpoint::write_atomic(&self.path, buf).await
    }
}

//! Checkpoints: per-unit state and positions, and the stores that keep them
//! ([`MemoryCheckpointStore`], [`FileCheckpointStore`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::damaged::DamagedCheckpoint;
use crate::error::{Error, Result};
use crate::record::Position;
use crate::source::Part;
use crate::temporal::Timestamp;

/// Where a unit stands in a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitState {
    /// Not started.
    Pending,
    /// Started and not finished (also: stopped or crashed mid-way; it resumes).
    Running,
    /// Finished: a resumed job skips it.
    Done,
    /// Stopped by an error; it resumes from its checkpoint when run again.
    Failed,
}

impl std::fmt::Display for UnitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnitState::Pending => "pending",
            UnitState::Running => "running",
            UnitState::Done => "done",
            UnitState::Failed => "failed",
        })
    }
}

/// How far one part of a unit has been written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartState {
    /// The part, as [`crate::Source::split`] made it.
    pub part: Part,
    /// The last position whose records are all written; `None`: start of the part.
    pub position: Option<Position>,
    /// Whether every record of the part is written.
    pub done: bool,
}

/// Everything needed to resume a unit: its state and where each of its parts stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitCheckpoint {
    /// The unit's state.
    pub state: UnitState,
    /// Its parts, in split order (empty before the unit first started).
    pub parts: Vec<PartState>,
    /// The error that stopped it, for failed units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Records written so far, over all runs of the unit.
    #[serde(default)]
    pub written: u64,
    /// When this checkpoint was saved.
    pub updated_at: Timestamp,
}

impl UnitCheckpoint {
    /// A pending unit with no parts.
    pub fn pending() -> Self {
        UnitCheckpoint {
            state: UnitState::Pending,
            parts: Vec::new(),
            error: None,
            written: 0,
            updated_at: Timestamp::now(),
        }
    }
}

/// Loads and saves unit checkpoints, keyed by job and unit name.
///
/// `save` must be atomic: after a crash at any moment, `load` returns either the previous or
/// the new checkpoint, never a torn one.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint of a unit, if one was saved.
    async fn load(&self, job: &str, unit: &str) -> Result<Option<UnitCheckpoint>>;
    /// Saves a unit's checkpoint, replacing the previous one.
    async fn save(&self, job: &str, unit: &str, checkpoint: &UnitCheckpoint) -> Result<()>;
    /// Forgets a unit (the next run starts it afresh).
    async fn clear(&self, job: &str, unit: &str) -> Result<()>;
    /// All units of a job that have a checkpoint.
    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>>;
}

/// Checkpoints in memory: for tests and for pipelines that need no resume across restarts.
#[derive(Debug, Default)]
pub struct MemoryCheckpointStore {
    map: Mutex<HashMap<(String, String), UnitCheckpoint>>,
}

impl MemoryCheckpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpointStore {
    async fn load(&self, job: &str, unit: &str) -> Result<Option<UnitCheckpoint>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(&(job.to_string(), unit.to_string())).cloned())
    }
    async fn save(&self, job: &str, unit: &str, checkpoint: &UnitCheckpoint) -> Result<()> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((job.to_string(), unit.to_string()), checkpoint.clone());
        Ok(())
    }
    async fn clear(&self, job: &str, unit: &str) -> Result<()> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(job.to_string(), unit.to_string()));
        Ok(())
    }
    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .filter(|((j, _), _)| j == job)
            .map(|((_, u), c)| (u.clone(), c.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }
}

/// Checkpoints as JSON files under a directory: `DIR/<job>/<unit>.json`, written to a
/// temporary file, synced, and renamed over the old one, so a crash never leaves a torn file.
///
/// Job and unit names are escaped into file names (`shop.orders` stays, `a/b` becomes
/// `a%2Fb`), so any name is safe.
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    dir: PathBuf,
}

impl FileCheckpointStore {
    /// A store under `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileCheckpointStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn job_dir(&self, job: &str) -> PathBuf {
        self.dir.join(escape(job))
    }

    fn path(&self, job: &str, unit: &str) -> PathBuf {
        self.job_dir(job).join(format!("{}.json", escape(unit)))
    }
}

/// Escapes a name into a safe file name: keeps `[A-Za-z0-9._-]`, percent-encodes the rest
/// (and a leading dot).
pub(crate) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

fn unescape(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = name
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                if b != 0 {
                    out.push(b);
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `data` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) async fn write_atomic(path: &Path, data: Vec<u8>) -> Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_atomic_blocking(&path, &data))
        .await
        .map_err(|e| Error::Checkpoint(format!("write task failed: {e}")))?
}

fn write_atomic_blocking(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    // Unique per process and call, so concurrent saves never share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    // Checkpoints and dead letters hold keys and row values: owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(data)
        .and_then(|_| f.sync_data())
        .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            e,
        )
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn load(&self, job: &str, unit: &str) -> Result<Option<UnitCheckpoint>> {
        let path = self.path(job, unit);
        match tokio::fs::read(&path).await {
            Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
                Error::Checkpoint(format!("{} is not a valid checkpoint: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    async fn save(&self, job: &str, unit: &str, checkpoint: &UnitCheckpoint) -> Result<()> {
        let data = serde_json::to_vec_pretty(checkpoint)
            .map_err(|e| Error::Checkpoint(format!("serializing {job}/{unit}: {e}")))?;
        write_atomic(&self.path(job, unit), data).await
    }

    async fn clear(&self, job: &str, unit: &str) -> Result<()> {
        let path = self.path(job, unit);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
        }
    }

    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>> {
        let dir = self.job_dir(job);
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                let unit = unescape(stem);
                if let Some(cp) = self.load(job, &unit).await? {
                    out.push((unit, cp));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for n in ["shop.orders", "a/b", "..", "", "ünï", "x%y", ".hidden"] {
            let e = escape(n);
            assert!(!e.contains('/') && !e.starts_with('.'), "{e}");
            assert_eq!(unescape(&e), n, "{e}");
        }
    }

    #[tokio::test]
    async fn file_store_saves_loads_lists_clears() {
        let dir = std::env::temp_dir().join(format!("dt-cp-{}", std::process::id()));
        let store = FileCheckpointStore::new(&dir);
        assert!(store.load("j", "a/b").await.unwrap().is_none());
        let mut cp = UnitCheckpoint::pending();
        cp.state = UnitState::Running;
        cp.parts.push(PartState {
            part: Part::whole(),
            position: Some(Position::new(serde_json::json!([42]))),
            done: false,
        });
        store.save("j", "a/b", &cp).await.unwrap();
        store
            .save("j", "c", &UnitCheckpoint::pending())
            .await
            .unwrap();
        assert_eq!(store.load("j", "a/b").await.unwrap().unwrap(), cp);
        let units: Vec<String> = store
            .list("j")
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.0)
            .collect();
        assert_eq!(units, ["a/b", "c"]);
        store.clear("j", "a/b").await.unwrap();
        assert!(store.load("j", "a/b").await.unwrap().is_none());
        std::fs::write(store.path("j", "bad"), b"{").unwrap();
        let err = store.load("j", "bad").await.unwrap_err().to_string();
        assert!(err.contains("bad.json is not a valid checkpoint"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_saves_of_one_unit_do_not_collide() {
        let dir = std::env::temp_dir().join(format!("dt-cp-par-{}", std::process::id()));
        let store = std::sync::Arc::new(FileCheckpointStore::new(&dir));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        store
                            .save("j", "u", &UnitCheckpoint::pending())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(store.load("j", "u").await.unwrap().is_some());
        let leftovers = std::fs::read_dir(dir.join("j")).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

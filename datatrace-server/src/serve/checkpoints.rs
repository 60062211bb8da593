//! [`DbCheckpointStore`]: unit checkpoints kept in the metadata store with their task, so a
//! restarted server resumes running tasks where their last checkpoints stand; and
//! [`MirroredCheckpointStore`] for change-stream tasks.

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, Error, FileCheckpointStore, Result, UnitCheckpoint};

use super::store::Store;

/// The core job name of a task: `task-<id>`.
pub fn job_name(task: i64) -> String {
    format!("task-{task}")
}

/// Checkpoints in the `task_units` table; job names are `task-<id>`.
#[derive(Clone)]
pub struct DbCheckpointStore {
    store: Store,
}

impl DbCheckpointStore {
    /// A checkpoint store over `store`.
    pub fn new(store: Store) -> Self {
        DbCheckpointStore { store }
    }
}

fn task_id(job: &str) -> Result<i64> {
    job.strip_prefix("task-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "checkpoint store: job {job:?} is not a server task"
            ))
        })
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Config(e.to_string())
}

#[async_trait]
impl CheckpointStore for DbCheckpointStore {
    async fn load(&self, job: &str, unit: &str) -> Result<Option<UnitCheckpoint>> {
        let Some(text) = self
            .store
            .checkpoint(task_id(job)?, unit)
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| store_err(format!("checkpoint of {job}/{unit} is not readable: {e}")))
    }

    async fn save(&self, job: &str, unit: &str, checkpoint: &UnitCheckpoint) -> Result<()> {
        let json = serde_json::to_string(checkpoint).map_err(store_err)?;
        let state = checkpoint.state.to_string();
        self.store
            .save_checkpoint(
                task_id(job)?,
                unit,
                Some((
                    &json,
                    &state,
                    checkpoint.written,
                    checkpoint.error.as_deref(),
                )),
            )
            .map_err(store_err)
    }

    async fn clear(&self, job: &str, unit: &str) -> Result<()> {
        self.store
            .save_checkpoint(task_id(job)?, unit, None)
            .map_err(store_err)
    }

    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>> {
        let rows = self.store.checkpoints(task_id(job)?).map_err(store_err)?;
        rows.into_iter()
            .map(|(u, text)| {
                serde_json::from_str(&text)
                    .map(|c| (u.clone(), c))
                    .map_err(|e| store_err(format!("checkpoint of {job}/{u}: {e}")))
            })
            .collect()
    }
}

/// The metadata store's checkpoints, mirrored into the job's checkpoint files.
///
/// For change-stream tasks: the snapshot/stream handoff of `snapshot+cdc` sources keeps its
/// bookkeeping (the stream's first position, the snapshots' states) in the job's
/// [`FileCheckpointStore`], so every save goes to both; loads prefer the metadata store and
/// fall back to the file (the stream's first position is written there by the handoff).
pub struct MirroredCheckpointStore {
    db: DbCheckpointStore,
    file: FileCheckpointStore,
}

impl MirroredCheckpointStore {
    /// Both stores.
    pub fn new(db: DbCheckpointStore, file: FileCheckpointStore) -> Self {
        MirroredCheckpointStore { db, file }
    }
}

#[async_trait]
impl CheckpointStore for MirroredCheckpointStore {
    async fn load(&self, job: &str, unit: &str) -> Result<Option<UnitCheckpoint>> {
        match self.db.load(job, unit).await? {
            Some(c) => Ok(Some(c)),
            None => self.file.load(job, unit).await,
        }
    }

    async fn save(&self, job: &str, unit: &str, checkpoint: &UnitCheckpoint) -> Result<()> {
        self.db.save(job, unit, checkpoint).await?;
        self.file.save(job, unit, checkpoint).await
    }

    async fn clear(&self, job: &str, unit: &str) -> Result<()> {
        self.db.clear(job, unit).await?;
        self.file.clear(job, unit).await
    }

    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>> {
        self.db.list(job).await
    }
}

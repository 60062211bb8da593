//! [`DbCheckpointStore`]: unit checkpoints kept in the metadata store with their task, so a
//! restarted server resumes running tasks where their last checkpoints stand (a
//! `snapshot+cdc` handoff keeps its start there too).

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, Error, Result, UnitCheckpoint};

use super::sql_store::Store;

/// The core job name of a task: `task-<id>`.
pub fn job_name(task: i64) -> String {
    format!("task-{task}")
}

/// Told of every saved checkpoint (unit, checkpoint): the live view shows where streams are.
pub type OnSave = std::sync::Arc<dyn Fn(&str, &UnitCheckpoint) + Send + Sync>;

/// Checkpoints in the `task_units` table; job names are `task-<id>`.
#[derive(Clone)]
pub struct DbCheckpointStore {
    store: Store,
    on_save: Option<OnSave>,
}

impl DbCheckpointStore {
    /// A checkpoint store over `store`.
    pub fn new(store: Store) -> Self {
        DbCheckpointStore {
            store,
            on_save: None,
        }
    }

    /// Calls `f` after each save.
    pub fn on_save(mut self, f: OnSave) -> Self {
        self.on_save = Some(f);
        self
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
            .await
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
        self.store
            .save_checkpoint(
                task_id(job)?,
                unit,
                Some((
                    &json,
                    checkpoint.state,
                    checkpoint.written,
                    checkpoint.error.as_deref(),
                )),
            )
            .await
            .map_err(store_err)?;
        if let Some(f) = &self.on_save {
            f(unit, checkpoint);
        }
        Ok(())
    }

    async fn clear(&self, job: &str, unit: &str) -> Result<()> {
        self.store
            .save_checkpoint(task_id(job)?, unit, None)
            .await
            .map_err(store_err)
    }

    async fn list(&self, job: &str) -> Result<Vec<(String, UnitCheckpoint)>> {
        let rows = self
            .store
            .checkpoints(task_id(job)?)
            .await
            .map_err(store_err)?;
        rows.into_iter()
            .map(|(u, text)| {
                serde_json::from_str(&text)
                    .map(|c| (u.clone(), c))
                    .map_err(|e| store_err(format!("checkpoint of {job}/{u}: {e}")))
            })
            .collect()
    }
}

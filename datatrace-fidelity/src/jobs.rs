//! Job files run in-process, as `datatrace run` runs them: parsed, planned (every pre-run
//! check included), then run as a core job with the file checkpoint store; change streams
//! run in the background until they have caught up with the source server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datatrace_core::{CancellationToken, JobReport};
use datatrace_server::job_file::JobFile;
use datatrace_server::plan::{file_store, plan};
use datatrace_testkit::mariadb;

/// A fresh directory for one job's file, checkpoints and dead letters.
pub fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dt-fidelity-{}-{}",
        std::process::id(),
        datatrace_testkit::unique_name(name)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The job file `text`, written to `dir/job.toml` and parsed.
pub fn job(dir: &Path, text: &str) -> Result<JobFile, String> {
    let path = dir.join("job.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    JobFile::load(&path).map_err(|e| e.to_string())
}

/// Plans and runs `job` to its end (`restart`: its checkpoints cleared first, as
/// `datatrace run --restart` does). `Err` for a planning error (what `validate` reports).
pub async fn run(job: &JobFile, restart: bool) -> Result<JobReport, String> {
    let plan = plan(job, file_store(job))
        .await
        .map_err(|e| e.to_string())?;
    if restart {
        let store = plan.checkpoint_store();
        for u in &plan.units {
            store
                .clear(&plan.name, &u.name)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    plan.into_job().run().await.map_err(|e| e.to_string())
}

/// Runs `job` and fails with the report unless every unit is done.
pub async fn run_ok(job: &JobFile) -> JobReport {
    let report = run(job, false).await.expect("the job plans");
    assert!(report.is_complete(), "job {}: {report:#?}", job.name);
    report
}

/// A job with a change stream running in the background.
pub struct Stream {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<Result<JobReport, String>>,
    /// The job's result, once it ended on its own.
    ended: Option<Result<JobReport, String>>,
    checkpoint: PathBuf,
}

/// `(binlog file number << 32) | offset` of the server's current position: the ordinal a
/// stream's checkpoint reaches once it has read everything written so far.
pub fn master_ordinal() -> u64 {
    let out = mariadb().exec("SHOW MASTER STATUS");
    let f: Vec<&str> = out.lines().next().unwrap_or("").split('\t').collect();
    let seq: u64 = f[0]
        .rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (seq << 32) | f.get(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0)
}

fn checkpoint_ordinal(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["parts"][0]["position"]["ordinal"].as_u64())
        .unwrap_or(0)
}

impl Stream {
    /// Plans `job` and starts it (snapshot units first for `snapshot+cdc`, then the stream).
    pub async fn start(job: &JobFile) -> Result<Stream, String> {
        let plan = plan(job, file_store(job))
            .await
            .map_err(|e| e.to_string())?;
        let checkpoint = job.checkpoint_dir.join(&job.name).join("binlog.json");
        let cancel = CancellationToken::new();
        let run = plan.into_job().cancel_token(cancel.clone());
        let handle = tokio::spawn(async move { run.run().await.map_err(|e| e.to_string()) });
        Ok(Stream {
            cancel,
            handle,
            ended: None,
            checkpoint,
        })
    }

    /// Waits until the stream has declared where it starts (its first checkpoint): changes
    /// made after this are in the stream (a `cdc` stream starts at the server's position
    /// when it connects).
    pub async fn started(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        while checkpoint_ordinal(&self.checkpoint) == 0 {
            if started.elapsed() > timeout {
                return Err(format!("the stream did not start within {timeout:?}"));
            }
            if self.handle.is_finished() {
                return Err("the stream ended before starting".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Whether every snapshot unit (every unit but the stream) is done.
    fn snapshots_done(&self) -> bool {
        let Some(dir) = self.checkpoint.parent() else {
            return true;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().all(|e| {
            let path = e.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name == "binlog.json" {
                return true;
            }
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| v["state"] == "done")
        })
    }

    /// Waits until the snapshots are done and the stream's checkpoint has passed everything
    /// the server has written so far (so every change before this call is in the target).
    pub async fn caught_up(&mut self, timeout: Duration) -> Result<(), String> {
        let end = master_ordinal();
        let started = Instant::now();
        while checkpoint_ordinal(&self.checkpoint) < end || !self.snapshots_done() {
            if self.ended.is_none() && self.handle.is_finished() {
                let r = (&mut self.handle)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                self.ended = Some(r);
            }
            if let Some(r) = &self.ended {
                return Err(format!("the stream ended before catching up: {r:#?}"));
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "the stream did not catch up within {timeout:?} (checkpoint {}, server {end})",
                    checkpoint_ordinal(&self.checkpoint)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the stream gracefully and returns the job's report.
    pub async fn stop(self) -> Result<JobReport, String> {
        self.cancel.cancel();
        match self.ended {
            Some(r) => r,
            None => self.handle.await.map_err(|e| e.to_string())?,
        }
    }
}

//! Job files: what a job reads, writes and does in between, in TOML (or JSON).
//!
//! ```toml
//! name = "shop-copy"               # names the checkpoints: .datatrace/shop-copy/
//!
//! [source]
//! type = "generator"               # the connector; the other keys are its settings
//! units = ["orders", "customers"]
//! rows = 100000
//!
//! [target]
//! type = "discard"
//!
//! [[transforms]]                   # the core's built-in transforms, in order
//! type = "drop"
//! fields = ["c2"]
//!
//! [settings]                       # the core's pipeline settings, plus `concurrency`
//! concurrency = 2                  # units at the same time
//! batch_size = 1000
//! error_policy = "dead-letter"     # fail | skip | dead-letter
//!
//! [checkpoints]
//! dir = ".datatrace"               # relative paths are relative to the job file
//!
//! [dead_letters]
//! path = "rejects.ndjson"          # default: <checkpoints.dir>/<name>/dead-letters.ndjson
//! ```
//!
//! Any string may use `${VAR}` to take an environment variable's value (`password =
//! "${MYSQL_PASSWORD}"`); an unset variable is an error naming it and the key. Every error
//! names the file, the key path and what is expected:
//! `job.toml: settings.batch_size: expected a non-negative integer, found string "x"`.

pub mod env;
pub mod error;
pub mod fields;
pub mod format;
pub mod naming;
pub mod secrets;
pub mod sections;
pub mod settings;
pub mod transforms;

use std::path::{Path, PathBuf};

use datatrace_core::transforms::TransformSpec;
use serde::Deserialize;
use serde_json::Value;

pub use crate::connectors::{SourceSpec, TargetSpec};
pub use error::JobFileError;
pub use settings::Settings;

use crate::connectors::{registry, JobCtx};
use error::{from_value, join, unknown_key_message};
use secrets::{collect_secrets, scrub_text};
use sections::take_type;

/// The top-level keys.
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "source",
    "target",
    "transforms",
    "settings",
    "checkpoints",
    "dead_letters",
];

/// A parsed and checked job file.
#[derive(Clone)]
pub struct JobFile {
    /// The file as given (used in messages).
    pub file: String,
    /// The job's name (checkpoints are kept under it).
    pub name: String,
    /// A free description.
    pub description: Option<String>,
    /// Where it reads.
    pub source: SourceSpec,
    /// Where it writes.
    pub target: TargetSpec,
    /// The transforms, in order.
    pub transforms: Vec<TransformSpec>,
    /// Pipeline settings and unit concurrency.
    pub settings: Settings,
    /// The checkpoint directory (absolute, or relative to the working directory).
    pub checkpoint_dir: PathBuf,
    /// The dead-letter file.
    pub dead_letter_path: PathBuf,
    /// Values that must never be printed.
    secrets: Vec<String>,
}

impl std::fmt::Debug for JobFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connector settings redact their own secrets; the list of secrets is not shown.
        f.debug_struct("JobFile")
            .field("file", &self.file)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("target", &self.target)
            .field("transforms", &self.transforms.len())
            .field("settings", &self.settings)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("dead_letter_path", &self.dead_letter_path)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointSection {
    dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterSection {
    path: PathBuf,
}

impl JobFile {
    /// Reads and checks the job file at `path`, taking `${VAR}`s from the environment.
    pub fn load(path: &Path) -> Result<JobFile, JobFileError> {
        JobFile::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// Reads and checks the job file at `path`, taking `${VAR}`s from `env`.
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JobFile, JobFileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| JobFileError::new(&file, "", format!("cannot read the file: {e}")))?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        JobFile::parse(&file, &text, base, env)
    }

    /// Parses job file text. `file` names it in messages, `base` is the directory relative
    /// paths are resolved against, `env` looks up `${VAR}`s.
    pub fn parse(
        file: &str,
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JobFile, JobFileError> {
        let mut top = format::parse(file, text)?;
        for key in top.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                let allowed: Vec<String> = TOP_KEYS.iter().map(|s| s.to_string()).collect();
                return Err(JobFileError::new(file, key, unknown_key_message(&allowed)));
            }
        }
        let mut secrets = Vec::new();
        for (k, v) in top.iter_mut() {
            let used = env::substitute(file, k, v, env)?;
            collect_secrets(v, false, &mut secrets);
            secrets.extend(used);
        }
        secrets.retain(|s| !s.is_empty());
        let scrub = |mut e: JobFileError| {
            e.message = scrub_text(&secrets, &e.message);
            e
        };

        let name: String = match top.remove("name") {
            Some(v) => from_value(file, "name", v).map_err(scrub)?,
            None => {
                return Err(JobFileError::new(
                    file,
                    "",
                    "missing key \"name\" (the job's name)",
                ))
            }
        };
        check_name(&name).map_err(|m| JobFileError::new(file, "name", m))?;
        let description: Option<String> = match top.remove("description") {
            Some(v) => Some(from_value(file, "description", v).map_err(scrub)?),
            None => None,
        };
        let source = match top.remove("source") {
            Some(v) => parse_source(file, v).map_err(scrub)?,
            None => return Err(JobFileError::new(file, "", "missing section [source]")),
        };
        let target = match top.remove("target") {
            Some(v) => parse_target(file, v).map_err(scrub)?,
            None => return Err(JobFileError::new(file, "", "missing section [target]")),
        };
        let transforms = match top.remove("transforms") {
            Some(v) => transforms::parse_transforms(file, v).map_err(scrub)?,
            None => Vec::new(),
        };
        source
            .check_job(file, &target, &transforms)
            .map_err(scrub)?;
        let settings: Settings = match top.remove("settings") {
            Some(v) => from_value(file, "settings", v).map_err(scrub)?,
            None => Settings::default(),
        };
        settings
            .check()
            .map_err(|(k, m)| JobFileError::new(file, &join("settings", &k), m))?;
        let checkpoint_dir = match top.remove("checkpoints") {
            Some(v) => {
                from_value::<CheckpointSection>(file, "checkpoints", v)
                    .map_err(scrub)?
                    .dir
            }
            None => PathBuf::from(".datatrace"),
        };
        let checkpoint_dir = base.join(checkpoint_dir);
        let dead_letter_path = match top.remove("dead_letters") {
            Some(v) => base.join(
                from_value::<DeadLetterSection>(file, "dead_letters", v)
                    .map_err(scrub)?
                    .path,
            ),
            None => checkpoint_dir.join(&name).join("dead-letters.ndjson"),
        };
        Ok(JobFile {
            file: file.to_owned(),
            name,
            description,
            source,
            target,
            transforms,
            settings,
            checkpoint_dir,
            dead_letter_path,
            secrets,
        })
    }

    /// `text` with every secret of this job file replaced by `***`: use it on any message
    /// that may quote a value from a server or the file.
    pub fn scrub(&self, text: &str) -> String {
        scrub_text(&self.secrets, text)
    }

    /// What the job's connectors see of it.
    pub fn ctx(&self) -> JobCtx<'_> {
        JobCtx {
            file: &self.file,
            name: &self.name,
            source: &self.source,
            target: &self.target,
            transforms: &self.transforms,
            settings: &self.settings,
            checkpoint_dir: &self.checkpoint_dir,
            dead_letter_path: &self.dead_letter_path,
            secrets: &self.secrets,
        }
    }
}

/// Parses `[source]`: the `type` key picks the connector, the other keys are its settings.
fn parse_source(file: &str, value: Value) -> Result<SourceSpec, JobFileError> {
    let at = "source";
    let reg = registry();
    let types = reg.source_types();
    let (kind, rest) = take_type(file, at, value, &types)?;
    match reg.find(&kind).filter(|c| c.reads()) {
        Some(c) => c.parse_source(file, at, rest).map(SourceSpec),
        None => Err(unknown_type(file, at, &kind, &types)),
    }
}

/// Parses `[target]`.
fn parse_target(file: &str, value: Value) -> Result<TargetSpec, JobFileError> {
    let at = "target";
    let reg = registry();
    let types = reg.target_types();
    let (kind, rest) = take_type(file, at, value, &types)?;
    match reg.find(&kind).filter(|c| c.writes()) {
        Some(c) => c.parse_target(file, at, rest).map(TargetSpec),
        None => Err(unknown_type(file, at, &kind, &types)),
    }
}

/// The error for a `type` no registered connector answers to.
fn unknown_type(file: &str, at: &str, kind: &str, types: &[&str]) -> JobFileError {
    JobFileError::new(
        file,
        &join(at, "type"),
        format!(
            "unknown type {kind:?}, expected one of: {}",
            types.join(", ")
        ),
    )
}

/// Job names become directory names: letters, digits, `.`, `_`, `-`, not starting with `.`.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a name of letters, digits, \".\", \"_\" and \"-\" (it names the \
             checkpoint directory), found {name:?}"
        ))
    }
}

//! What `check` is asked ([`CheckOptions`]) and why it could not be done ([`CheckError`]):
//! the vocabulary the connectors' check support shares with the check itself.

use std::time::Duration;

use crate::job_file::error::JobFileError;

/// How to check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Rewrite missing and different rows from the source, then check again.
    pub repair: bool,
    /// With `repair`, also delete target rows that have no source row.
    pub delete_extra: bool,
    /// Keys (and rows, field by field) shown per kind of difference. Default 10.
    pub max_diffs_shown: usize,
    /// Wait before checking differing keys again (live targets). Default 2 s.
    pub recheck_delay: Duration,
    /// Rows per checksummed key range (and per part of a row-by-row scan). Default 10,000.
    pub chunk_size: u64,
    /// Rows per lookup in the other side. Default 1,000.
    pub batch_size: usize,
    /// Ranges or parts checked at the same time. Default 4.
    pub parallelism: usize,
    /// Checksum method: a differing range is cut into sub-ranges checksummed again, down to
    /// this many rows, before its rows are read. Default 32; 0 reads whole differing ranges.
    pub narrow_rows: u64,
    /// Only these units (empty: all).
    pub units: Vec<String>,
    /// Looks at each differing key this many times (each after `recheck_delay`) before
    /// it counts; `None`: once for a copy, 10 times for a job with a change stream, whose
    /// target converges to the source while the check reads.
    pub rounds: Option<u32>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            repair: false,
            delete_extra: false,
            max_diffs_shown: 10,
            recheck_delay: Duration::from_secs(2),
            chunk_size: 10_000,
            batch_size: 1_000,
            parallelism: 4,
            narrow_rows: 32,
            units: Vec::new(),
            rounds: None,
        }
    }
}

/// Why a check could not be done.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The job file, or a check before the run (servers, tables, transforms), is wrong.
    #[error("{0}")]
    Job(#[from] JobFileError),
    /// The job is of a kind `check` cannot compare.
    #[error("{file}: {message}")]
    Unsupported {
        /// The job file.
        file: String,
        /// What is not supported.
        message: String,
    },
    /// A `--unit` names no unit of the job.
    #[error("{file}: no unit {unit:?} in this job (units: {units})")]
    UnknownUnit {
        /// The job file.
        file: String,
        /// The name given.
        unit: String,
        /// The job's units.
        units: String,
    },
    /// Reading or writing a unit failed.
    #[error("unit {unit}: {message}")]
    Unit {
        /// The unit.
        unit: String,
        /// What failed.
        message: String,
    },
}

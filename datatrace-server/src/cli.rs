//! The command line: `datatrace run`, `validate`, `dlq list`, `dlq replay` and `serve`: its
//! arguments (run by [`crate::commands::main`]).
//!
//! Exit codes: 0 when everything finished, 1 when a unit failed (or a command failed), 2
//! when the job file or a check before the run is wrong (nothing was started), 130 when the
//! run was stopped with Ctrl-C (it resumes on the next run).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ui::ProgressMode;

/// Move data between MySQL and Elasticsearch.
#[derive(Debug, Parser)]
#[command(name = "datatrace", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a job: copies every unit, with progress, then prints a summary. Run it again
    /// after a stop or a failure to resume.
    Run(RunArgs),
    /// Checks a job file (and by default that its servers, tables and indices are there)
    /// without running it.
    Validate(ValidateArgs),
    /// Compares a job's targets with their sources; `--repair` rewrites what differs.
    Check(CheckArgs),
    /// Inspects and replays dead letters (records the target rejected).
    Dlq {
        /// What to do with them.
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The REST API, live progress (SSE), metrics and the web UI.
    Serve(ServeArgs),
    /// Manages the users of `datatrace serve` (the first admin, a lost password).
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `datatrace user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user to the server's metadata store; the password comes from
    /// DATATRACE_USER_PASSWORD or, when unset, from the first line of standard input.
    Add(UserAddArgs),
}

/// `datatrace user add`.
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The user name (letters, digits, '.', '-', '_', '@').
    #[arg(long)]
    pub username: String,
    /// viewer, operator or admin.
    #[arg(long, default_value = "viewer")]
    pub role: String,
    /// The server's data directory (as given to `datatrace serve`).
    #[arg(long, default_value = ".datatrace")]
    pub data_dir: PathBuf,
    /// The server's MySQL metadata database, if it keeps one (password from
    /// DATATRACE_METADATA_PASSWORD).
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
}

/// `datatrace run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file (TOML, or JSON).
    pub job: PathBuf,
    /// How progress is shown.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Seconds between plain progress lines.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub log_every: f64,
    /// Forget the job's checkpoints and start every unit afresh.
    #[arg(long)]
    pub restart: bool,
}

impl RunArgs {
    /// `--log-every` as a duration.
    pub fn log_interval(&self) -> Duration {
        Duration::from_secs_f64(self.log_every.clamp(0.1, 3600.0))
    }
}

/// `datatrace validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The job file (TOML, or JSON).
    pub job: PathBuf,
    /// Check only the file; do not connect to any server.
    #[arg(long)]
    pub offline: bool,
}

/// `datatrace check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The job file (TOML, or JSON), as for `run`.
    pub job: PathBuf,
    /// Output format (`json`: the whole report as one JSON document).
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Rewrite missing and different rows from the source, then check again.
    #[arg(long)]
    pub repair: bool,
    /// With --repair (implied), also delete target rows that have no source row.
    #[arg(long)]
    pub delete_extra: bool,
    /// Only this unit (repeatable).
    #[arg(long)]
    pub unit: Vec<String>,
    /// Keys and rows shown per kind of difference.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_diffs: usize,
    /// Seconds to wait before checking differing rows again (live targets).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub recheck_delay: f64,
    /// Rows per checksummed key range (default 10000).
    #[arg(long, value_name = "ROWS")]
    pub chunk_size: Option<u64>,
    /// Ranges checked at the same time (default 4).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// A differing range is narrowed by checksums of sub-ranges down to this many rows
    /// before rows are read (default 32; 0: read whole differing ranges).
    #[arg(long, value_name = "ROWS")]
    pub narrow_rows: Option<u64>,
}

/// `datatrace dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Lists dead letters.
    List(DlqListArgs),
    /// Writes dead letters to the job's target again; those written leave the queue.
    Replay(DlqReplayArgs),
}

/// How `dlq list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// A table, one line per entry.
    Table,
    /// One JSON object per line (NDJSON), the stored form.
    Json,
}

/// `datatrace dlq list`.
#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// The job file (its dead-letter queue is listed).
    #[arg(required_unless_present = "file")]
    pub job: Option<PathBuf>,
    /// A dead-letter file to list instead of a job's.
    #[arg(long, conflicts_with = "job")]
    pub file: Option<PathBuf>,
    /// Only this unit's entries.
    #[arg(long)]
    pub unit: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

/// `datatrace dlq replay`.
#[derive(Debug, Args)]
pub struct DlqReplayArgs {
    /// The job file (its target receives the records).
    pub job: PathBuf,
    /// Only this unit's entries.
    #[arg(long)]
    pub unit: Option<String>,
    /// Records per write (default: the job's batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
}

pub use crate::serve::ServeArgs;

//! The subcommands' implementations; each returns the process exit code.

pub mod check;
pub mod dlq;
pub mod run;
pub mod serve;
pub mod validate;

/// Everything finished.
pub const EXIT_OK: u8 = 0;
/// A unit or the command failed.
pub const EXIT_FAILED: u8 = 1;
/// The job file or a check before the run is wrong; nothing was started.
pub const EXIT_INVALID: u8 = 2;
/// Stopped by Ctrl-C (or SIGTERM); the next run resumes.
pub const EXIT_INTERRUPTED: u8 = 130;

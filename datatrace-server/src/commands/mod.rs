//! The subcommands' implementations; each returns the process exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command, DlqCommand, UserCommand};

pub mod check;
pub mod dlq;
pub mod run;
pub mod serve;
pub mod user;
pub mod validate;

/// Everything finished.
pub const EXIT_OK: u8 = 0;
/// A unit or the command failed.
pub const EXIT_FAILED: u8 = 1;
/// The job file or a check before the run is wrong; nothing was started.
pub const EXIT_INVALID: u8 = 2;
/// Stopped by Ctrl-C (or SIGTERM); the next run resumes.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Parses the process's arguments and runs the command on a new runtime.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(execute(cli));
    // Do not wait for stray blocking tasks (a slow server) on the way out.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}

/// Runs a parsed command line; returns the exit code.
pub async fn execute(cli: Cli) -> u8 {
    match cli.command {
        Command::Run(args) => run::run(&args, cli.verbose).await,
        Command::Validate(args) => validate::validate(&args, cli.verbose).await,
        Command::Check(args) => check::check(&args, cli.verbose).await,
        Command::Dlq {
            command: DlqCommand::List(args),
        } => dlq::list(&args).await,
        Command::Dlq {
            command: DlqCommand::Replay(args),
        } => dlq::replay(&args, cli.verbose).await,
        Command::Serve(args) => serve::serve(&args).await,
        Command::User {
            command: UserCommand::Add(args),
        } => user::add(&args).await,
    }
}

//! `datatrace check JOB`: compares every unit's target with its source (see
//! [`crate::check`]), prints what differs, and with `--repair` rewrites it.
//!
//! Exit codes: 0 every unit equal (after the repair, when repairing), 1 differences remain,
//! 2 the job file is wrong or a server, table or index cannot be read.

use std::time::Duration;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::check::{check_job, render, CheckOptions};
use crate::cli::{CheckArgs, ListFormat};
use crate::job_file::JobFile;
use crate::ui::{self, Printer, ProgressMode};

/// The options of `args`.
pub fn options(args: &CheckArgs) -> CheckOptions {
    let defaults = CheckOptions::default();
    CheckOptions {
        repair: args.repair || args.delete_extra,
        delete_extra: args.delete_extra,
        max_diffs_shown: args.max_diffs,
        recheck_delay: Duration::from_secs_f64(args.recheck_delay.clamp(0.0, 3600.0)),
        chunk_size: args.chunk_size.unwrap_or(defaults.chunk_size),
        parallelism: args.parallelism.unwrap_or(defaults.parallelism).max(1),
        narrow_rows: args.narrow_rows.unwrap_or(defaults.narrow_rows),
        units: args.unit.clone(),
        ..defaults
    }
}

/// Runs `datatrace check`.
pub async fn check(args: &CheckArgs, verbose: u8) -> u8 {
    let printer = Printer::for_mode(ProgressMode::None);
    ui::log::init(verbose, printer.clone());
    let job = match JobFile::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let report = match check_job(&job, &options(args)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", job.scrub(&e.to_string()));
            return EXIT_INVALID;
        }
    };
    let text = match args.format {
        ListFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot print the report: {e}");
                return EXIT_FAILED;
            }
        },
        ListFormat::Table => render(&report),
    };
    print!("{}", job.scrub(&text));
    if report.equal {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

//! `datatrace validate JOB`: checks the job file and, unless `--offline`, everything a run
//! would check first (servers reachable, tables and indices there, transforms valid for
//! their schemas), and for documents how many documents their shared rows reach (refusing a
//! relation above its `max_fan_out`); prints what the job would do.

use std::fmt::Write;

use datatrace_core::transforms::TransformSpec;

use super::{EXIT_INVALID, EXIT_OK};
use crate::cli::ValidateArgs;
use crate::job_file::{JobFile, Settings};
use crate::plan::{file_store, plan};
use crate::ui::{self, human, Printer};

/// Validates the job file of `args`.
pub async fn validate(args: &ValidateArgs, verbose: u8) -> u8 {
    ui::log::init(verbose, Printer::default());
    let job = match JobFile::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let mut out = describe(&job);
    if args.offline {
        out.push_str("units:        not discovered (--offline)\n");
    } else {
        match plan(&job, file_store(&job)).await {
            Ok(plan) => {
                if let Err(e) = crate::plan::predict::data_checks(&job, &plan).await {
                    print!("{}", job.scrub(&out));
                    eprintln!("error: {e}");
                    return EXIT_INVALID;
                }
                let _ = writeln!(out, "units:        {}", plan.units.len());
                for u in &plan.units {
                    let rows = u
                        .estimated_rows
                        .map_or(String::new(), |n| format!(", ~{} rows", human::count(n)));
                    let cols = u
                        .schema
                        .as_ref()
                        .map_or(String::new(), |s| format!(", {} columns", s.len()));
                    let _ = writeln!(out, "  {} -> {}{rows}{cols}", u.name, u.target);
                }
                for line in job.source.validate(job.ctx()).await {
                    let _ = writeln!(out, "{line}");
                }
                match job.source.warnings(job.ctx()).await {
                    Ok(lines) => {
                        for line in lines {
                            let _ = writeln!(out, "warning:      {line}");
                        }
                    }
                    Err(e) => {
                        print!("{}", job.scrub(&out));
                        eprintln!("error: {e}");
                        return EXIT_INVALID;
                    }
                }
                if let Some(extra) = &plan.extra {
                    match extra.validate(job.ctx()).await {
                        Ok(lines) => {
                            for line in lines {
                                let _ = writeln!(out, "{line}");
                            }
                        }
                        Err(e) => {
                            print!("{}", job.scrub(&out));
                            eprintln!("error: {e}");
                            return EXIT_INVALID;
                        }
                    }
                }
            }
            Err(e) => {
                print!("{}", job.scrub(&out));
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        }
    }
    let _ = writeln!(out, "{}: ok", job.file);
    print!("{}", job.scrub(&out));
    EXIT_OK
}

/// What the job file says, for people (no secrets: the connectors' descriptions redact them).
pub fn describe(job: &JobFile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "job:          {}", job.name);
    if let Some(d) = &job.description {
        let _ = writeln!(out, "description:  {d}");
    }
    let _ = writeln!(out, "source:       {}", job.source.describe());
    let _ = writeln!(out, "target:       {}", job.target.describe());
    let kinds: Vec<&str> = job.transforms.iter().map(TransformSpec::kind).collect();
    if kinds.is_empty() {
        let _ = writeln!(out, "transforms:   none");
    } else {
        let _ = writeln!(out, "transforms:   {}", kinds.join(", "));
    }
    let _ = writeln!(out, "settings:     {}", settings_line(&job.settings));
    let _ = writeln!(out, "checkpoints:  {}", job.checkpoint_dir.display());
    let _ = writeln!(out, "dead letters: {}", job.dead_letter_path.display());
    out
}

fn settings_line(s: &Settings) -> String {
    let policy = match s.error_policy {
        datatrace_core::ErrorPolicy::Fail => "fail",
        datatrace_core::ErrorPolicy::Skip => "skip",
        datatrace_core::ErrorPolicy::DeadLetter => "dead-letter",
    };
    let mut line = format!(
        "concurrency {}, batch_size {}, linger {} ms, read_parallelism {}, sink_concurrency {}, \
         error_policy {policy}",
        s.concurrency, s.batch_size, s.linger, s.read_parallelism, s.sink_concurrency
    );
    if let Some(r) = s.rate_limit.records_per_sec {
        let _ = write!(line, ", {r} records/s");
    }
    if let Some(b) = s.rate_limit.bytes_per_sec {
        let _ = write!(line, ", {b} bytes/s");
    }
    line
}

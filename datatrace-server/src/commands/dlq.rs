//! `datatrace dlq list` and `datatrace dlq replay`: the dead letters of a job.

use std::path::PathBuf;

use datatrace_core::dlq::replay as replay_entries;
use datatrace_core::{DeadLetter, DeadLetterQueue, FileDeadLetterQueue};

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::cli::{DlqListArgs, DlqReplayArgs, ListFormat};
use crate::job_file::JobFile;
use crate::plan::target_sink;
use crate::ui::{self, Printer};

/// Lists the dead letters of a job (or of a file).
pub async fn list(args: &DlqListArgs) -> u8 {
    let path: PathBuf = match (&args.file, &args.job) {
        (Some(f), _) => f.clone(),
        (None, Some(job)) => {
            // Listing needs no secrets: unset variables read as empty here.
            let lenient = |name: &str| Some(std::env::var(name).unwrap_or_default());
            match JobFile::load_with_env(job, &lenient) {
                Ok(j) => j.dead_letter_path,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_INVALID;
                }
            }
        }
        (None, None) => {
            eprintln!("error: give a job file or --file");
            return EXIT_INVALID;
        }
    };
    let queue = FileDeadLetterQueue::new(&path);
    let entries = match queue.list().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let entries: Vec<DeadLetter> = entries
        .into_iter()
        .filter(|e| args.unit.as_ref().is_none_or(|u| &e.unit == u))
        .collect();
    match args.format {
        ListFormat::Json => {
            for e in &entries {
                match serde_json::to_string(e) {
                    Ok(line) => println!("{line}"),
                    Err(err) => {
                        eprintln!("error: cannot print an entry: {err}");
                        return EXIT_FAILED;
                    }
                }
            }
        }
        ListFormat::Table => print!("{}", table(&entries, &path.display().to_string())),
    }
    EXIT_OK
}

/// The entries as a table, with a count line.
pub fn table(entries: &[DeadLetter], path: &str) -> String {
    let header = ["#", "unit", "key", "stage", "attempts", "time", "error"];
    let rows: Vec<[String; 7]> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            [
                (i + 1).to_string(),
                e.unit.clone(),
                e.record.key_string(","),
                e.stage.clone(),
                e.attempts.to_string(),
                e.time.to_string(),
                e.error.replace('\n', " "),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r).take(6) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        for (i, c) in cells.iter().enumerate() {
            if i < 6 {
                out.push_str(c);
                out.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count()) + 2));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    };
    if !rows.is_empty() {
        line(&header.map(String::from));
        for r in &rows {
            line(r);
        }
    }
    out.push_str(&format!("{} dead letter(s) in {path}\n", entries.len()));
    out
}

/// Replays the dead letters of a job into its target.
pub async fn replay(args: &DlqReplayArgs, verbose: u8) -> u8 {
    ui::log::init(verbose, Printer::default());
    let job = match JobFile::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let sink = match target_sink(&job).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let queue = FileDeadLetterQueue::new(&job.dead_letter_path);
    let batch = args.batch_size.unwrap_or(job.settings.batch_size);
    match replay_entries(&queue, sink.as_ref(), args.unit.as_deref(), batch).await {
        Ok(r) => {
            println!(
                "replayed {} dead letter(s): {} written, {} rejected again (kept in {})",
                r.written + r.failed,
                r.written,
                r.failed,
                job.dead_letter_path.display()
            );
            if r.failed == 0 {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
        Err(e) => {
            eprintln!("error: {}", job.scrub(&e.to_string()));
            EXIT_FAILED
        }
    }
}

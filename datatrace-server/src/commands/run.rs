//! `datatrace run JOB`: plans the job, runs it with progress, prints the summary, and stops
//! gracefully on Ctrl-C (a second Ctrl-C quits at once).

use datatrace_core::{progress_channel, CancellationToken, UnitState};

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK};
use crate::cli::RunArgs;
use crate::job_file::JobFile;
use crate::plan::{file_store, plan};
use crate::ui::{self, summary, Printer, ProgressDisplay, UnitInfo};

/// Runs the job file of `args`.
pub async fn run(args: &RunArgs, verbose: u8) -> u8 {
    let mode = args.progress.resolve();
    let printer = Printer::for_mode(mode);
    ui::log::init(verbose, printer.clone());
    let job = match JobFile::load(&args.job) {
        Ok(j) => j,
        Err(e) => {
            printer.line(&format!("error: {e}"));
            return EXIT_INVALID;
        }
    };
    let plan = match plan(&job, file_store(&job)).await {
        Ok(p) => p,
        Err(e) => {
            printer.line(&format!("error: {e}"));
            return EXIT_INVALID;
        }
    };
    // What may be lossy without being refused, once at start (`validate` prints the same).
    match job.source.warnings(job.ctx()).await {
        Ok(lines) => {
            for line in lines {
                tracing::warn!("{}", job.scrub(&line));
            }
        }
        Err(e) => tracing::warn!("could not check the job for lossy cases: {e}"),
    }
    let store = plan.checkpoint_store();
    let mut infos = Vec::with_capacity(plan.units.len());
    for u in &plan.units {
        if args.restart {
            if let Err(e) = store.clear(&plan.name, &u.name).await {
                printer.line(&format!("error: {}", job.scrub(&e.to_string())));
                return EXIT_FAILED;
            }
        }
        let state_before = match store.load(&plan.name, &u.name).await {
            Ok(cp) => cp.map_or(UnitState::Pending, |c| c.state),
            Err(e) => {
                printer.line(&format!("error: {}", job.scrub(&e.to_string())));
                return EXIT_FAILED;
            }
        };
        infos.push(UnitInfo {
            name: u.name.clone(),
            estimated_rows: u.estimated_rows,
            state_before,
        });
    }
    let done_before = infos
        .iter()
        .filter(|u| u.state_before == UnitState::Done)
        .count();
    let started_before = infos
        .iter()
        .filter(|u| matches!(u.state_before, UnitState::Running | UnitState::Failed))
        .count();
    if done_before + started_before > 0 {
        printer.line(&format!(
            "[{}] resuming from {}: {done_before} unit(s) done before (skipped), \
             {started_before} continue from their checkpoints",
            plan.name,
            plan.checkpoint_dir.display()
        ));
    }

    let (tx, rx) = progress_channel(4096);
    let display = ProgressDisplay::start(
        mode,
        printer.clone(),
        &plan.name,
        &infos,
        rx,
        args.log_interval(),
    );
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(cancel.clone(), display.printer()));
    let dead_letter_path = plan.dead_letter_path.display().to_string();
    let result = plan
        .into_job()
        .progress(tx)
        .cancel_token(cancel.clone())
        .run()
        .await;
    signals.abort();
    display.finish().await;

    let report = match result {
        Ok(r) => r,
        Err(e) => {
            printer.line(&format!("error: {}", job.scrub(&e.to_string())));
            return EXIT_FAILED;
        }
    };
    let text = summary::render(&report, &job.file, &dead_letter_path);
    print!("{}", job.scrub(&text));
    if report.has_failures() {
        EXIT_FAILED
    } else if report.is_complete() {
        EXIT_OK
    } else if cancel.is_cancelled() {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILED
    }
}

/// First Ctrl-C (or SIGTERM): stop gracefully. Second: quit at once.
async fn watch_signals(cancel: CancellationToken, printer: Printer) {
    let signal = Signals::new();
    signal.next().await;
    printer.line(
        "stopping: writing what was read and saving checkpoints (Ctrl-C again to quit at once)",
    );
    cancel.cancel();
    signal.next().await;
    printer.line("quitting at once; the next run resumes from the last saved checkpoints");
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}

/// Ctrl-C, and SIGTERM on Unix.
struct Signals {
    #[cfg(unix)]
    term: tokio::sync::Mutex<Option<tokio::signal::unix::Signal>>,
}

impl Signals {
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::sync::Mutex::new(
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
            ),
        }
    }

    async fn next(&self) {
        #[cfg(unix)]
        {
            let mut term = self.term.lock().await;
            match term.as_mut() {
                Some(t) => {
                    tokio::select! {
                        _ = ctrl_c() => {}
                        _ = t.recv() => {}
                    }
                }
                None => ctrl_c().await,
            }
        }
        #[cfg(not(unix))]
        ctrl_c().await
    }
}

/// Resolves on Ctrl-C; never, if the handler cannot be installed.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

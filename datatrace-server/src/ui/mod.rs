//! What `datatrace run` shows while it works and when it is done: progress bars per unit
//! and overall on a terminal ([`bars`]), plain log lines otherwise ([`plain`]), and the
//! summary table at the end ([`summary`]). Both displays are fed from the core's progress
//! broadcast channel.

pub mod bars;
pub mod human;
pub mod log;
pub mod plain;
pub mod state;
pub mod summary;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use datatrace_core::{CancellationToken, ProgressEvent};
use indicatif::MultiProgress;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use state::UnitInfo;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Progress bars (one per running unit and one overall).
    Bars,
    /// A log line per unit every few seconds and on every state change.
    Plain,
    /// Nothing but the summary.
    None,
}

impl ProgressMode {
    /// `Auto` resolved against stderr.
    pub fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        }
    }
}

/// Prints lines to stderr without tearing progress bars.
#[derive(Clone, Default)]
pub struct Printer {
    multi: Option<MultiProgress>,
}

impl Printer {
    /// A printer that writes through the bars, if there are any.
    pub fn new(multi: Option<MultiProgress>) -> Self {
        Printer { multi }
    }

    /// The printer for a display mode (already resolved): with bars for [`ProgressMode::Bars`].
    pub fn for_mode(mode: ProgressMode) -> Self {
        match mode {
            ProgressMode::Bars => Printer::new(Some(MultiProgress::new())),
            _ => Printer::default(),
        }
    }

    /// Prints one line on stderr.
    pub fn line(&self, text: &str) {
        let print = || {
            let _ = writeln!(std::io::stderr(), "{text}");
        };
        match &self.multi {
            Some(m) => m.suspend(print),
            None => print(),
        }
    }

    /// Writes raw bytes to stderr (for log records), hiding the bars meanwhile.
    pub fn write_raw(&self, buf: &[u8]) -> std::io::Result<()> {
        match &self.multi {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }
}

/// A running progress display.
pub struct ProgressDisplay {
    printer: Printer,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts showing events from `rx` in `mode` (already resolved) for `units`, printing
    /// through `printer` (made by [`Printer::for_mode`]). In plain mode, a line per changed
    /// unit is printed every `log_every`.
    pub fn start(
        mode: ProgressMode,
        printer: Printer,
        job: &str,
        units: &[UnitInfo],
        rx: broadcast::Receiver<ProgressEvent>,
        log_every: Duration,
    ) -> Self {
        let stop = CancellationToken::new();
        match (mode, printer.multi.clone()) {
            (ProgressMode::Bars, Some(multi)) => {
                let task = tokio::spawn(bars::show(multi, units.to_vec(), rx, stop.clone()));
                ProgressDisplay {
                    printer,
                    stop,
                    task: Some(task),
                }
            }
            (ProgressMode::Plain, _) => {
                let task = tokio::spawn(plain::show(
                    printer.clone(),
                    job.to_owned(),
                    units.to_vec(),
                    rx,
                    log_every,
                    stop.clone(),
                ));
                ProgressDisplay {
                    printer,
                    stop,
                    task: Some(task),
                }
            }
            _ => ProgressDisplay {
                printer,
                stop,
                task: None,
            },
        }
    }

    /// Where other messages should be printed while the display runs.
    pub fn printer(&self) -> Printer {
        self.printer.clone()
    }

    /// Shows the last events and removes the bars.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

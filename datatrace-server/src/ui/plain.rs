//! Plain progress lines for logs and pipes: one line per unit on every state change, and
//! every few seconds a line per unit that moved plus an overall line.

use std::time::Duration;

use datatrace_core::{CancellationToken, ProgressEvent, UnitState};
use tokio::sync::broadcast::{self, error::RecvError};

use super::state::{Board, Change, UnitInfo};
use super::Printer;

/// Prints events from `rx` until `stop`, then drains what is left.
pub async fn show(
    printer: Printer,
    job: String,
    units: Vec<UnitInfo>,
    mut rx: broadcast::Receiver<ProgressEvent>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut board = Board::new(&units);
    let resumed: Vec<String> = units
        .iter()
        .filter(|u| matches!(u.state_before, UnitState::Running | UnitState::Failed))
        .map(|u| u.name.clone())
        .collect();
    for u in &units {
        if u.state_before == UnitState::Done {
            printer.line(&format!("[{job}] {}: done before, skipped", u.name));
        }
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            ev = rx.recv() => match ev {
                Ok(ev) => on_event(&printer, &job, &mut board, &resumed, &ev),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = stop.cancelled() => {
                while let Ok(ev) = rx.try_recv() {
                    on_event(&printer, &job, &mut board, &resumed, &ev);
                }
                break;
            }
            _ = tick.tick() => report(&printer, &job, &mut board),
        }
    }
}

fn on_event(
    printer: &Printer,
    job: &str,
    board: &mut Board,
    resumed: &[String],
    ev: &ProgressEvent,
) {
    let (unit, change) = board.apply(ev);
    if let Change::State(state) = change {
        let Some(view) = board.units.get_mut(&unit) else {
            return;
        };
        let line = match state {
            UnitState::Running if resumed.contains(&unit) => {
                format!("[{job}] {unit}: running, resumed from its checkpoint")
            }
            UnitState::Running => format!("[{job}] {unit}: running"),
            UnitState::Done => format!("[{job}] {unit}: done, {}", view.describe()),
            UnitState::Failed => format!(
                "[{job}] {unit}: failed: {}",
                view.error.as_deref().unwrap_or("unknown error")
            ),
            UnitState::Pending => format!("[{job}] {unit}: pending"),
        };
        view.dirty = false;
        printer.line(&line);
    }
}

fn report(printer: &Printer, job: &str, board: &mut Board) {
    let mut any = false;
    for (name, view) in board.units.iter_mut() {
        if view.dirty && view.state == UnitState::Running {
            printer.line(&format!("[{job}] {name}: {}", view.describe()));
            any = true;
        }
        view.dirty = false;
    }
    if any {
        printer.line(&format!("[{job}] overall: {}", board.describe_overall()));
    }
}

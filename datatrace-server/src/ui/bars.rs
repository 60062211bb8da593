//! Progress bars on a terminal: one per running unit (rows, rows/s, ETA) under an overall
//! bar. Finished units leave one line behind.

use std::collections::HashMap;
use std::time::Duration;

use datatrace_core::{CancellationToken, ProgressEvent, UnitState};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::broadcast::{self, error::RecvError};

use super::state::{Board, Change, UnitInfo};

fn unit_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>20.bold} [{bar:30.cyan/blue}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn overall_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>20.bold.green} [{bar:30.green/white}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Draws events from `rx` until `stop`, then draws what is left and clears the bars.
pub async fn show(
    multi: MultiProgress,
    units: Vec<UnitInfo>,
    mut rx: broadcast::Receiver<ProgressEvent>,
    stop: CancellationToken,
) {
    let mut board = Board::new(&units);
    let overall = multi.add(ProgressBar::new(1).with_style(overall_style()));
    overall.set_prefix("overall");
    overall.enable_steady_tick(Duration::from_millis(500));
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    update_overall(&overall, &board);
    loop {
        tokio::select! {
            biased;
            ev = rx.recv() => match ev {
                Ok(ev) => on_event(&multi, &mut bars, &mut board, &ev),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = stop.cancelled() => {
                while let Ok(ev) = rx.try_recv() {
                    on_event(&multi, &mut bars, &mut board, &ev);
                }
                break;
            }
        }
        update_overall(&overall, &board);
    }
    update_overall(&overall, &board);
    for (_, bar) in bars.drain() {
        bar.finish_and_clear();
    }
    overall.finish_and_clear();
    let _ = multi.clear();
}

fn update_overall(bar: &ProgressBar, board: &Board) {
    let o = board.overall();
    bar.set_message(board.describe_overall());
    bar.set_length(o.total.unwrap_or(o.processed).max(1));
    bar.set_position(o.processed);
}

fn on_event(
    multi: &MultiProgress,
    bars: &mut HashMap<String, ProgressBar>,
    board: &mut Board,
    ev: &ProgressEvent,
) {
    let (unit, change) = board.apply(ev);
    let Some(view) = board.units.get(&unit) else {
        return;
    };
    match change {
        Change::State(UnitState::Done) | Change::State(UnitState::Failed) => {
            if let Some(bar) = bars.remove(&unit) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            let line = match view.state {
                UnitState::Failed => format!(
                    "{unit}: failed: {}",
                    view.error.as_deref().unwrap_or("unknown error")
                ),
                _ => format!("{unit}: done, {}", view.describe()),
            };
            let _ = multi.println(line);
        }
        Change::State(UnitState::Running) | Change::Counters => {
            if view.state != UnitState::Running {
                return;
            }
            let processed = view.processed();
            let length = view.progress.estimated_total.unwrap_or(processed).max(1);
            match bars.get(&unit) {
                Some(bar) => {
                    bar.set_message(view.describe());
                    bar.set_length(length);
                    bar.set_position(processed);
                }
                None => {
                    // Fully set up before it is shown, so it never flashes empty.
                    let bar = ProgressBar::hidden().with_style(unit_style());
                    bar.set_prefix(shorten(&unit, 20));
                    bar.set_length(length);
                    bar.set_position(processed);
                    bar.set_message(view.describe());
                    bars.insert(unit.clone(), multi.add(bar));
                }
            }
        }
        Change::State(UnitState::Pending) => {}
    }
}

/// Keeps the end of long names: `…orders_2024`.
fn shorten(name: &str, max: usize) -> String {
    let n = name.chars().count();
    if n <= max {
        name.to_owned()
    } else {
        let tail: String = name.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    }
}

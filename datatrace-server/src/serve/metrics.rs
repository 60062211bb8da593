//! `/metrics`: Prometheus text exposition of every task's and unit's counters.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counters of every task the server knows, as Prometheus text.
pub fn render(app: &AppState) -> String {
    // Make sure every stored task has its live state.
    if let Ok(tasks) = app.store().tasks() {
        for t in tasks {
            let _ = app.manager.hub(t.id);
        }
    }
    let hubs = app.manager.hubs();
    let mut out = String::new();
    let unit_metrics: [(&str, &str, &str); 6] = [
        (
            "datatrace_unit_rows_read_total",
            "counter",
            "Records read from the source by the unit's current run.",
        ),
        (
            "datatrace_unit_rows_written_total",
            "counter",
            "Records written to the target by the unit (over all runs).",
        ),
        (
            "datatrace_unit_rows_rejected_total",
            "counter",
            "Records rejected by the target or a transform in the current run.",
        ),
        (
            "datatrace_unit_rows_per_second",
            "gauge",
            "Written records per second, latest.",
        ),
        (
            "datatrace_unit_lag_seconds",
            "gauge",
            "Change lag (change streams only).",
        ),
        ("datatrace_unit_failed", "gauge", "1 when the unit failed."),
    ];
    for (i, (name, kind, help)) in unit_metrics.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (id, hub) in &hubs {
            hub.with(|l| {
                for u in l.units.values() {
                    let v = match i {
                        0 => u.row.read as f64,
                        1 => u.row.written as f64,
                        2 => u.row.rejected as f64,
                        3 => u.rate,
                        4 => match u.lag_ms {
                            Some(ms) => ms as f64 / 1000.0,
                            None => continue,
                        },
                        _ => f64::from(u8::from(u.row.state == "failed")),
                    };
                    let _ = writeln!(
                        out,
                        "{name}{{task=\"{id}\",unit=\"{}\"}} {v}",
                        esc(&u.row.unit)
                    );
                }
            });
        }
    }
    let task_metrics: [(&str, &str); 5] = [
        (
            "datatrace_task_rows_written_total",
            "Records written by the task's units.",
        ),
        (
            "datatrace_task_rows_rejected_total",
            "Records rejected in the task's current runs.",
        ),
        (
            "datatrace_task_rows_per_second",
            "Written records per second over running units.",
        ),
        ("datatrace_task_units_failed", "Failed units (errors)."),
        ("datatrace_task_running", "1 while the task runs."),
    ];
    for (i, (name, help)) in task_metrics.iter().enumerate() {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (id, hub) in &hubs {
            let (o, status) = hub.with(|l| (l.overall(), l.status.clone()));
            let v = match i {
                0 => o.written as f64,
                1 => o.rejected as f64,
                2 => o.rate,
                3 => o.units_failed as f64,
                _ => f64::from(u8::from(matches!(
                    status.as_str(),
                    "running" | "queued" | "stopping"
                ))),
            };
            let _ = writeln!(out, "{name}{{task=\"{id}\"}} {v}");
        }
    }
    out
}

/// `GET /metrics`
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&app),
    )
}

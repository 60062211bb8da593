//! `/metrics`: Prometheus text exposition of every task's and unit's counters, and of
//! every task's drift (rows differing at its last check).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::store::UnitStatus;
use super::AppState;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counters of every task the server knows, as Prometheus text.
pub async fn render(app: &AppState) -> String {
    // Make sure every stored task has its live state.
    if let Ok(tasks) = app.store().tasks().await {
        for t in tasks {
            let _ = app.manager.hub(t.id).await;
        }
    }
    let hubs = app.manager.hubs();
    let mut out = String::new();
    let unit_metrics: [(&str, &str, &str); 7] = [
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
        (
            "datatrace_unit_binlog_retention_seconds",
            "gauge",
            "Seconds until the server may purge the binlog a change stream still has to read (at least); absent when not at risk.",
        ),
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
                        5 => f64::from(u8::from(u.row.state == UnitStatus::FAILED)),
                        _ => match u.retention_secs {
                            Some(s) => s as f64,
                            None => continue,
                        },
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
    let name = "datatrace_partition_lag_messages";
    let _ = writeln!(
        out,
        "# HELP {name} Messages of a partition not yet written (a Kafka source's assigned partitions).\n# TYPE {name} gauge"
    );
    for (id, hub) in &hubs {
        hub.with(|l| {
            for u in l.units.values() {
                for p in &u.partitions {
                    let _ = writeln!(
                        out,
                        "{name}{{task=\"{id}\",unit=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
                        esc(&u.row.unit),
                        esc(&p.topic),
                        p.partition,
                        p.lag
                    );
                }
            }
        });
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
    drift(app, &mut out).await;
    out
}

/// The drift figures: rows differing after each task's last check, and when it ended.
async fn drift(app: &AppState, out: &mut String) {
    let drifts = app.store().drifts().await.unwrap_or_default();
    let name = "datatrace_drift_rows";
    let _ = writeln!(
        out,
        "# HELP {name} Rows missing, extra or different in the target at the task's last check (after its repair, when repairing).\n# TYPE {name} gauge"
    );
    for d in &drifts {
        let _ = writeln!(out, "{name}{{task=\"{}\"}} {}", d.task_id, d.rows_differing);
    }
    let name = "datatrace_drift_last_checked_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} When the task's last check ended (Unix time, seconds).\n# TYPE {name} gauge"
    );
    for d in &drifts {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&d.checked_at) {
            let secs = t.timestamp_millis() as f64 / 1000.0;
            let _ = writeln!(out, "{name}{{task=\"{}\"}} {secs}", d.task_id);
        }
    }
}

/// `GET /metrics`
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&app).await,
    )
}

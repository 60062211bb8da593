//! The web UI: plain HTML, CSS and JavaScript modules embedded in the binary (no CDN, no
//! build step). `/` is the page; `/ui/<file>` its modules and style sheet.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX: &str = include_str!("../../web/index.html");

/// The UI's files under `/ui/`: name, content type, text.
pub const FILES: &[(&str, &str, &str)] = &[
    ("style.css", CSS, include_str!("../../web/ui/style.css")),
    ("app.js", JS, include_str!("../../web/ui/app.js")),
    ("lib.js", JS, include_str!("../../web/ui/lib.js")),
    ("login.js", JS, include_str!("../../web/ui/login.js")),
    (
        "datasources.js",
        JS,
        include_str!("../../web/ui/datasources.js"),
    ),
    ("tasks.js", JS, include_str!("../../web/ui/tasks.js")),
    ("wizard.js", JS, include_str!("../../web/ui/wizard.js")),
    ("task.js", JS, include_str!("../../web/ui/task.js")),
    ("live.js", JS, include_str!("../../web/ui/live.js")),
    ("logs.js", JS, include_str!("../../web/ui/logs.js")),
    (
        "deadletters.js",
        JS,
        include_str!("../../web/ui/deadletters.js"),
    ),
    ("accounts.js", JS, include_str!("../../web/ui/accounts.js")),
    ("audit.js", JS, include_str!("../../web/ui/audit.js")),
    (
        "schedules.js",
        JS,
        include_str!("../../web/ui/schedules.js"),
    ),
    ("alerts.js", JS, include_str!("../../web/ui/alerts.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => asset(kind, body),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": format!("/ui/{name} not found") })),
        )
            .into_response(),
    }
}

/// `/` and `/ui/{file}` (no login: they hold no data; the UI asks to sign in).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route("/ui/{file}", get(file))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
}

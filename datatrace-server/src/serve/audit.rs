//! The audit layer: every change made through the API (and every refused attempt) is
//! recorded with who made it, what, on what, when and how it ended. It records the route
//! and ids only, never a request body, so no secret can reach the log.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Principal;
use super::AppState;

/// The largest response read back for the id and name of what was created.
const CREATED_PEEK: usize = 64 * 1024;

/// The action of a route: `task.start`, `datasource.update`, `token.revoke`, ...
pub fn action(method: &str, path: &str) -> String {
    let (prefix, rest) = grouped(path);
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.get(2) == Some(&"dead-letters") {
        return format!("dead_letter.{}", segs.last().unwrap_or(&method));
    }
    let resource = segs[0].strip_suffix('s').unwrap_or(segs[0]);
    let resource = &format!("{prefix}{resource}");
    match (segs.get(2), method) {
        (Some(verb), _) => format!("{resource}.{verb}"),
        (None, "post") if segs.len() == 1 => {
            if resource == "logout" {
                "logout".into()
            } else {
                format!("{resource}.create")
            }
        }
        (None, "put") => format!("{resource}.update"),
        (None, "delete") if resource == "token" => "token.revoke".into(),
        (None, "delete") => format!("{resource}.delete"),
        _ => format!("{resource}.{method}"),
    }
}

/// A route's path after `/api/`, without the group of grouped resources
/// (`/api/alerts/rules/5` is `rules/5` of `alert_`), and the group's prefix.
fn grouped(path: &str) -> (&'static str, &str) {
    let rest = path.trim_start_matches("/api/");
    match rest.strip_prefix("alerts/") {
        Some(r) => ("alert_", r),
        None => ("", rest),
    }
}

/// Records the request after it ran: `ok` for a success, `denied` for `401`/`403`,
/// else `failed` with the status.
pub async fn record(
    State(app): State<AppState>,
    action: String,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let actor = req.extensions().get::<Principal>().map(|p| p.actor());
    let path = req.uri().path().to_owned();
    let resource = action.split('.').next().unwrap_or_default().to_owned();
    let mut target = target_of(&resource, &path);
    let response = next.run(req).await;
    let Some(actor) = actor else { return response };
    let status = response.status();
    let (response, created) = if status == StatusCode::CREATED {
        peek_created(response).await
    } else {
        (response, None)
    };
    if let Some(c) = created {
        target = Some(format!("{resource} {c}"));
    }
    let outcome = match status.as_u16() {
        200..=299 => "ok".to_owned(),
        401 | 403 => "denied".to_owned(),
        s => format!("failed ({s})"),
    };
    let target = target.map(|t| app.scrub(&t));
    if let Err(e) = app
        .store()
        .audit(&actor, &action, target.as_deref(), None, &outcome)
        .await
    {
        eprintln!("error: {e}");
    }
    response
}

/// What a request acts on: `task 3`, or for a dead letter `task 3 dead letter 7`.
fn target_of(resource: &str, path: &str) -> Option<String> {
    let segs: Vec<&str> = grouped(path).1.split('/').collect();
    let id = segs.get(1)?;
    if segs.get(2) == Some(&"dead-letters") {
        return Some(match segs.get(3).filter(|s| s.parse::<i64>().is_ok()) {
            Some(letter) => format!("task {id} dead letter {letter}"),
            None => format!("task {id} dead letters"),
        });
    }
    Some(format!("{resource} {id}"))
}

/// The id and name in a `201` answer (`5 (orders)`), keeping the answer.
async fn peek_created(response: Response) -> (Response, Option<String>) {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, CREATED_PEEK).await else {
        return (Response::from_parts(parts, Body::empty()), None);
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let id = v.get("id").and_then(|i| i.as_i64());
    let name = ["name", "username"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|n| n.as_str()))
        .map(|n| n.chars().take(64).collect::<String>());
    let label = match (id, name) {
        (Some(i), Some(n)) => Some(format!("{i} ({n})")),
        (Some(i), None) => Some(i.to_string()),
        (None, Some(n)) => Some(n),
        (None, None) => None,
    };
    (Response::from_parts(parts, Body::from(bytes)), label)
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn actions_of_routes() {
        assert_eq!(action("post", "/api/tasks/{id}/start"), "task.start");
        assert_eq!(action("post", "/api/tasks"), "task.create");
        assert_eq!(action("put", "/api/datasources/{id}"), "datasource.update");
        assert_eq!(action("delete", "/api/users/{id}"), "user.delete");
        assert_eq!(action("delete", "/api/tokens/{id}"), "token.revoke");
        assert_eq!(action("post", "/api/logout"), "logout");
        assert_eq!(
            action("post", "/api/tasks/{id}/dead-letters/{letter}/replay"),
            "dead_letter.replay"
        );
        assert_eq!(
            action("post", "/api/tasks/{id}/dead-letters/discard"),
            "dead_letter.discard"
        );
        assert_eq!(
            super::target_of("dead_letter", "/api/tasks/3/dead-letters/7/replay").as_deref(),
            Some("task 3 dead letter 7")
        );
        assert_eq!(action("post", "/api/alerts/rules"), "alert_rule.create");
        assert_eq!(
            action("put", "/api/alerts/channels/{id}"),
            "alert_channel.update"
        );
        assert_eq!(
            action("post", "/api/alerts/channels/{id}/test"),
            "alert_channel.test"
        );
    }
}

//! The route table: one list builds both the router and the OpenAPI document, so the
//! document always lists exactly the routes the server has.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{api, metrics, AppState};

/// One documented route.
pub struct RouteDoc {
    /// `get`, `post`, `put`, `delete`.
    pub method: &'static str,
    /// The path, with `{id}` parameters.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The request body's schema (a name under components.schemas).
    pub body: Option<&'static str>,
    /// The success status.
    pub status: u16,
}

const fn doc(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: u16,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        body,
        status,
    }
}

/// Every authenticated route with its handler.
pub fn table() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        (doc("get", "/api/datasources", "List data sources (never with their secrets)", None, 200), get(api::list_datasources)),
        (doc("post", "/api/datasources", "Create a data source (secrets are stored encrypted)", Some("DataSourceInput"), 201), post(api::create_datasource)),
        (doc("get", "/api/datasources/{id}", "Show a data source", None, 200), get(api::get_datasource)),
        (doc("put", "/api/datasources/{id}", "Change a data source (absent secrets are kept, \"\" removes one)", Some("DataSourceInput"), 200), put(api::update_datasource)),
        (doc("delete", "/api/datasources/{id}", "Delete a data source no task uses", None, 204), delete(api::delete_datasource)),
        (doc("post", "/api/datasources/{id}/test", "Test the connection: version, flavour, privileges", None, 200), post(api::test_datasource)),
        (doc("get", "/api/datasources/{id}/units", "List the tables or indices of a data source", None, 200), get(api::datasource_units)),
        (doc("get", "/api/tasks", "List tasks with their status and totals", None, 200), get(api::list_tasks)),
        (doc("post", "/api/tasks", "Create a task", Some("TaskInput"), 201), post(api::create_task)),
        (doc("get", "/api/tasks/{id}", "Show a task", None, 200), get(api::get_task)),
        (doc("put", "/api/tasks/{id}", "Change a stopped task", Some("TaskInput"), 200), put(api::update_task)),
        (doc("delete", "/api/tasks/{id}", "Delete a stopped task with its units and logs", None, 204), delete(api::delete_task)),
        (doc("post", "/api/tasks/{id}/start", "Start afresh (forgets checkpoints)", None, 202), post(api::start_task)),
        (doc("post", "/api/tasks/{id}/stop", "Stop gracefully (flush, checkpoint)", None, 202), post(api::stop_task)),
        (doc("post", "/api/tasks/{id}/resume", "Continue from the checkpoints (done units are skipped)", None, 202), post(api::resume_task)),
        (doc("post", "/api/tasks/{id}/retry", "Run the failed units again from their checkpoints", None, 202), post(api::retry_task)),
        (doc("post", "/api/tasks/{id}/verify", "Compare the target with the source (datatrace check, no repair); returns the check report", None, 200), post(api::verify_task)),
        (doc("get", "/api/tasks/{id}/units", "The units with live state and counters", None, 200), get(api::task_units)),
        (doc("get", "/api/tasks/{id}/logs", "Log lines, newest first (?category=realtime|error|system&before=&limit=)", None, 200), get(api::task_logs)),
        (doc("get", "/api/tasks/{id}/events", "Server-sent events: snapshot, progress, unit, status, log (token also as ?access_token=)", None, 200), get(api::task_events)),
        (doc("get", "/api/logs", "The server's own log lines (?category=&before=&limit=)", None, 200), get(api::server_logs)),
        (doc("get", "/api/openapi.json", "This document", None, 200), get(openapi_handler)),
        (doc("get", "/metrics", "Prometheus metrics per task and unit", None, 200), get(metrics::metrics)),
    ]
}

/// The routes that need no token.
pub const PUBLIC: &[&str] = &["/healthz", "/", "/app.js", "/style.css", "/favicon.ico"];

/// The authenticated part of the router.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for (d, mr) in table() {
        r = r.route(d.path, mr);
    }
    r
}

async fn openapi_handler() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Json(openapi()))
}

fn schemas() -> Value {
    json!({
        "DataSourceInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "type", "url"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["mysql", "elasticsearch", "opensearch"]},
                "url": {"type": "string", "description": "mysql://user@host:3306/db or http(s)://host:9200, without a password"},
                "username": {"type": "string", "description": "Elasticsearch only"},
                "password": {"type": "string", "writeOnly": true, "description": "stored encrypted, never returned; absent keeps, \"\" removes"},
                "api_key": {"type": "string", "writeOnly": true, "description": "Elasticsearch only; stored encrypted, never returned"},
                "options": {"type": "object", "description": "further connection keys of the connector (max_connections, tls, timeout_ms, ...)"}
            }
        },
        "TaskInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "source", "target"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "mode": {"type": "string", "enum": ["full", "incremental", "full+incremental"], "default": "full",
                          "description": "incremental: binlog changes only; full+incremental: the tables, then their changes (MySQL sources)"},
                "source": {"type": "object", "required": ["datasource"], "properties": {"datasource": {"type": "integer"}},
                            "description": "a data source id plus the source keys of a job file (tables / indices, exclude, ...)"},
                "target": {"type": "object", "required": ["datasource"], "properties": {"datasource": {"type": "integer"}},
                            "description": "a data source id plus the target keys of a job file (table / index, mode, ...)"},
                "transforms": {"type": "array", "items": {"type": "object"}},
                "settings": {"type": "object", "description": "concurrency, batch_size, error_policy, rate_limit, ... as in job files"}
            }
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "field": {"type": "string"}}
        }
    })
}

/// The OpenAPI 3.1 document of [`table`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (d, _) in table() {
        let mut op = json!({
            "summary": d.summary,
            "responses": {
                d.status.to_string(): {"description": "success"},
                "400": {"description": "invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "missing or wrong bearer token"},
            }
        });
        if d.path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
            op["responses"]["404"] = json!({"description": "no such item"});
        }
        if d.path.ends_with("/logs") {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut params = params;
            params.extend([
                json!({"name": "category", "in": "query", "schema": {"type": "string", "enum": ["realtime", "error", "system"]}}),
                json!({"name": "before", "in": "query", "schema": {"type": "integer"}}),
                json!({"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}}),
            ]);
            op["parameters"] = Value::Array(params);
        }
        if let Some(b) = d.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        let entry = paths.entry(d.path.to_owned()).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    paths.insert(
        "/healthz".into(),
        json!({"get": {"summary": "Liveness (no token needed)", "security": [], "responses": {"200": {"description": "ok"}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "DataTrace server", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

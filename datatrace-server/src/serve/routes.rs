//! The route table: one list builds both the router and the OpenAPI document, so the
//! document always lists exactly the routes the server has.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::auth::guard::require_role;
use super::auth::Role;
use super::schedules::api as sched;
use super::{accounts, alerts, api, audit, dead_letters, metrics, AppState};

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
    /// The least role that may call it.
    pub role: Role,
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
        role: Role::Viewer,
    }
}

impl RouteDoc {
    const fn operator(mut self) -> Self {
        self.role = Role::Operator;
        self
    }
    const fn admin(mut self) -> Self {
        self.role = Role::Admin;
        self
    }
}

/// Every authenticated route with its handler.
pub fn table() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        (doc("get", "/api/connectors", "The connectors this server knows: data source types and inline ones, with what the UI needs to offer them", None, 200), get(api::list_connectors)),
        (doc("get", "/api/datasources", "List data sources (never with their secrets)", None, 200), get(api::list_datasources)),
        (doc("post", "/api/datasources", "Create a data source (secrets are stored encrypted)", Some("DataSourceInput"), 201).admin(), post(api::create_datasource)),
        (doc("get", "/api/datasources/{id}", "Show a data source", None, 200), get(api::get_datasource)),
        (doc("put", "/api/datasources/{id}", "Change a data source (absent secrets are kept, \"\" removes one)", Some("DataSourceInput"), 200).admin(), put(api::update_datasource)),
        (doc("delete", "/api/datasources/{id}", "Delete a data source no task uses", None, 204).admin(), delete(api::delete_datasource)),
        (doc("post", "/api/datasources/{id}/test", "Test the connection: version, flavour, privileges", None, 200).operator(), post(api::test_datasource)),
        (doc("get", "/api/datasources/{id}/units", "List the tables or indices of a data source", None, 200), get(api::datasource_units)),
        (doc("get", "/api/tasks", "List tasks with their status and totals", None, 200), get(api::list_tasks)),
        (doc("post", "/api/tasks", "Create a task", Some("TaskInput"), 201).operator(), post(api::create_task)),
        (doc("get", "/api/tasks/{id}", "Show a task", None, 200), get(api::get_task)),
        (doc("put", "/api/tasks/{id}", "Change a stopped task", Some("TaskInput"), 200).operator(), put(api::update_task)),
        (doc("delete", "/api/tasks/{id}", "Delete a stopped task with its units, logs, schedules and runs", None, 204).operator(), delete(api::delete_task)),
        (doc("post", "/api/tasks/{id}/start", "Start afresh (forgets checkpoints)", None, 202).operator(), post(api::start_task)),
        (doc("post", "/api/tasks/{id}/stop", "Stop gracefully (flush, checkpoint)", None, 202).operator(), post(api::stop_task)),
        (doc("post", "/api/tasks/{id}/resume", "Continue from the checkpoints (done units are skipped)", None, 202).operator(), post(api::resume_task)),
        (doc("post", "/api/tasks/{id}/retry", "Run the failed units again from their checkpoints", None, 202).operator(), post(api::retry_task)),
        (doc("post", "/api/tasks/{id}/verify", "Compare the target with the source (datatrace check, no repair); returns the check report", None, 200).operator(), post(api::verify_task)),
        (doc("get", "/api/tasks/{id}/units", "The units with live state and counters", None, 200), get(api::task_units)),
        (doc("get", "/api/tasks/{id}/logs", "Log lines, newest first (?category=realtime|error|system&before=&limit=&q=), or since a line (?after=), oldest first", None, 200), get(api::task_logs)),
        (doc("get", "/api/tasks/{id}/events", "Server-sent events: snapshot, progress, unit, status, log (token also as ?access_token=)", None, 200), get(super::events::task_events)),
        (doc("get", "/api/tasks/{id}/schedules", "The task's schedules with their next firings (UTC and local time of their zone)", None, 200), get(sched::task_schedules)),
        (doc("get", "/api/tasks/{id}/runs", "The task's run history, newest first (?kind=&before=&limit=): start, end, rows read/written, bytes written, rejected, rows differing, result", None, 200), get(sched::task_runs)),
        (doc("get", "/api/tasks/{id}/drift", "Rows differing after the task's last check, and when (null before any check)", None, 200), get(sched::task_drift)),
        (doc("get", "/api/schedules", "Every schedule with its next firings", None, 200), get(sched::list_schedules)),
        (doc("post", "/api/schedules", "Schedule a task: cron expression, time zone, action (resync, check, check_repair, drift_check)", Some("ScheduleInput"), 201).operator(), post(sched::create_schedule)),
        (doc("get", "/api/schedules/{id}", "Show a schedule", None, 200), get(sched::get_schedule)),
        (doc("put", "/api/schedules/{id}", "Change a schedule (absent fields are kept)", Some("ScheduleInput"), 200).operator(), put(sched::update_schedule)),
        (doc("delete", "/api/schedules/{id}", "Delete a schedule", None, 204).operator(), delete(sched::delete_schedule)),
        (doc("post", "/api/schedules/{id}/run", "Run a schedule's action now (its next firing stays); answers the recorded run (skipped when the task is busy)", None, 202).operator(), post(sched::run_schedule)),
        (doc("get", "/api/runs", "The run history of every task, newest first (?task=&kind=&before=&limit=)", None, 200), get(sched::list_runs)),
        (doc("get", "/api/tasks/{id}/dead-letters", "Dead letters, newest first (?unit=&q=&state=new|replayed|discarded&since=&until=&before=&limit=), with counts per state; one entry per key, counted", None, 200), get(dead_letters::list)),
        (doc("get", "/api/tasks/{id}/dead-letters/{letter}", "One dead letter with its error and the record's values", None, 200), get(dead_letters::inspect)),
        (doc("post", "/api/tasks/{id}/dead-letters/{letter}/replay", "Write a new dead letter to the task's target (the task must not run): replayed, or still new with the new reason", None, 200).operator(), post(dead_letters::replay_one)),
        (doc("post", "/api/tasks/{id}/dead-letters/{letter}/discard", "Give up a new dead letter (kept as discarded until the retention removes it)", None, 200).operator(), post(dead_letters::discard_one)),
        (doc("post", "/api/tasks/{id}/dead-letters/replay", "Replay every new dead letter matching ?unit=&q=&since=&until= (the task must not run)", None, 200).operator(), post(dead_letters::replay_all)),
        (doc("post", "/api/tasks/{id}/dead-letters/discard", "Discard every new dead letter matching ?unit=&q=&since=&until=", None, 200).operator(), post(dead_letters::discard_all)),
        (doc("get", "/api/logs", "The server's own log lines (?category=&before=&after=&limit=&q=)", None, 200), get(api::server_logs)),
        (doc("get", "/api/openapi.json", "This document", None, 200), get(openapi_handler)),
        (doc("get", "/api/me", "Who I am: user name, role, and for a browser session its CSRF token", None, 200), get(accounts::me)),
        (doc("post", "/api/logout", "End the browser session", None, 204), post(accounts::logout)),
        (doc("get", "/api/tokens", "My API tokens (never the tokens themselves)", None, 200), get(accounts::list_tokens)),
        (doc("post", "/api/tokens", "Create an API token of mine (shown once, stored as a digest)", Some("TokenInput"), 201), post(accounts::create_token)),
        (doc("delete", "/api/tokens/{id}", "Revoke an API token of mine (an admin: anyone's)", None, 204), delete(accounts::revoke_token)),
        (doc("get", "/api/users", "List users and their roles", None, 200).admin(), get(accounts::list_users)),
        (doc("post", "/api/users", "Add a user (viewer, operator or admin)", Some("UserInput"), 201).admin(), post(accounts::create_user)),
        (doc("put", "/api/users/{id}", "Change a user's role or password (a new password ends its sessions)", Some("UserInput"), 200).admin(), put(accounts::update_user)),
        (doc("delete", "/api/users/{id}", "Delete a user with its sessions and tokens", None, 204).admin(), delete(accounts::delete_user)),
        (doc("get", "/api/alerts/channels", "List alert channels (never with their URL or secret: the endpoint and has_secret only)", None, 200), get(alerts::api::list_channels)),
        (doc("post", "/api/alerts/channels", "Create an alert channel (webhook, slack, dingtalk, wecom; URL and secret stored encrypted)", Some("AlertChannelInput"), 201).admin(), post(alerts::api::create_channel)),
        (doc("get", "/api/alerts/channels/{id}", "Show an alert channel", None, 200), get(alerts::api::get_channel)),
        (doc("put", "/api/alerts/channels/{id}", "Change an alert channel (absent url and secret are kept, \"\" removes the secret)", Some("AlertChannelInput"), 200).admin(), put(alerts::api::update_channel)),
        (doc("delete", "/api/alerts/channels/{id}", "Delete an alert channel no rule sends to", None, 204).admin(), delete(alerts::api::delete_channel)),
        (doc("post", "/api/alerts/channels/{id}/test", "Send a test alert to the channel (with retries); answers the delivery's outcome and records it in the history", None, 200).operator(), post(alerts::api::test_channel)),
        (doc("get", "/api/alerts/rules", "List alert rules", None, 200), get(alerts::api::list_rules)),
        (doc("post", "/api/alerts/rules", "Create an alert rule", Some("AlertRuleInput"), 201).admin(), post(alerts::api::create_rule)),
        (doc("get", "/api/alerts/rules/{id}", "Show an alert rule", None, 200), get(alerts::api::get_rule)),
        (doc("put", "/api/alerts/rules/{id}", "Change an alert rule (the whole rule; its evaluation starts over)", Some("AlertRuleInput"), 200).admin(), put(alerts::api::update_rule)),
        (doc("delete", "/api/alerts/rules/{id}", "Delete an alert rule (its history stays)", None, 204).admin(), delete(alerts::api::delete_rule)),
        (doc("get", "/api/alerts/history", "The alert history, newest first: firings, resolutions and test sends with each delivery's outcome (?rule=&level=&task=&state=&before=&limit=)", None, 200), get(alerts::api::history)),
        (doc("get", "/api/audit", "The audit log, newest first (?actor=&action=&before=&limit=)", None, 200).admin(), get(accounts::audit_log)),
        (doc("get", "/metrics", "Prometheus metrics per task and unit", None, 200), get(metrics::metrics)),
    ]
}

/// The routes that need no token.
pub const PUBLIC: &[&str] = &["/healthz", "/api/login", "/", "/ui/{file}", "/favicon.ico"];

/// The authenticated part of the router: each route checks its role, and every change
/// (or refused attempt) goes to the audit log.
pub fn router(state: AppState) -> Router<AppState> {
    let mut r = Router::new();
    for (d, mr) in table() {
        let role = d.role;
        let action = audit::action(d.method, d.path);
        let checked = mr
            .route_layer(axum::middleware::from_fn(move |req, next| {
                require_role(role, req, next)
            }))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                move |st, req, next| audit::record(st, action.clone(), req, next),
            ));
        r = r.route(d.path, checked);
    }
    r
}

async fn openapi_handler() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Json(openapi()))
}

/// The `type`s a data source may have: every registered data-source connector's.
fn data_source_types() -> Vec<&'static str> {
    let reg = crate::connectors::registry();
    reg.uis()
        .into_iter()
        .filter(|u| u.data_source)
        .flat_map(|u| {
            reg.find(u.kind)
                .map(|c| c.types().to_vec())
                .unwrap_or_default()
        })
        .collect()
}

fn schemas() -> Value {
    json!({
        "DataSourceInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "type", "url"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": data_source_types()},
                "url": {"type": "string", "description": "mysql://user@host:3306/db, http(s)://host:9200 or kafka://host:9092[,host:9092] (see GET /api/connectors), without a password"},
                "username": {"type": "string", "description": "for connectors with a user name field (see GET /api/connectors; Kafka: the SASL user)"},
                "password": {"type": "string", "writeOnly": true, "description": "stored encrypted, never returned; absent keeps, \"\" removes"},
                "api_key": {"type": "string", "writeOnly": true, "description": "for connectors that take one; stored encrypted, never returned"},
                "options": {"type": "object", "description": "further connection keys of the connector (max_connections, tls, timeout_ms, Kafka's properties, ...); never a secret (refused: use password or api_key)"}
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
                            "description": "a data source id plus the source keys of a job file (tables / indices / topics, exclude, a Kafka source's group, ...; GET /api/connectors lists each kind's task_fields)"},
                "target": {"type": "object", "required": ["datasource"], "properties": {"datasource": {"type": "integer"}},
                            "description": "a data source id plus the target keys of a job file (table / index, mode, a Kafka target's topic_prefix, ...)"},
                "transforms": {"type": "array", "items": {"type": "object"}},
                "settings": {"type": "object", "description": "concurrency, batch_size, error_policy, rate_limit, ... as in job files"}
            }
        },
        "UserInput": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "username": {"type": "string", "maxLength": 64, "description": "letters, digits, '.', '-', '_', '@'; cannot change"},
                "password": {"type": "string", "writeOnly": true, "minLength": 10, "maxLength": 256, "description": "stored as an Argon2id hash"},
                "role": {"type": "string", "enum": ["viewer", "operator", "admin"]}
            }
        },
        "ScheduleInput": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "task_id": {"type": "integer", "description": "required to create; cannot change"},
                "cron": {"type": "string", "description": "five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly; required to create"},
                "timezone": {"type": "string", "default": "UTC", "description": "IANA time zone the expression is read in (Europe/Berlin, Asia/Shanghai)"},
                "action": {"type": "string", "enum": sched::action_names(), "description": "resync: start afresh; check: compare; check_repair: compare and rewrite what differs; drift_check: compare, export datatrace_drift_rows, raise drift_found alerts; required to create"},
                "enabled": {"type": "boolean", "default": true},
                "repair": {"type": "boolean", "default": false, "description": "drift_check only: repair when drift is found"},
                "delete_extra": {"type": "boolean", "default": false, "description": "when repairing: also delete target rows without a source row"}
            }
        },
        "TokenInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 64}}
        },
        "AlertChannelInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "kind"],
            "properties": {
                "name": {"type": "string", "maxLength": 191},
                "kind": {"type": "string", "enum": ["webhook", "slack", "dingtalk", "wecom"]},
                "url": {"type": "string", "writeOnly": true, "maxLength": 2048, "description": "http(s) URL to post to, with its token; stored encrypted, never returned; required at create, absent keeps"},
                "secret": {"type": "string", "writeOnly": true, "description": "DingTalk's signing secret; stored encrypted, never returned; absent keeps, \"\" removes"},
                "enabled": {"type": "boolean", "default": true}
            }
        },
        "AlertRuleInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "kind"],
            "properties": {
                "name": {"type": "string", "maxLength": 191},
                "kind": {"type": "string", "enum": alerts::rules::RuleKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()},
                "task_id": {"type": "integer", "description": "only this task (absent: every task)"},
                "threshold": {"type": "number", "minimum": 0, "maximum": 1e12, "description": "lag: seconds (default 60); dlq_growing: dead letters (0); drift_found: rows differing (0); binlog_retention: seconds left (3600); task_idle: seconds without a write (600)"},
                "for_secs": {"type": "integer", "minimum": 0, "maximum": 2592000, "default": 0, "description": "how long the condition must hold before it fires"},
                "level": {"type": "string", "enum": ["info", "warning", "critical"], "default": "warning"},
                "channels": {"type": "array", "items": {"type": "integer"}, "maxItems": 50},
                "enabled": {"type": "boolean", "default": true}
            }
        },
        "LoginInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}
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
                "401": {"description": "no valid session, API token or server token"},
            }
        });
        op["x-required-role"] = json!(d.role);
        op["responses"]["403"] =
            json!({"description": format!("the caller's role is below {}", d.role)});
        if d.path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
            op["responses"]["404"] = json!({"description": "no such item"});
        }
        if d.path.ends_with("/runs") {
            let mut params = op["parameters"].as_array().cloned().unwrap_or_default();
            params.extend([
                json!({"name": "kind", "in": "query", "schema": {"type": "string", "enum": sched::RUN_KINDS}}),
                json!({"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "older runs than this id (paging back)"}),
                json!({"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}}),
            ]);
            if !d.path.contains("{id}") {
                params.push(json!({"name": "task", "in": "query", "schema": {"type": "integer"}}));
            }
            op["parameters"] = Value::Array(params);
        }
        if d.path.contains("{letter}") {
            let mut params = op["parameters"].as_array().cloned().unwrap_or_default();
            params.push(json!({"name": "letter", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "the dead letter's id"}));
            op["parameters"] = Value::Array(params);
        }
        if d.path.contains("/dead-letters") && !d.path.contains("{letter}") {
            let mut params = op["parameters"].as_array().cloned().unwrap_or_default();
            params.extend([
                json!({"name": "unit", "in": "query", "schema": {"type": "string"}, "description": "one table or index"}),
                json!({"name": "q", "in": "query", "schema": {"type": "string"}, "description": "error or key containing this text (case-insensitive)"}),
                json!({"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "last rejected at or after"}),
                json!({"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "last rejected before"}),
            ]);
            if d.method == "get" {
                params.extend([
                    json!({"name": "state", "in": "query", "schema": {"type": "string", "enum": ["new", "replayed", "discarded"]}}),
                    json!({"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "older entries than this id (paging)"}),
                    json!({"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}}),
                ]);
            }
            op["parameters"] = Value::Array(params);
        }
        if d.path.contains("/dead-letters") && d.method == "post" {
            op["responses"]["409"] = json!({"description": "the task is running or being verified, or the entry is not new"});
            op["responses"]["502"] = json!({"description": "the target could not be reached or refused the whole batch"});
        }
        if d.path == "/api/alerts/history" {
            op["parameters"] = json!([
                {"name": "rule", "in": "query", "schema": {"type": "integer"}},
                {"name": "level", "in": "query", "schema": {"type": "string", "enum": ["info", "warning", "critical"]}},
                {"name": "task", "in": "query", "schema": {"type": "integer"}},
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["firing", "resolved", "test"]}},
                {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "older entries than this id (paging back)"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
            ]);
        }
        if d.path.ends_with("/logs") {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut params = params;
            params.extend([
                json!({"name": "category", "in": "query", "schema": {"type": "string", "enum": ["realtime", "error", "system"]}}),
                json!({"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "older lines than this id (paging back)"}),
                json!({"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "newer lines than this id, oldest first"}),
                json!({"name": "q", "in": "query", "schema": {"type": "string"}, "description": "only lines containing this text (case-insensitive)"}),
                json!({"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}}),
            ]);
            op["parameters"] = Value::Array(params);
        }
        if let Some(b) = d.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
            op["responses"]["413"] = json!({"description": "the body is larger than 1 MiB"});
        }
        let entry = paths.entry(d.path.to_owned()).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    paths.insert(
        "/api/login".into(),
        json!({"post": {"summary": "Sign in: sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and answers the CSRF token to send as X-CSRF-Token with every change", "security": [],
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoginInput"}}}},
                        "responses": {"200": {"description": "signed in"}, "401": {"description": "wrong user name or password"},
                                      "413": {"description": "the body is larger than 1 MiB"},
                                      "429": {"description": "too many failed sign-ins of this user from this address (5) or from this address (20): wait Retry-After seconds"}}}}),
    );
    paths.insert(
        "/healthz".into(),
        json!({"get": {"summary": "Liveness (no token needed)", "security": [], "responses": {"200": {"description": "ok"}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "DataTrace server", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "session": {"type": "apiKey", "in": "cookie", "name": "dt_session"}},
            "schemas": schemas(),
        }
    })
}

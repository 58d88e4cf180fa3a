//! The bad-input catalogue (SPEC §15): hostile and malformed requests,
//! each with its exact status and error code, and after each a check that
//! nothing in the database changed — every table of Tasker's schema and of
//! PGMQ's, row by row.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::support::Api;

/// One hostile request and what it must get.
struct Case {
    what: &'static str,
    method: Method,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    uri: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
    code: &'static str,
) -> Case {
    Case {
        what,
        method,
        uri: uri.into(),
        content_type,
        body: body.into(),
        status,
        code,
    }
}

const JSON: Option<&str> = Some("application/json");
const YAML: Option<&str> = Some("application/yaml");
const MISSING: &str = "01900000-0000-7000-8000-000000000000";

fn create(
    what: &'static str,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
    code: &'static str,
) -> Case {
    case(what, Method::POST, "/v1/tasks", JSON, body, status, code)
}

fn template(what: &'static str, body: impl Into<Vec<u8>>, code: &'static str) -> Case {
    case(
        what,
        Method::POST,
        "/v1/templates",
        YAML,
        body,
        StatusCode::BAD_REQUEST,
        code,
    )
}

/// A task request for the catalogue's own template, with `context`.
fn hostile_context(context: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"namespace": "catalogue", "name": "patterns", "context": context}))
        .unwrap()
}

fn named(namespace: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"namespace": namespace, "name": name, "context": {}})).unwrap()
}

/// A template with `steps` steps in a line.
fn many_steps(steps: usize) -> String {
    let mut yaml = "name: huge\nnamespace_name: catalogue\nversion: 1.0.0\nsteps:\n".to_owned();
    for i in 0..steps {
        yaml.push_str(&format!(
            "  - {{ name: s{i}, handler: {{ callable: tasker::noop }}"
        ));
        if i > 0 {
            yaml.push_str(&format!(", dependencies: [s{}]", i - 1));
        }
        yaml.push_str(" }\n");
    }
    yaml
}

/// The "billion laughs": nine levels of aliases, each ten of the last.
fn alias_bomb() -> String {
    let mut yaml = "a0: &a0 [\"lol\"]\n".to_owned();
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    yaml.push_str("name: bomb\nnamespace_name: catalogue\nversion: 1.0.0\nsteps: *a9\n");
    yaml
}

/// Every row of every table Tasker and PGMQ keep, as one text.
async fn fingerprint(api: &Api) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables \
         WHERE table_schema IN ('tasker', 'pgmq') AND table_type = 'BASE TABLE' \
           AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(api.db.pool())
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    let mut all = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {table} t"
        )))
        .fetch_one(api.db.pool())
        .await
        .unwrap();
        all.push_str(&format!("== {table}\n{}\n", rows.unwrap_or_default()));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_exact_status_and_code_and_changes_nothing() {
    let api = Api::new().await;

    // Fixtures, made before the first fingerprint: a template whose input
    // schema has a pattern that backtracking engines take exponential time
    // on; a task swept stale into the DLQ (its first step `error`, the rest
    // `pending`); and a DLQ entry already closed.
    let patterns = r#"
name: patterns
namespace_name: catalogue
version: 1.0.0
input_schema:
  type: object
  properties:
    s: { type: string, pattern: "^(a+)+$" }
    n: { type: integer, minimum: 0, maximum: 10 }
steps:
  - { name: only, handler: { callable: tasker::noop } }
"#;
    let registered = api
        .send(Method::POST, "/v1/templates", YAML, patterns.into())
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let mut created = Vec::new();
    for value in [2, 3] {
        let reply = api
            .post_json(
                "/v1/tasks",
                &json!({"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": value}}),
            )
            .await;
        created.push(reply.json()["task_uuid"].as_str().unwrap().to_owned());
    }
    let (task, repaired) = (created[0].clone(), created[1].clone());
    let swept = api
        .state
        .orchestrator
        .sweep_stale_tasks(Utc::now() + TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!(swept.failed.len(), 2);
    let step_in = |steps: &serde_json::Value, state: &str| {
        steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["state"] == state)
            .unwrap_or_else(|| panic!("no {state} step in {steps}"))["workflow_step_uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let steps = api
        .get(&format!("/v1/tasks/{task}/workflow_steps"))
        .await
        .json();
    let (failed_step, pending_step) = (step_in(&steps, "error"), step_in(&steps, "pending"));
    // The second task's failed step is completed by hand: a finished step.
    let other = api
        .get(&format!("/v1/tasks/{repaired}/workflow_steps"))
        .await
        .json();
    let finished_step = step_in(&other, "error");
    let completed = api
        .patch_json(
            &format!("/v1/tasks/{repaired}/workflow_steps/{finished_step}"),
            &json!({"action": "complete_manually", "actor": "ops", "reason": "fixture", "result": {"value": 9}}),
        )
        .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.text);
    let entry = api.get(&format!("/v1/dlq/task/{task}")).await.json()[0]["dlq_entry_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let closed = api
        .patch_json(
            &format!("/v1/dlq/entry/{entry}"),
            &json!({"status": "permanently_failed", "resolved_by": "ops", "resolution_notes": "gone"}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);

    let step_uri = |step: &str| format!("/v1/tasks/{task}/workflow_steps/{step}");
    let deep_json = format!(
        "{{\"namespace\": \"catalogue\", \"name\": \"patterns\", \"context\": {{\"x\": {}1{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_yaml = format!(
        "name: deep\nnamespace_name: catalogue\nversion: 1.0.0\nsteps: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let huge_json = format!(
        "{{\"namespace\": \"catalogue\", \"name\": \"patterns\", \"context\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let bad = StatusCode::BAD_REQUEST;
    let not_found = StatusCode::NOT_FOUND;

    let cases = vec![
        // Malformed JSON and the wrong content.
        create("malformed JSON", "{\"namespace\": ", bad, "invalid_json"),
        create(
            "trailing garbage after JSON",
            r#"{"namespace": "a", "name": "b"} x"#,
            bad,
            "invalid_json",
        ),
        create("an empty body", "", bad, "invalid_json"),
        create(
            "bytes that are not UTF-8",
            b"{\"namespace\": \"\xff\xfe\"}".to_vec(),
            bad,
            "invalid_json",
        ),
        create(
            "a number beyond f64",
            r#"{"namespace": "a", "name": "b", "priority": 1e400}"#,
            bad,
            "invalid_json",
        ),
        case(
            "text/plain",
            Method::POST,
            "/v1/tasks",
            Some("text/plain"),
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        case(
            "no content type",
            Method::POST,
            "/v1/tasks",
            None,
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        case(
            "form encoding",
            Method::POST,
            "/v1/tasks",
            Some("application/x-www-form-urlencoded"),
            "a=b",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        // Well-formed JSON of the wrong shape.
        create(
            "an unknown field",
            r#"{"namespace": "catalogue", "name": "patterns", "contxt": {}}"#,
            bad,
            "validation_failed",
        ),
        create(
            "a missing field",
            r#"{"namespace": "catalogue"}"#,
            bad,
            "validation_failed",
        ),
        create(
            "priority of the wrong type",
            r#"{"namespace": "catalogue", "name": "patterns", "priority": "high"}"#,
            bad,
            "validation_failed",
        ),
        create(
            "priority out of range",
            r#"{"namespace": "catalogue", "name": "patterns", "priority": 99999999999}"#,
            bad,
            "validation_failed",
        ),
        create(
            "a fractional priority",
            r#"{"namespace": "catalogue", "name": "patterns", "priority": 1.5}"#,
            bad,
            "validation_failed",
        ),
        create(
            "a context that is an array",
            r#"{"namespace": "catalogue", "name": "patterns", "context": [1]}"#,
            bad,
            "bad_request",
        ),
        create("JSON nested 100,000 deep", deep_json, bad, "too_deep"),
        create(
            "a 2 MiB body",
            huge_json,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        create(
            "an empty idempotency key",
            r#"{"namespace": "catalogue", "name": "patterns", "idempotency_key": ""}"#,
            bad,
            "bad_request",
        ),
        // Names: unknown, hostile, absurd.
        create(
            "an unknown template",
            named("nope", "nothing"),
            not_found,
            "template_not_found",
        ),
        create(
            "an unknown version",
            r#"{"namespace": "catalogue", "name": "patterns", "version": "9.9.9"}"#,
            not_found,
            "template_not_found",
        ),
        create(
            "a version that is not semver",
            r#"{"namespace": "catalogue", "name": "patterns", "version": "latest'--"}"#,
            not_found,
            "template_not_found",
        ),
        create(
            "SQL in a namespace",
            named("x'; DROP TABLE tasker.tasks; --", "y"),
            not_found,
            "template_not_found",
        ),
        create(
            "a NUL in a name",
            named("catalogue", "pat\u{0}terns"),
            bad,
            "bad_request",
        ),
        create(
            "a NUL inside the context",
            hostile_context(json!({"note": "a\u{0}b"})),
            bad,
            "bad_request",
        ),
        case(
            "a NUL in a list filter",
            Method::GET,
            "/v1/tasks?namespace=a%00b",
            None,
            "",
            bad,
            "bad_request",
        ),
        case(
            "a NUL in a template path",
            Method::GET,
            "/v1/templates/a%00/b/1.0.0",
            None,
            "",
            bad,
            "bad_request",
        ),
        create(
            "control characters in a name",
            named("cata\u{1b}[2Jlogue", "\u{7}"),
            not_found,
            "template_not_found",
        ),
        create(
            "unicode names",
            named("名前空間", "ταχύτητα🚀"),
            not_found,
            "template_not_found",
        ),
        create(
            "path traversal in a name",
            named("../../etc", "passwd"),
            not_found,
            "template_not_found",
        ),
        create(
            "a 100 kB name",
            named(&"n".repeat(100_000), "x"),
            not_found,
            "template_not_found",
        ),
        // Contexts that break the schema, including a slow pattern.
        create(
            "a context out of the schema's range",
            hostile_context(json!({"n": 11})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema_mismatch",
        ),
        create(
            "a context of the wrong type",
            hostile_context(json!({"n": "eleven"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema_mismatch",
        ),
        create(
            "a catastrophic-backtracking input",
            hostile_context(json!({"s": format!("{}!", "a".repeat(50_000))})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema_mismatch",
        ),
        // Templates.
        template("malformed YAML", "steps: [", "invalid_template"),
        template("a YAML alias bomb", alias_bomb(), "invalid_template"),
        template("YAML nested 100,000 deep", deep_yaml, "invalid_template"),
        template("5,000 steps", many_steps(5_000), "invalid_template"),
        template(
            "a dependency cycle",
            "name: loop\nnamespace_name: catalogue\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: tasker::noop }, dependencies: [b] }\n  - { name: b, handler: { callable: tasker::noop }, dependencies: [a] }\n",
            "invalid_template",
        ),
        template(
            "an unknown dependency",
            "name: dangling\nnamespace_name: catalogue\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: tasker::noop }, dependencies: [ghost] }\n",
            "invalid_template",
        ),
        template(
            "path traversal in a template name",
            "name: ../../etc/passwd\nnamespace_name: catalogue\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: tasker::noop } }\n",
            "invalid_template",
        ),
        template(
            "control characters in a step name",
            "name: ctl\nnamespace_name: catalogue\nversion: 1.0.0\nsteps:\n  - { name: \"a\\u0000b\", handler: { callable: tasker::noop } }\n",
            "invalid_template",
        ),
        template(
            "a version that is not semver",
            "name: v\nnamespace_name: catalogue\nversion: one\nsteps:\n  - { name: a, handler: { callable: tasker::noop } }\n",
            "invalid_template",
        ),
        template(
            "an unknown template field",
            "name: u\nnamespace_name: catalogue\nversion: 1.0.0\nstepz: []\n",
            "invalid_template",
        ),
        template(
            "an input_schema that is no schema",
            "name: s\nnamespace_name: catalogue\nversion: 1.0.0\ninput_schema: { type: 12 }\nsteps:\n  - { name: a, handler: { callable: tasker::noop } }\n",
            "invalid_template",
        ),
        template(
            "a pattern that does not compile",
            "name: p\nnamespace_name: catalogue\nversion: 1.0.0\ninput_schema: { type: object, properties: { s: { type: string, pattern: \"(unclosed\" } } }\nsteps:\n  - { name: a, handler: { callable: tasker::noop } }\n",
            "invalid_template",
        ),
        case(
            "a template as text/plain",
            Method::POST,
            "/v1/templates",
            Some("text/plain"),
            "name: x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        // Identifiers.
        case(
            "a task id that is no UUID",
            Method::GET,
            "/v1/tasks/not-a-uuid",
            None,
            "",
            bad,
            "invalid_uuid",
        ),
        case(
            "a task id with SQL after it",
            Method::GET,
            format!("/v1/tasks/{MISSING}'%20OR%20'1'='1"),
            None,
            "",
            bad,
            "invalid_uuid",
        ),
        case(
            "cancelling a task that does not exist",
            Method::DELETE,
            format!("/v1/tasks/{MISSING}"),
            None,
            "",
            not_found,
            "task_not_found",
        ),
        case(
            "a step id that is no UUID",
            Method::GET,
            format!("/v1/tasks/{task}/workflow_steps/xyz"),
            None,
            "",
            bad,
            "invalid_uuid",
        ),
        case(
            "a DLQ task id that is no UUID",
            Method::GET,
            "/v1/dlq/task/..%2F..%2Fetc",
            None,
            "",
            bad,
            "invalid_uuid",
        ),
        case(
            "updating a DLQ entry that does not exist",
            Method::PATCH,
            format!("/v1/dlq/entry/{MISSING}"),
            JSON,
            r#"{"status": "investigating"}"#,
            not_found,
            "dlq_entry_not_found",
        ),
        // Queries.
        case(
            "a negative page size",
            Method::GET,
            "/v1/tasks?limit=-1",
            None,
            "",
            bad,
            "invalid_query",
        ),
        case(
            "an unknown state filter",
            Method::GET,
            "/v1/tasks?state=finished",
            None,
            "",
            bad,
            "invalid_query",
        ),
        case(
            "an analytics window of words",
            Method::GET,
            "/v1/analytics/performance?hours=abc",
            None,
            "",
            bad,
            "invalid_query",
        ),
        // Repairs of steps in the wrong state.
        case(
            "resolving a finished step",
            Method::PATCH,
            format!("/v1/tasks/{repaired}/workflow_steps/{finished_step}"),
            JSON,
            r#"{"action": "resolve_manually", "actor": "ops", "reason": "x"}"#,
            StatusCode::CONFLICT,
            "invalid_step_action",
        ),
        case(
            "resetting a finished step",
            Method::PATCH,
            format!("/v1/tasks/{repaired}/workflow_steps/{finished_step}"),
            JSON,
            r#"{"action": "reset_for_retry", "actor": "ops", "reason": "x"}"#,
            StatusCode::CONFLICT,
            "invalid_step_action",
        ),
        case(
            "resetting a pending step",
            Method::PATCH,
            step_uri(&pending_step),
            JSON,
            r#"{"action": "reset_for_retry", "actor": "ops", "reason": "x"}"#,
            StatusCode::CONFLICT,
            "invalid_step_action",
        ),
        case(
            "an unknown repair action",
            Method::PATCH,
            step_uri(&failed_step),
            JSON,
            r#"{"action": "explode", "actor": "ops", "reason": "x"}"#,
            bad,
            "validation_failed",
        ),
        case(
            "completing by hand without a result",
            Method::PATCH,
            step_uri(&failed_step),
            JSON,
            r#"{"action": "complete_manually", "actor": "ops", "reason": "x"}"#,
            bad,
            "bad_request",
        ),
        case(
            "repairing a step of another task",
            Method::PATCH,
            format!("/v1/tasks/{MISSING}/workflow_steps/{failed_step}"),
            JSON,
            r#"{"action": "resolve_manually", "actor": "ops", "reason": "x"}"#,
            not_found,
            "task_not_found",
        ),
        // DLQ updates of closed entries.
        case(
            "reopening a closed DLQ entry",
            Method::PATCH,
            format!("/v1/dlq/entry/{entry}"),
            JSON,
            r#"{"status": "investigating"}"#,
            StatusCode::CONFLICT,
            "dlq_status_conflict",
        ),
        case(
            "closing a closed DLQ entry again",
            Method::PATCH,
            format!("/v1/dlq/entry/{entry}"),
            JSON,
            r#"{"status": "resolved", "resolved_by": "ops"}"#,
            StatusCode::CONFLICT,
            "dlq_status_conflict",
        ),
        case(
            "an unknown DLQ status",
            Method::PATCH,
            format!("/v1/dlq/entry/{entry}"),
            JSON,
            r#"{"status": "vanished"}"#,
            bad,
            "validation_failed",
        ),
        // Routes and methods.
        case(
            "an unknown API version",
            Method::GET,
            "/v2/tasks",
            None,
            "",
            not_found,
            "route_not_found",
        ),
        case(
            "a method the route lacks",
            Method::PUT,
            "/v1/tasks",
            JSON,
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());

    let before = fingerprint(&api).await;
    for case in cases {
        let started = Instant::now();
        let reply = api
            .send(case.method.clone(), &case.uri, case.content_type, case.body)
            .await;
        let took = started.elapsed();
        assert_eq!(
            reply.status,
            case.status,
            "{}: {}",
            case.what,
            reply.text.chars().take(500).collect::<String>()
        );
        assert_eq!(reply.code(), case.code, "{}", case.what);
        // A bound, not a benchmark: a hostile input must not be a way to
        // hold the server (the request timeout would answer 503 first).
        assert!(
            took < Duration::from_secs(10),
            "{} took {took:?}",
            case.what
        );
        assert_eq!(
            fingerprint(&api).await,
            before,
            "{} changed the database",
            case.what
        );
    }
}

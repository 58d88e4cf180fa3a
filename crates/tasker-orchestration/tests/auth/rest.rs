//! The matrix over REST.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tasker_orchestration::operations::{OPERATIONS, Operation};

use crate::support::{AuthServer, Credential, Expect};

/// A request for `op` that succeeds (2xx) when allowed, unless `mutates`
/// says the operation may legitimately refuse on the fixture (a 404 for an
/// unknown DLQ entry, a 409 for a step that is not in error) — a verdict
/// only reached past the auth check.
struct Call {
    method: Method,
    url: String,
    body: Option<(&'static str, Vec<u8>)>,
    must_succeed: bool,
}

async fn call_for(server: &AuthServer, op: &Operation) -> Call {
    let (method, template) = op.rest.unwrap();
    let f = &server.fixtures;
    // Cancelling consumes a task: each call gets its own.
    let task = if op.name == "cancel_task" {
        server.new_task().await
    } else {
        f.task
    };
    let path = template
        .replace("{task_uuid}", &task.to_string())
        .replace("{step_uuid}", &f.step.to_string())
        .replace("{entry_uuid}", &uuid::Uuid::now_v7().to_string())
        .replace("{namespace}", "linear_workflow")
        .replace("{name}", "mathematical_sequence")
        .replace("{version}", "1.0.0");
    let json_body = |v: Value| Some(("application/json", serde_json::to_vec(&v).unwrap()));
    let (body, must_succeed) = match op.name {
        "create_task" => (
            json_body(
                json!({"namespace": "linear_workflow", "name": "mathematical_sequence",
                "context": {"value": 2}, "idempotency_key": uuid::Uuid::now_v7().to_string()}),
            ),
            true,
        ),
        "register_template" | "validate_template" => (
            Some(("application/yaml", f.template_yaml.clone().into_bytes())),
            true,
        ),
        "act_on_step" => (
            json_body(json!({"action": "resolve_manually", "reason": "auth matrix"})),
            false,
        ),
        "update_dlq_entry" => (json_body(json!({"status": "investigating"})), false),
        "resolve_dlq" => (
            json_body(json!({"update": {"status": "investigating"}})),
            true,
        ),
        _ => (None, true),
    };
    Call {
        method: method.parse().unwrap(),
        url: format!("http://{}{path}", server.rest),
        body,
        must_succeed,
    }
}

async fn send(call: Call, credential: &Credential) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().request(call.method, &call.url);
    if let Some((name, value)) = credential.header() {
        request = request.header(name, value);
    }
    if let Some((kind, bytes)) = call.body {
        request = request.header("content-type", kind).body(bytes);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn code(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_answers_each_credential_as_it_must() {
    let server = AuthServer::start().await;
    let mut checked = 0;
    for op in OPERATIONS.iter().filter(|o| o.rest.is_some()) {
        let Some(permission) = op.permission else {
            continue;
        };
        for (label, credential, expect) in server.keys.cases(permission) {
            let call = call_for(&server, op).await;
            let must_succeed = call.must_succeed;
            let (status, text) = send(call, &credential).await;
            let context = format!("{} with {label}: {status} {text}", op.name);
            match expect {
                Expect::Unauthenticated => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}");
                    assert_eq!(code(&text), "unauthorized", "{context}");
                }
                Expect::Forbidden => {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{context}");
                    assert_eq!(code(&text), "forbidden", "{context}");
                }
                Expect::Allowed if must_succeed => {
                    assert!(status.is_success(), "{context}");
                }
                Expect::Allowed => {
                    assert!(
                        ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status)
                            && !status.is_server_error(),
                        "{context}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_stay_public_with_auth_on() {
    let server = AuthServer::start().await;
    for op in OPERATIONS.iter().filter(|o| o.permission.is_none()) {
        let Some((method, path)) = op.rest else {
            continue;
        };
        let response = reqwest::Client::new()
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", server.rest),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        // Readiness may honestly say 503 while orchestration starts.
        assert!(
            status.is_success() || (op.name.starts_with("health") && status == 503),
            "{} answered {status} without credentials",
            op.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_resolver_is_the_caller_not_the_name_in_the_body() {
    let server = AuthServer::start().await;
    let f = &server.fixtures;
    // An open DLQ entry for the fixture task; closing it records a resolver.
    let entry: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, reason, status, original_state, snapshot)
         VALUES ($1, $2, 'manual_dlq', 'pending', 'steps_in_process', '{}') RETURNING dlq_entry_uuid",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(uuid::Uuid::from(f.task))
    .fetch_one(server.db.pool())
    .await
    .unwrap();
    let token = crate::support::Keys::hs256(&tasker_types::auth::TokenClaims {
        sub: "alice@ops".into(),
        iss: crate::support::ISSUER.into(),
        aud: crate::support::AUDIENCE.into(),
        exp: chrono::Utc::now().timestamp() + 60,
        nbf: chrono::Utc::now().timestamp() - 1,
        iat: chrono::Utc::now().timestamp(),
        permissions: vec!["dlq:update".into()],
    });
    let response = reqwest::Client::new()
        .patch(format!("http://{}/v1/dlq/entry/{entry}", server.rest))
        .bearer_auth(token)
        .json(&json!({"status": "resolved", "resolved_by": "mallory", "resolution_notes": "fixed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resolved_by"], "alice@ops", "{body}");
    assert!(
        body["resolution_notes"]
            .as_str()
            .unwrap()
            .contains("mallory"),
        "the claimed name is kept as a note: {body}"
    );
}

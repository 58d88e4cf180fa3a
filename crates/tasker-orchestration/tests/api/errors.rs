//! Every rejection answers with the documented error body and an honest
//! status, and leaves nothing behind.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::Api;

const ORDER: &str = r#"{
  "customer": {"id": 1, "email": "a@b.c"},
  "items": [{"sku": "X", "quantity": 1, "unit_price_cents": 100}],
  "payment": {"method": "card", "token": "tok"},
  "shipping": {"address": "here", "method": "standard"}
}"#;

#[tokio::test]
async fn rejected_task_creations_say_why_and_persist_nothing() {
    let api = Api::new().await;
    let deep = format!(
        "{{\"namespace\": \"linear_workflow\", \"name\": \"mathematical_sequence\", \"context\": {{\"value\": 1, \"x\": {}1{}}}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    let huge = format!(
        "{{\"namespace\": \"linear_workflow\", \"name\": \"mathematical_sequence\", \"context\": {{\"value\": 1, \"pad\": \"{}\"}}}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        ("bad JSON", Some("application/json"), "{\"namespace\": ".into(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("unknown field", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "contxt": {}}"#.into(),
            StatusCode::BAD_REQUEST, "validation_failed"),
        ("wrong type", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "priority": "high"}"#.into(),
            StatusCode::BAD_REQUEST, "validation_failed"),
        ("not JSON content", Some("text/plain"), "hello".into(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("unknown template", Some("application/json"),
            r#"{"namespace": "nope", "name": "nothing", "context": {}}"#.into(), StatusCode::NOT_FOUND, "template_not_found"),
        ("unknown version", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "version": "9.9.9", "context": {"value": 1}}"#.into(),
            StatusCode::NOT_FOUND, "template_not_found"),
        ("context fails input_schema", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": "six"}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY, "schema_mismatch"),
        ("context is not an object", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": [1]}"#.into(),
            StatusCode::BAD_REQUEST, "bad_request"),
        ("too deep", Some("application/json"), deep, StatusCode::BAD_REQUEST, "too_deep"),
        ("too large", Some("application/json"), huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("an empty idempotency key", Some("application/json"),
            r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": 1}, "idempotency_key": ""}"#.into(),
            StatusCode::BAD_REQUEST, "bad_request"),
    ];
    for (what, content_type, body, status, code) in cases {
        let reply = api
            .send(Method::POST, "/v1/tasks", content_type, body.into_bytes())
            .await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert_eq!(reply.code(), code, "{what}");
        assert_eq!(api.count("tasks").await, 0, "{what} persisted a task");
        assert_eq!(
            api.count("workflow_steps").await,
            0,
            "{what} persisted steps"
        );
    }
}

#[tokio::test]
async fn schema_mismatches_name_the_failing_field() {
    let api = Api::new().await;
    let body = json!({"namespace": "ecommerce", "name": "order_fulfillment",
        "context": {"customer": {"id": 0, "email": "a@b.c"}, "items": [], "payment": {}, "shipping": {}}});
    let reply = api.post_json("/v1/tasks", &body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let violations = reply.json()["error"]["details"]["violations"].clone();
    let paths: Vec<&str> = violations
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/customer/id"), "{paths:?}");
    assert!(paths.contains(&"/items"), "{paths:?}");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/customer/id")
    );
}

#[tokio::test]
async fn a_duplicate_task_is_409_with_the_existing_uuid() {
    let api = Api::new().await;
    let body = json!({"namespace": "ecommerce", "name": "order_fulfillment",
        "context": serde_json::from_str::<serde_json::Value>(ORDER).unwrap()});
    let first = api.post_json("/v1/tasks", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let existing = first.json()["task_uuid"].clone();
    let second = api.post_json("/v1/tasks", &body).await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "duplicate_task".to_owned())
    );
    assert_eq!(second.json()["error"]["details"]["task_uuid"], existing);
    assert_eq!(api.count("tasks").await, 1);
}

#[tokio::test]
async fn bad_ids_unknown_resources_routes_and_methods() {
    let api = Api::new().await;
    let missing = "01900000-0000-7000-8000-000000000000";
    let cases = [
        (
            Method::GET,
            "/v1/tasks/not-a-uuid".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_uuid",
        ),
        (
            Method::GET,
            format!("/v1/tasks/{missing}"),
            StatusCode::NOT_FOUND,
            "task_not_found",
        ),
        (
            Method::DELETE,
            format!("/v1/tasks/{missing}"),
            StatusCode::NOT_FOUND,
            "task_not_found",
        ),
        (
            Method::GET,
            format!("/v1/tasks/{missing}/workflow_steps"),
            StatusCode::NOT_FOUND,
            "task_not_found",
        ),
        (
            Method::GET,
            format!("/v1/tasks/{missing}/workflow_steps/xyz"),
            StatusCode::BAD_REQUEST,
            "invalid_uuid",
        ),
        (
            Method::GET,
            "/v1/templates/a/b/1.0.0".to_owned(),
            StatusCode::NOT_FOUND,
            "template_not_found",
        ),
        (
            Method::GET,
            "/v1/tasks?limit=many".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/tasks?state=finished".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/tasks?include=everything".to_owned(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v2/tasks".to_owned(),
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            Method::PUT,
            "/v1/tasks".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, status, code) in cases {
        let reply = api.send(method.clone(), &uri, None, Vec::new()).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.text);
        assert_eq!(reply.code(), code, "{method} {uri}");
    }
    // A real task, but a step that is not in it.
    let task = api
        .post_json("/v1/tasks", &json!({"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": 1}}))
        .await
        .json();
    let uuid = task["task_uuid"].as_str().unwrap();
    let reply = api
        .get(&format!("/v1/tasks/{uuid}/workflow_steps/{missing}"))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::NOT_FOUND, "step_not_found".to_owned())
    );
}

#[tokio::test]
async fn rejected_templates_are_explained_and_never_half_registered() {
    let api = Api::new().await;
    let cyclic = "name: loop\nnamespace_name: api_tests\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: x }, dependencies: [b] }\n  - { name: b, handler: { callable: x }, dependencies: [a] }\n";
    let reply = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("application/yaml"),
            cyclic.into(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_template".to_owned())
    );
    assert_eq!(
        reply.json()["error"]["details"]["errors"][0]["message"],
        "dependency cycle: a -> b -> a"
    );
    let reply = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("application/yaml"),
            "steps: [".into(),
        )
        .await;
    assert_eq!(reply.code(), "invalid_template");
    let reply = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("text/plain"),
            "x".into(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let original = "name: stable\nnamespace_name: api_tests\nversion: 1.0.0\nsteps:\n  - { name: a, handler: { callable: tasker::noop } }\n";
    assert_eq!(
        api.send(
            Method::POST,
            "/v1/templates",
            Some("application/yaml"),
            original.into()
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let changed = original.replace("tasker::noop", "tasker::echo");
    let reply = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("application/yaml"),
            changed.into(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "template_conflict".to_owned())
    );
    let stored = api.get("/v1/templates/api_tests/stable/1.0.0").await.json();
    assert_eq!(
        stored["template"]["steps"][0]["handler"]["callable"],
        "tasker::noop"
    );
    let namespaces: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker.named_tasks WHERE namespace = 'api_tests'")
            .fetch_one(api.db.pool())
            .await
            .unwrap();
    assert_eq!(namespaces, 1);
}

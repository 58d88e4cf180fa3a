//! The OpenAPI document lists every route of the router, and nothing else.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};

use crate::support::Api;

/// Every route the API serves, as SPEC §8.1 lists them (the analytics
/// routes arrive with their own feature).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/health/detailed"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/tasks"),
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks/{task_uuid}"),
    ("DELETE", "/v1/tasks/{task_uuid}"),
    ("GET", "/v1/tasks/{task_uuid}/workflow_steps"),
    ("GET", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"),
    ("PATCH", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"),
    (
        "GET",
        "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit",
    ),
    ("GET", "/v1/dlq"),
    ("GET", "/v1/dlq/stats"),
    ("GET", "/v1/dlq/task/{task_uuid}"),
    ("PATCH", "/v1/dlq/entry/{entry_uuid}"),
    ("POST", "/v1/dlq/resolve"),
    ("GET", "/v1/analytics/performance"),
    ("GET", "/v1/analytics/bottlenecks"),
    ("GET", "/v1/templates"),
    ("POST", "/v1/templates"),
    ("POST", "/v1/templates/validate"),
    ("GET", "/v1/templates/{namespace}/{name}/{version}"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_each_exists() {
    let api = Api::new().await;
    let doc = api.get("/api-docs/openapi.json").await.json();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);

    // And the router really serves each one (placeholders filled in).
    let missing = "01900000-0000-7000-8000-000000000000";
    for (method, path) in ROUTES {
        let uri = path
            .replace("{task_uuid}", missing)
            .replace("{step_uuid}", missing)
            .replace("{entry_uuid}", missing)
            .replace("{namespace}", "n")
            .replace("{name}", "t")
            .replace("{version}", "1.0.0");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = api
            .send(
                method.clone(),
                &uri,
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        if reply.status == StatusCode::NOT_FOUND {
            assert_ne!(
                reply.code(),
                "route_not_found",
                "{method} {uri} is documented but not routed"
            );
        }
    }
    // Every documented operation has a description and documented errors.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation.get("responses").is_some(),
                "{method} {path} has no responses"
            );
        }
    }
}

//! `/v1/dlq`: list, count, per task, resolve one, resolve many.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::support::Api;

/// Three stale tasks: linear tasks with no worker, swept two hours later.
async fn stale_tasks(api: &Api) -> Vec<String> {
    let mut tasks = Vec::new();
    for value in 1..=3 {
        let created = api
            .post_json(
                "/v1/tasks",
                &json!({"namespace": "linear_workflow", "name": "mathematical_sequence",
                        "context": {"value": value}}),
            )
            .await;
        tasks.push(created.json()["task_uuid"].as_str().unwrap().to_owned());
    }
    let report = api
        .state
        .orchestrator
        .sweep_stale_tasks(Utc::now() + TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 3);
    tasks
}

#[tokio::test]
async fn entries_are_listed_counted_and_resolved() {
    let api = Api::new().await;
    let empty = api.get("/v1/dlq/stats").await.json();
    assert_eq!(empty["total"], 0);
    let tasks = stale_tasks(&api).await;

    let list = api.get("/v1/dlq?reason=worker_unavailable&limit=2").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let page = list.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = api.get(&format!("/v1/dlq?before={cursor}")).await.json();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    let stats = api.get("/v1/dlq/stats").await.json();
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["open"], 3);
    assert_eq!(stats["by_reason"]["worker_unavailable"], 3);
    assert_eq!(stats["by_status"]["pending"], 3);

    let of_task = api.get(&format!("/v1/dlq/task/{}", tasks[0])).await.json();
    let entry = of_task[0].clone();
    assert_eq!(entry["task_uuid"], tasks[0].as_str());
    assert_eq!(entry["namespace"], "linear_workflow");
    assert_eq!(entry["original_state"], "steps_in_process");
    assert_eq!(entry["snapshot"]["task"]["context"], json!({"value": 1}));
    let uri = format!(
        "/v1/dlq/entry/{}",
        entry["dlq_entry_uuid"].as_str().unwrap()
    );

    let looking = api
        .patch_json(&uri, &json!({"status": "investigating"}))
        .await;
    assert_eq!(looking.status, StatusCode::OK, "{}", looking.text);
    assert_eq!(looking.json()["status"], "investigating");
    let anonymous = api.patch_json(&uri, &json!({"status": "resolved"})).await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    assert!(anonymous.text.contains("resolved_by"), "{}", anonymous.text);
    let closed = api
        .patch_json(
            &uri,
            &json!({"status": "resolved", "resolved_by": "ops", "resolution_notes": "queue fixed"}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    let closed = closed.json();
    assert_eq!(closed["resolved_by"], "ops");
    assert!(closed["resolved_at"].is_string());
    let again = api
        .patch_json(&uri, &json!({"status": "cancelled", "resolved_by": "ops"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "dlq_status_conflict");

    // The other two, at once, by filter.
    let bulk = api
        .post_json(
            "/v1/dlq/resolve",
            &json!({"filter": {"reason": "worker_unavailable", "namespace": "linear_workflow"},
                    "update": {"status": "permanently_failed", "resolved_by": "ops"}}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.text);
    assert_eq!(bulk.json(), json!({"updated": 2}));
    let stats = api.get("/v1/dlq/stats").await.json();
    assert_eq!(stats["open"], 0);
    assert_eq!(stats["by_status"]["permanently_failed"], 2);
    assert_eq!(stats["by_status"]["resolved"], 1);
}

#[tokio::test]
async fn bad_dlq_requests_are_4xx() {
    let api = Api::new().await;
    let cases = [
        (
            "/v1/dlq?status=lost",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/dlq/task/not-a-uuid",
            StatusCode::BAD_REQUEST,
            "invalid_uuid",
        ),
        (
            "/v1/dlq/task/01900000-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
            "task_not_found",
        ),
    ];
    for (uri, status, code) in cases {
        let reply = api.get(uri).await;
        assert_eq!(reply.status, status, "{uri}: {}", reply.text);
        assert_eq!(reply.code(), code, "{uri}");
    }
    let reply = api
        .patch_json(
            "/v1/dlq/entry/01900000-0000-7000-8000-000000000000",
            &json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "dlq_entry_not_found");
    let reply = api
        .post_json(
            "/v1/dlq/resolve",
            &json!({"filter": {"status": "resolved"}, "update": {"status": "cancelled", "resolved_by": "ops"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
}

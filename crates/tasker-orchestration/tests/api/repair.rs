//! `PATCH /v1/tasks/{uuid}/workflow_steps/{step_uuid}`: operator repairs.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::Api;

const LINEAR: &str =
    r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": 3}}"#;

async fn linear_task(api: &Api) -> (String, Value) {
    let created = api
        .post_json("/v1/tasks", &serde_json::from_str(LINEAR).unwrap())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let task = created.json();
    (task["task_uuid"].as_str().unwrap().to_owned(), task)
}

fn step_uuid(task: &Value, name: &str) -> String {
    task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["workflow_step_uuid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn resolving_a_step_by_hand_moves_the_task_on() {
    let api = Api::new().await;
    let (task, view) = linear_task(&api).await;
    let first = step_uuid(&view, "linear_step_1");
    let reply = api
        .patch_json(
            &format!("/v1/tasks/{task}/workflow_steps/{first}"),
            &json!({"action": "resolve_manually", "actor": "ops", "reason": "done by hand"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["state"], "resolved_manually");
    // The next step was enqueued in the same transaction.
    let after = api.get(&format!("/v1/tasks/{task}")).await.json();
    let second = after["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "linear_step_2")
        .unwrap()
        .clone();
    assert_eq!(second["state"], "enqueued");
    // The attempt history says who and why.
    let audit = api
        .get(&format!("/v1/tasks/{task}/workflow_steps/{first}/audit"))
        .await
        .json();
    let manual = audit["attempts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(manual["outcome"], "manual");
    assert_eq!(manual["actor"], "ops");
    assert_eq!(manual["reason"], "resolve_manually: done by hand");
}

#[tokio::test]
async fn bad_repairs_are_refused_with_the_reason() {
    let api = Api::new().await;
    let (task, view) = linear_task(&api).await;
    let second = step_uuid(&view, "linear_step_2");
    let uri = |step: &str| format!("/v1/tasks/{task}/workflow_steps/{step}");
    let cases = [
        (
            json!({"action": "complete_manually", "actor": "ops", "reason": "r"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "needs `result`",
        ),
        (
            json!({"action": "resolve_manually", "actor": "", "reason": "r"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`actor` is required",
        ),
        (
            json!({"action": "rewind", "actor": "ops", "reason": "r"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "action",
        ),
        (
            json!({"action": "resolve_manually", "actor": "ops", "reason": "r", "force": true}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "force",
        ),
        (
            json!({"action": "reset_for_retry", "actor": "ops", "reason": "r"}),
            StatusCode::CONFLICT,
            "invalid_step_action",
            "only a failed step",
        ),
    ];
    for (body, status, code, says) in cases {
        let reply = api.patch_json(&uri(&second), &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.code(), code, "{body}");
        assert!(reply.text.contains(says), "{body}: {}", reply.text);
    }
    let missing = "01900000-0000-7000-8000-000000000000";
    let reply = api
        .patch_json(
            &uri(missing),
            &json!({"action": "resolve_manually", "actor": "ops", "reason": "r"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "step_not_found");
    let reply = api
        .patch_json(
            &uri("nope"),
            &json!({"action": "resolve_manually", "actor": "ops", "reason": "r"}),
        )
        .await;
    assert_eq!(reply.code(), "invalid_uuid");
    // Nothing was changed by any of them.
    let after = api.get(&format!("/v1/tasks/{task}")).await.json();
    let states: Vec<&str> = after["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "pending").count(), 3);
}

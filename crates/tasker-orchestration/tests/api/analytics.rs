//! `/v1/analytics`: the documented report shapes, and 400s that name the
//! parameter out of bounds.

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta};
use serde_json::json;

use crate::support::Api;

/// One task of `linear_workflow`, finished a second ago after 250 ms (its
/// timestamps rewritten: no worker runs here).
async fn finished_task(api: &Api) {
    let created = api
        .post_json(
            "/v1/tasks",
            &json!({"namespace": "linear_workflow", "name": "mathematical_sequence",
                    "context": {"value": 3}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let task = uuid::Uuid::parse_str(created.json()["task_uuid"].as_str().unwrap()).unwrap();
    sqlx::query(
        "UPDATE tasker.tasks
         SET state = 'complete', completed_at = now() - interval '1 second',
             created_at = now() - interval '1 second' - interval '250 milliseconds'
         WHERE task_uuid = $1",
    )
    .bind(task)
    .execute(api.db.pool())
    .await
    .unwrap();
}

fn instant(value: &serde_json::Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn performance_reports_the_last_hour_in_the_documented_shape() {
    let api = Api::new().await;
    finished_task(&api).await;

    let reply = api
        .get("/v1/analytics/performance?namespace=linear_workflow")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let report = reply.json();
    assert_eq!(
        instant(&report["window_end"]) - instant(&report["window_start"]),
        TimeDelta::minutes(60)
    );
    assert_eq!(report["namespace"], "linear_workflow");
    assert_eq!(report["tasks_finished"], 1);
    assert_eq!(report["tasks_completed"], 1);
    assert_eq!(report["tasks_failed"], 0);
    assert_eq!(report["error_rate"], 0.0);
    assert_eq!(report["task_duration_ms"]["count"], 1);
    assert_eq!(report["task_duration_ms"]["p50_ms"], 250.0);
    assert_eq!(report["task_duration_ms"]["p99_ms"], 250.0);
    // No step ran: the count is 0 and the percentiles are null, not absent.
    assert_eq!(report["step_duration_ms"]["count"], 0);
    assert!(report["step_duration_ms"]["p95_ms"].is_null());
    let by_template = report["by_template"].as_array().unwrap();
    assert_eq!(by_template.len(), 1);
    assert_eq!(by_template[0]["name"], "mathematical_sequence");
    assert_eq!(by_template[0]["tasks_finished"], 1);
    for key in [
        "tasks_cancelled",
        "tasks_resolved_manually",
        "steps_completed",
        "steps_failed",
        "step_attempts_failed",
    ] {
        assert_eq!(report[key], 0, "{key}: {report}");
    }
}

#[tokio::test]
async fn bottlenecks_lists_templates_and_steps() {
    let api = Api::new().await;
    finished_task(&api).await;

    let reply = api
        .get("/v1/analytics/bottlenecks?window_minutes=1440&limit=5")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let report = reply.json();
    assert_eq!(
        instant(&report["window_end"]) - instant(&report["window_start"]),
        TimeDelta::days(1)
    );
    let slowest = report["slowest_templates"].as_array().unwrap();
    assert_eq!(slowest.len(), 1);
    assert_eq!(slowest[0]["task_duration_ms"]["p95_ms"], 250.0);
    for list in ["slowest_steps", "most_retried_steps", "most_errored_steps"] {
        assert_eq!(report[list], json!([]), "{list}");
    }
}

#[tokio::test]
async fn out_of_bounds_queries_are_400s_naming_the_parameter() {
    let api = Api::new().await;
    for (uri, field) in [
        (
            "/v1/analytics/performance?window_minutes=0",
            "window_minutes",
        ),
        (
            "/v1/analytics/performance?window_minutes=43201",
            "window_minutes",
        ),
        ("/v1/analytics/bottlenecks?limit=0", "limit"),
        ("/v1/analytics/bottlenecks?limit=101", "limit"),
        (
            "/v1/analytics/performance?namespace=Not%20A%20Namespace",
            "namespace",
        ),
    ] {
        let reply = api.get(uri).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            reply.text
        );
        assert_eq!(reply.code(), "bad_request", "{uri}");
        assert!(reply.text.contains(field), "{uri}: {}", reply.text);
    }
    let unknown = api.get("/v1/analytics/performance?windows=5").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    let negative = api.get("/v1/analytics/performance?window_minutes=-1").await;
    assert_eq!(
        negative.status,
        StatusCode::BAD_REQUEST,
        "{}",
        negative.text
    );
}

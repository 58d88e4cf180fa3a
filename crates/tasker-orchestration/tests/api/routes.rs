//! Every route's happy path.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use tasker_worker::Worker;
use tokio_util::sync::CancellationToken;

use crate::support::Api;

const LINEAR: &str =
    r#"{"namespace": "linear_workflow", "name": "mathematical_sequence", "context": {"value": 3}}"#;

#[tokio::test]
async fn tasks_are_created_fetched_listed_and_cancelled() {
    let api = Api::new().await;
    let created = api
        .send(
            Method::POST,
            "/v1/tasks",
            Some("application/json"),
            LINEAR.into(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let task = created.json();
    let uuid = task["task_uuid"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/v1/tasks/{uuid}"));
    assert_eq!(task["state"], "steps_in_process");
    assert_eq!(task["execution_status"], "processing");
    assert_eq!(
        task["step_counts"],
        json!({"total": 4, "pending": 3, "in_progress": 1, "complete": 0, "error": 0, "cancelled": 0})
    );
    let steps = task["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    let second = steps.iter().find(|s| s["name"] == "linear_step_2").unwrap();
    assert_eq!(second["dependencies"], json!(["linear_step_1"]));
    assert_eq!(
        second["readiness"],
        json!({"status": "waiting_for_parents", "remaining": 1})
    );
    for field in [
        "namespace",
        "name",
        "version",
        "context",
        "correlation_id",
        "priority",
        "tags",
        "created_at",
        "completed_at",
    ] {
        assert!(task.get(field).is_some(), "task view lacks {field}");
    }

    let fetched = api.get(&format!("/v1/tasks/{uuid}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    // The creation's view is built from what it wrote, not read back; with
    // no worker running, a read returns exactly the same.
    assert_eq!(fetched.json(), task);

    for i in 0..3 {
        let body = json!({"namespace": "tree_workflow", "name": "hierarchical_tree", "context": {"value": i}, "tags": ["batch-a"]});
        assert_eq!(
            api.post_json("/v1/tasks", &body).await.status,
            StatusCode::CREATED
        );
    }
    let page = api.get("/v1/tasks?limit=2").await.json();
    assert_eq!(page["tasks"].as_array().unwrap().len(), 2);
    assert!(
        page["tasks"][0].get("steps").is_none(),
        "lists omit steps unless asked"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = api
        .get(&format!("/v1/tasks?limit=2&before={cursor}"))
        .await
        .json();
    assert_eq!(rest["tasks"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let trees = api
        .get("/v1/tasks?namespace=tree_workflow&include=steps")
        .await
        .json();
    assert_eq!(trees["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(trees["tasks"][0]["steps"].as_array().unwrap().len(), 8);
    let by_state = api.get("/v1/tasks?state=complete").await.json();
    assert!(by_state["tasks"].as_array().unwrap().is_empty());

    let cancelled = api
        .send(
            Method::DELETE,
            &format!("/v1/tasks/{uuid}?reason=testing"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["state"], "cancelled");
    assert_eq!(cancelled.json()["execution_status"], "cancelled");
    let again = api
        .send(
            Method::DELETE,
            &format!("/v1/tasks/{uuid}"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_finished".to_owned())
    );
}

#[tokio::test]
async fn steps_and_their_audit_are_served() {
    let api = Api::new().await;
    let stop = CancellationToken::new();
    let worker = Worker::new(
        api.db.pool().clone(),
        api.queue.clone(),
        api.config.clone(),
        tasker_rust_worker::registry(),
    );
    let worker_run = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await.unwrap() }
    });
    let orchestrator = api.state.orchestrator.clone();
    let orchestrator_run = tokio::spawn({
        let stop = stop.clone();
        async move { orchestrator.run(stop).await.unwrap() }
    });
    let task = api
        .send(
            Method::POST,
            "/v1/tasks",
            Some("application/json"),
            LINEAR.into(),
        )
        .await
        .json();
    let uuid = task["task_uuid"].as_str().unwrap().to_owned();
    let mut done = false;
    for _ in 0..500 {
        if api.get(&format!("/v1/tasks/{uuid}")).await.json()["state"] == "complete" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done, "the task did not complete");

    let steps = api.get(&format!("/v1/tasks/{uuid}/workflow_steps")).await;
    assert_eq!(steps.status, StatusCode::OK);
    let steps = steps.json();
    let last = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "linear_step_4")
        .unwrap()
        .clone();
    assert_eq!(last["results"], json!({"value": 43_046_721}));
    let step_uuid = last["workflow_step_uuid"].as_str().unwrap();

    let one = api
        .get(&format!("/v1/tasks/{uuid}/workflow_steps/{step_uuid}"))
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["state"], "complete");
    let audit = api
        .get(&format!(
            "/v1/tasks/{uuid}/workflow_steps/{step_uuid}/audit"
        ))
        .await
        .json();
    assert_eq!(audit["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(audit["attempts"][0]["accepted"], true);
    let events: Vec<&str> = audit["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["create", "enqueue", "start", "record_success", "complete"]
    );

    let finished = api.get(&format!("/v1/tasks/{uuid}")).await.json();
    assert_eq!(finished["execution_status"], "complete");
    assert!(finished["completed_at"].is_string());
    stop.cancel();
    worker_run.await.unwrap();
    orchestrator_run.await.unwrap();
}

const TEMPLATE: &str = "name: hello\nnamespace_name: api_tests\nversion: 1.0.0\nsteps:\n  - name: greet\n    handler: { callable: \"tasker::echo\" }\n";

#[tokio::test]
async fn templates_are_registered_validated_listed_and_fetched() {
    let api = Api::new().await;
    let created = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("application/yaml"),
            TEMPLATE.into(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["status"], "created");
    let again = api
        .send(
            Method::POST,
            "/v1/templates",
            Some("text/yaml"),
            TEMPLATE.into(),
        )
        .await;
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (StatusCode::OK, json!("unchanged"))
    );

    let as_json = json!({"name": "hello_json", "namespace_name": "api_tests", "version": "0.1.0",
        "steps": [{"name": "only", "handler": {"callable": "tasker::noop"}}]});
    assert_eq!(
        api.post_json("/v1/templates", &as_json).await.status,
        StatusCode::CREATED
    );

    let listed = api.get("/v1/templates?namespace=api_tests").await.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "hello_json"]);
    let all = api.get("/v1/templates").await.json();
    assert_eq!(all.as_array().unwrap().len(), 10, "8 examples and 2 new");

    let detail = api.get("/v1/templates/api_tests/hello/1.0.0").await;
    assert_eq!(detail.status, StatusCode::OK);
    let detail = detail.json();
    assert_eq!(
        detail["template"]["steps"][0]["retry"]["max_attempts"], 3,
        "defaults filled in"
    );
    assert_eq!(detail["content_hash"].as_str().unwrap().len(), 64);

    let valid = api
        .send(
            Method::POST,
            "/v1/templates/validate",
            Some("application/yaml"),
            TEMPLATE.into(),
        )
        .await
        .json();
    assert_eq!(valid["valid"], true);
    let broken = TEMPLATE.replace("greet", "Greet").replace("1.0.0", "one");
    let invalid = api
        .send(
            Method::POST,
            "/v1/templates/validate",
            Some("application/yaml"),
            broken.into(),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::OK);
    let report = invalid.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"].as_array().unwrap().len(), 2);
    assert_eq!(report["errors"][0]["field"], "version");
}

#[tokio::test]
async fn health_metrics_and_docs_are_public() {
    let api = Api::new().await;
    for uri in ["/health", "/health/live"] {
        let reply = api.get(uri).await;
        assert_eq!(
            (reply.status, reply.json()["status"].clone()),
            (StatusCode::OK, json!("healthy")),
            "{uri}"
        );
    }
    // Orchestration is not running in this test: not ready, and it says why.
    let ready = api.get("/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let report = ready.json();
    assert_eq!(report["checks"]["database"]["status"], "ok");
    assert_eq!(report["checks"]["migrations"]["status"], "ok");
    assert_eq!(report["checks"]["orchestration"]["status"], "failing");
    api.state.health.set_orchestration_running(true);
    assert_eq!(api.get("/health/ready").await.status, StatusCode::OK);
    let detailed = api.get("/health/detailed").await.json();
    assert!(
        detailed["queues"]
            .get("worker_linear_workflow_queue")
            .is_some(),
        "{detailed}"
    );
    assert!(detailed["checks"]["database_pool"]["message"].is_string());

    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains("tasker_http_requests_total"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("route=\"/health/ready\""));

    let doc = api.get("/api-docs/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.json()["info"]["title"], "Tasker API");
    let ui = api.get("/api-docs/ui/").await;
    assert_eq!(ui.status, StatusCode::OK);
    assert!(
        ui.text.contains("swagger-ui"),
        "the docs UI is served from the binary"
    );
}

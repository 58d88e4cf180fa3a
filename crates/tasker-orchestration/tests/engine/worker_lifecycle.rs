//! How a worker starts serving and how it stops.

use std::time::Duration;

use serde_json::json;
use tasker_types::state::{StepState, TaskState};

use crate::support::{Stack, eventually, examples};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_worker_serves_templates_registered_while_it_runs() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    // Give the worker time to settle on its first set of queues.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack
        .register(
            r#"
name: newcomer
namespace_name: late_namespace
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: hello, handler: { callable: "tasker::echo" } }
"#,
        )
        .await;
    let task = stack
        .create("late_namespace", "newcomer", json!({"hi": 1}))
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
}

#[tokio::test]
async fn a_worker_skips_namespaces_it_cannot_fully_serve() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    // Only built-ins: the example namespaces need handlers it lacks.
    let _worker = stack.start_worker(tasker_worker::HandlerRegistry::with_builtins());
    let task = stack
        .create(
            "linear_workflow",
            "mathematical_sequence",
            json!({"value": 2}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let step = stack.step(task.task_uuid, "linear_step_1").await;
    assert_eq!(
        step.state,
        StepState::Enqueued,
        "left on the queue for a worker that can run it"
    );
}

const NAP: &str = r#"
name: nap
namespace_name: lifecycle_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: nap, handler: { callable: "tests::nap" } }
"#;

fn napping(ms: u64) -> tasker_worker::HandlerRegistry {
    let mut registry = examples();
    registry.register_fn("tests::nap", move |_ctx| async move {
        // Ignores cancellation, like a handler stuck in a blocking call.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(tasker_worker::Success::new(json!({ "napped": ms })))
    });
    registry
}

#[tokio::test]
async fn soft_shutdown_lets_a_running_handler_finish_and_writes_its_result() {
    let stack = Stack::new().await;
    stack.register(NAP).await;
    let _orchestrator = stack.start_orchestrator();
    let worker = stack.start_worker(napping(800));
    let task = stack.create("lifecycle_tests", "nap", json!({})).await;
    eventually(LIMIT, "the handler to start", || async {
        stack.step(task.task_uuid, "nap").await.state == StepState::InProgress
    })
    .await;
    worker.stop().await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let step = stack.step(task.task_uuid, "nap").await;
    assert_eq!(
        (step.attempts, step.results),
        (1, Some(json!({"napped": 800})))
    );
}

#[tokio::test]
async fn a_handler_outliving_the_shutdown_timeout_is_abandoned_to_its_lease() {
    let mut config = crate::support::test_config();
    config.worker.shutdown_timeout = Duration::from_millis(200);
    let stack = Stack::with_config(config).await;
    stack.register(NAP).await;
    let _orchestrator = stack.start_orchestrator();
    let worker = stack.start_worker(napping(60_000));
    let task = stack.create("lifecycle_tests", "nap", json!({})).await;
    eventually(LIMIT, "the handler to start", || async {
        stack.step(task.task_uuid, "nap").await.state == StepState::InProgress
    })
    .await;
    worker.stop().await;
    // Nothing was recorded for the abandoned attempt: it stays in progress
    // under a lease that will expire, so another worker re-claims it.
    let step = stack.step(task.task_uuid, "nap").await;
    assert_eq!((step.state, step.attempts), (StepState::InProgress, 1));
    assert!(step.lease_expires_at.is_some());
    let audit = tasker_db::result_audit::list_for_step(stack.pool(), step.workflow_step_uuid)
        .await
        .unwrap();
    assert!(audit.is_empty());
}

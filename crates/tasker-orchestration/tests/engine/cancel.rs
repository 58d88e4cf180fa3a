//! Cancelling a running task ends it `cancelled` with no step left running,
//! and the running handler's late result is discarded.

use std::time::Duration;

use serde_json::json;
use tasker_db::result_audit;
use tasker_types::state::{StepState, TaskState};

use crate::support::{Stack, eventually, examples};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn cancelling_a_running_task_leaves_nothing_running() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: long_haul
namespace_name: cancel_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: start, handler: { callable: "tasker::noop" } }
  - { name: nap, handler: { callable: "tasker::sleep", initialization: { ms: 60000 } }, dependencies: [start] }
  - { name: side, handler: { callable: "tasker::sleep", initialization: { ms: 60000 } }, dependencies: [start] }
  - { name: later, handler: { callable: "tasker::noop" }, dependencies: [nap, side] }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack.create("cancel_tests", "long_haul", json!({})).await;
    eventually(LIMIT, "both sleeps to be running", || async {
        let steps = stack.steps(task.task_uuid).await;
        steps
            .iter()
            .filter(|s| s.state == StepState::InProgress)
            .count()
            == 2
    })
    .await;

    let cancelled = stack
        .orchestrator
        .cancel_task(task.task_uuid, Some("changed my mind"))
        .await
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    let steps = stack.steps(task.task_uuid).await;
    for step in &steps {
        let expected = if step.name == "start" {
            StepState::Complete
        } else {
            StepState::Cancelled
        };
        assert_eq!(step.state, expected, "{}", step.name);
    }
    // The workers were told: both handlers stop at once (not after 60 s), and
    // their results are rejected.
    let nap = steps
        .iter()
        .find(|s| s.name == "nap")
        .unwrap()
        .workflow_step_uuid;
    eventually(
        Duration::from_secs(10),
        "the cancelled handler's result",
        || async {
            !result_audit::list_for_step(stack.pool(), nap)
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
    let audit = result_audit::list_for_step(stack.pool(), nap)
        .await
        .unwrap();
    assert!(!audit[0].accepted);
    for step in stack.steps(task.task_uuid).await {
        assert!(step.state.is_terminal(), "{} is {}", step.name, step.state);
    }
    // Cancelling again is refused: the task is already finished.
    let again = stack
        .orchestrator
        .cancel_task(task.task_uuid, None)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already cancelled"), "{again}");
}

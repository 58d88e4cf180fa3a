//! Retries follow each step's own policy and fire on time; permanent
//! failures, timeouts and panics end where they should.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tasker_db::{result_audit, task_transition, workflow_step_transition};
use tasker_types::state::{StepState, TaskState};
use tasker_worker::HandlerRegistry;

use crate::support::{Stack, examples, test_config};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_step_failing_twice_then_succeeding_retries_on_its_own_schedule() {
    let mut config = test_config();
    config.execution.backoff_jitter = 0.0; // exact delays to compare with
    let stack = Stack::with_config(config).await;
    stack
        .register(
            r#"
name: flaky
namespace_name: retry_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: flaky
    handler: { callable: "tasker::fail", initialization: { fail_times: 2, message: "not yet" } }
    retry: { max_attempts: 5, backoff: linear, backoff_base_ms: 400, max_backoff_ms: 5000 }
  - name: after
    handler: { callable: "tasker::noop" }
    dependencies: [flaky]
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack.create("retry_tests", "flaky", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );

    let flaky = stack.step(task.task_uuid, "flaky").await;
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.results, Some(json!({"attempts": 3})));
    let history = workflow_step_transition::list(stack.pool(), flaky.workflow_step_uuid)
        .await
        .unwrap();
    let at = |event: &str, nth: usize| -> DateTime<Utc> {
        history
            .iter()
            .filter(|h| h.event == event)
            .nth(nth)
            .unwrap()
            .created_at
    };
    // Linear backoff: 400 ms after the first failure, 800 ms after the second.
    // Each retry must fire when due, and no later than 250 ms after.
    for (nth, expected_ms) in [(0, 400), (1, 800)] {
        let waited = (at("enqueue", nth + 1) - at("schedule_retry", nth)).num_milliseconds();
        assert!(
            (expected_ms - 20..=expected_ms + 250).contains(&waited),
            "retry {nth}: waited {waited} ms for a {expected_ms} ms backoff"
        );
    }
    let audit = result_audit::list_for_step(stack.pool(), flaky.workflow_step_uuid)
        .await
        .unwrap();
    let outcomes: Vec<_> = audit
        .iter()
        .map(|a| (a.attempt, a.outcome, a.accepted))
        .collect();
    use tasker_db::result_audit::AuditOutcome::{Failure, Success};
    assert_eq!(
        outcomes,
        [(1, Failure, true), (2, Failure, true), (3, Success, true)]
    );
}

#[tokio::test]
async fn a_permanent_failure_errors_the_step_and_task_and_dependents_never_run() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: doomed
namespace_name: retry_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: first, handler: { callable: "tasker::noop" } }
  - name: broken
    handler: { callable: "tasker::fail", initialization: { retryable: false, message: "bad input" } }
    dependencies: [first]
  - { name: child, handler: { callable: "tasker::noop" }, dependencies: [broken] }
  - { name: grandchild, handler: { callable: "tasker::noop" }, dependencies: [child] }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack.create("retry_tests", "doomed", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let broken = stack.step(task.task_uuid, "broken").await;
    assert_eq!(
        (broken.state, broken.attempts),
        (StepState::Error, 1),
        "no retry for a permanent error"
    );
    assert_eq!(broken.last_error.as_ref().unwrap()["message"], "bad input");
    for name in ["child", "grandchild"] {
        let step = stack.step(task.task_uuid, name).await;
        assert_eq!(
            (step.state, step.attempts),
            (StepState::Pending, 0),
            "{name} must never run"
        );
    }
    let path: Vec<TaskState> = task_transition::list(stack.pool(), task.task_uuid)
        .await
        .unwrap()
        .iter()
        .map(|t| t.to_state)
        .collect();
    assert_eq!(path.last(), Some(&TaskState::Error));
}

#[tokio::test]
async fn a_timeout_is_a_retryable_failure_of_type_timeout() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: slowpoke
namespace_name: retry_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: slow
    handler: { callable: "tasker::sleep", initialization: { ms: 30000 } }
    timeout_seconds: 1
    retry: { max_attempts: 2, backoff: none }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack.create("retry_tests", "slowpoke", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let slow = stack.step(task.task_uuid, "slow").await;
    assert_eq!(slow.attempts, 2, "the timeout was retried");
    let error = slow.last_error.unwrap();
    assert_eq!(error["error_type"], "timeout");
    assert_eq!(error["retryable"], true);
}

#[tokio::test]
async fn a_panicking_handler_fails_its_step_and_the_worker_keeps_serving() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: panicky
namespace_name: retry_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: boom, handler: { callable: "tests::panic" } }
"#,
        )
        .await;
    let mut registry = examples();
    registry.register_fn("tests::panic", |_ctx| async move {
        let numbers: Vec<i64> = Vec::new();
        // An honest bug: index out of bounds.
        Ok(tasker_worker::Success::new(
            json!({ "first": numbers[usize::MAX % 7] }),
        ))
    });
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(registry);
    let task = stack.create("retry_tests", "panicky", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let error = stack.step(task.task_uuid, "boom").await.last_error.unwrap();
    assert_eq!(error["error_type"], "panic");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("index out of bounds"),
        "{error}"
    );
    // The same worker goes on serving.
    let next = stack
        .create(
            "linear_workflow",
            "mathematical_sequence",
            json!({"value": 2}),
        )
        .await;
    assert_eq!(
        stack.finished(next.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
}

#[tokio::test]
async fn a_step_without_a_handler_fails_with_a_clear_message() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: orphan
namespace_name: retry_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: lost, handler: { callable: "nobody::home" }, retry: { max_attempts: 1 } }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    // Configured namespaces: this worker serves retry_tests without having every handler.
    let mut config = stack.config.clone();
    config.worker.namespaces = vec!["retry_tests".into()];
    let _worker = stack.start_worker_with(HandlerRegistry::with_builtins(), config);
    let task = stack.create("retry_tests", "orphan", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let error = stack.step(task.task_uuid, "lost").await.last_error.unwrap();
    assert_eq!(error["error_type"], "handler_not_found");
    assert!(error["message"].as_str().unwrap().contains("nobody::home"));
}

//! Staleness, the DLQ and operator repairs (SPEC §4.10), end to end. Time
//! is simulated by sweeping "two hours from now", never by sleeping.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use tasker_db::{dlq, result_audit};
use tasker_types::api::{StepActionKind, StepActionRequest};
use tasker_types::dlq::{DlqReason, DlqStatus};
use tasker_types::state::{StepState, TaskState};

use crate::support::{Running, Stack, examples};

const LIMIT: Duration = Duration::from_secs(30);

/// `fetch` has no worker until the test starts one; `report` echoes what it got.
const TWO_STEPS: &str = "name: two_steps\nnamespace_name: repair\nversion: 1.0.0\n\
identity_strategy: always_unique\nsteps:\n\
  - { name: fetch, handler: { callable: \"tasker::noop\" } }\n\
  - { name: report, handler: { callable: \"tasker::echo\" }, dependencies: [fetch] }\n";

/// `flaky` fails once, permanently (no retries): only an operator can rerun it.
const FLAKY: &str = "name: flaky_once\nnamespace_name: repair\nversion: 1.0.0\n\
identity_strategy: always_unique\nsteps:\n\
  - { name: flaky, retry: { max_attempts: 1 }, handler: { callable: \"tasker::fail\", initialization: { fail_times: 1, retryable: false } } }\n\
  - { name: after, handler: { callable: \"tasker::echo\" }, dependencies: [flaky] }\n";

/// A running stack with the `flaky_once` template registered.
async fn flaky_stack() -> (Stack, Running, Running) {
    let stack = Stack::new().await;
    stack.register(FLAKY).await;
    let orchestrator = stack.start_orchestrator();
    let worker = stack.start_worker(examples());
    (stack, orchestrator, worker)
}

fn action(kind: StepActionKind) -> StepActionRequest {
    StepActionRequest::new(kind, "ops@example.com", "INC-42: upstream fixed")
}

#[tokio::test]
async fn a_stale_task_gets_one_dlq_entry_and_complete_manually_finishes_it() {
    let stack = Stack::new().await;
    stack.register(TWO_STEPS).await;
    // No worker yet: `fetch` sits enqueued.
    let task = stack
        .create("repair", "two_steps", json!({"order": 7}))
        .await;
    let later = Utc::now() + TimeDelta::hours(2);

    let first = stack.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert!(first.leader);
    assert_eq!(first.failed, [task.task_uuid]);
    let again = stack.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert!(again.failed.is_empty(), "a task is sent to the DLQ once");

    let entries = dlq::list_for_task(stack.pool(), task.task_uuid)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.reason, DlqReason::WorkerUnavailable);
    assert_eq!(entry.status, DlqStatus::Pending);
    assert_eq!(entry.original_state, "steps_in_process");
    assert_eq!(entry.snapshot["steps"].as_array().unwrap().len(), 2);
    assert_eq!(entry.snapshot["threshold_minutes"], 30);

    let row = tasker_db::task::get(stack.pool(), task.task_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, TaskState::Error);
    let fetch = stack.step(task.task_uuid, "fetch").await;
    assert_eq!(fetch.state, StepState::Error);
    assert_eq!(fetch.last_error.unwrap()["error_type"], "staleness_timeout");

    // The operator supplies fetch's result; report runs with it.
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let request = StepActionRequest {
        result: Some(json!({"rows": 3})),
        ..action(StepActionKind::CompleteManually)
    };
    stack
        .orchestrator
        .act_on_step(task.task_uuid, fetch.workflow_step_uuid, &request)
        .await
        .unwrap();
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let report = stack.step(task.task_uuid, "report").await;
    assert_eq!(
        report.results.unwrap()["dependencies"]["fetch"],
        json!({"rows": 3})
    );

    // Audited: who and why, on the attempt history and the transition.
    let audit = result_audit::list_for_step(stack.pool(), fetch.workflow_step_uuid)
        .await
        .unwrap();
    let manual = audit.last().unwrap();
    assert_eq!(manual.actor.as_deref(), Some("ops@example.com"));
    assert_eq!(
        manual.reason.as_deref(),
        Some("complete_manually: INC-42: upstream fixed")
    );
    let transitions =
        tasker_db::workflow_step_transition::list(stack.pool(), fetch.workflow_step_uuid)
            .await
            .unwrap();
    let last = transitions.last().unwrap();
    assert_eq!(last.event, "complete_manually");
    assert_eq!(last.metadata["actor"], "ops@example.com");
    // A later sweep finds nothing: the task finished.
    let after = stack.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert!(after.failed.is_empty());
}

#[tokio::test]
async fn a_task_with_a_live_lease_or_recent_progress_is_not_stale() {
    let stack = Stack::new().await;
    stack.register(TWO_STEPS).await;
    let task = stack.create("repair", "two_steps", json!({})).await;
    let soon = Utc::now() + TimeDelta::minutes(10);
    let report = stack.orchestrator.sweep_stale_tasks(soon).await.unwrap();
    assert!(
        report.failed.is_empty(),
        "10 minutes is below every threshold"
    );
    // A lease that outlives the threshold keeps the task alive.
    sqlx::query(
        "UPDATE tasker.workflow_steps SET state = 'in_progress', attempts = 1,
                lease_expires_at = now() + interval '3 hours' WHERE task_uuid = $1 AND name = 'fetch'",
    )
    .bind(task.task_uuid.as_uuid())
    .execute(stack.pool())
    .await
    .unwrap();
    let later = Utc::now() + TimeDelta::hours(2);
    let report = stack.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert!(report.failed.is_empty(), "its worker is alive and renewing");
    assert!(
        dlq::list_for_task(stack.pool(), task.task_uuid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_template_lifecycle_overrides_the_configured_threshold() {
    let stack = Stack::new().await;
    stack.register(TWO_STEPS).await;
    stack
        .register(&TWO_STEPS.replace("name: two_steps", "name: impatient").replace(
            "identity_strategy: always_unique\n",
            "identity_strategy: always_unique\nlifecycle: { max_steps_in_process_minutes: 5 }\n",
        ))
        .await;
    let patient = stack.create("repair", "two_steps", json!({})).await;
    let impatient = stack.create("repair", "impatient", json!({})).await;
    // Ten minutes on: past the template's 5, short of the configured 30.
    let report = stack
        .orchestrator
        .sweep_stale_tasks(Utc::now() + TimeDelta::minutes(10))
        .await
        .unwrap();
    assert_eq!(report.failed, [impatient.task_uuid]);
    let entry = &dlq::list_for_task(stack.pool(), impatient.task_uuid)
        .await
        .unwrap()[0];
    assert_eq!(entry.snapshot["threshold_minutes"], 5);
    assert!(
        dlq::list_for_task(stack.pool(), patient.task_uuid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reset_for_retry_runs_a_failed_step_again_with_edited_inputs() {
    let (stack, _orchestrator, _worker) = flaky_stack().await;
    let task = stack.create("repair", "flaky_once", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error,
        "flaky fails on its only attempt"
    );
    let flaky = stack.step(task.task_uuid, "flaky").await;
    assert_eq!((flaky.state, flaky.attempts), (StepState::Error, 1));

    // Only complete_manually takes a result; a reset needs who and why.
    let mut bad = action(StepActionKind::ResetForRetry);
    bad.result = Some(json!({}));
    assert!(
        stack
            .orchestrator
            .act_on_step(task.task_uuid, flaky.workflow_step_uuid, &bad)
            .await
            .is_err()
    );
    let mut anonymous = action(StepActionKind::ResetForRetry);
    anonymous.actor = " ".into();
    assert!(
        stack
            .orchestrator
            .act_on_step(task.task_uuid, flaky.workflow_step_uuid, &anonymous)
            .await
            .is_err()
    );

    let request = StepActionRequest {
        inputs: Some(json!({"region": "eu-west-1"})),
        ..action(StepActionKind::ResetForRetry)
    };
    stack
        .orchestrator
        .act_on_step(task.task_uuid, flaky.workflow_step_uuid, &request)
        .await
        .unwrap();
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let flaky = stack.step(task.task_uuid, "flaky").await;
    assert_eq!(flaky.state, StepState::Complete);
    assert_eq!(flaky.attempts, 2, "attempts keep counting across a reset");
    assert_eq!(
        flaky.retry.max_attempts, 2,
        "one more attempt: the template's budget"
    );
    assert_eq!(flaky.inputs, Some(json!({"region": "eu-west-1"})));
    assert_eq!(flaky.results, Some(json!({"attempts": 2})));

    // The task went error → evaluating_results (reopen) → … → complete.
    let events: Vec<String> = tasker_db::task_transition::list(stack.pool(), task.task_uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.event)
        .collect();
    assert!(events.contains(&"reopen".to_owned()), "{events:?}");

    // A finished task takes no repairs.
    let err = stack
        .orchestrator
        .act_on_step(
            task.task_uuid,
            flaky.workflow_step_uuid,
            &action(StepActionKind::ResolveManually),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already complete"), "{err}");
}

#[tokio::test]
async fn resolve_manually_lets_dependents_run_without_a_result() {
    let (stack, _orchestrator, _worker) = flaky_stack().await;
    let task = stack.create("repair", "flaky_once", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error,
        "flaky fails on its only attempt"
    );
    let flaky = stack.step(task.task_uuid, "flaky").await;
    // Only a failed step can be reset; a pending one cannot.
    let after = stack.step(task.task_uuid, "after").await;
    let err = stack
        .orchestrator
        .act_on_step(
            task.task_uuid,
            after.workflow_step_uuid,
            &action(StepActionKind::ResetForRetry),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only a failed step"), "{err}");

    stack
        .orchestrator
        .act_on_step(
            task.task_uuid,
            flaky.workflow_step_uuid,
            &action(StepActionKind::ResolveManually),
        )
        .await
        .unwrap();
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    assert_eq!(
        stack.step(task.task_uuid, "flaky").await.state,
        StepState::ResolvedManually
    );
    assert_eq!(
        stack.step(task.task_uuid, "after").await.state,
        StepState::Complete
    );
}

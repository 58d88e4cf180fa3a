//! Decision points and deferred convergence (SPEC §4.6), end to end.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tasker_messaging::QueueTx;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt};
use tasker_types::state::{StepState, TaskState};
use tasker_worker::Success;

use crate::support::{Stack, eventually, examples};

const LIMIT: Duration = Duration::from_secs(30);

async fn names(stack: &Stack, task: tasker_types::ids::TaskUuid) -> BTreeSet<String> {
    stack
        .steps(task)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn the_amount_decides_which_approvals_are_created() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let cases = [
        (500, &["auto_approve"][..]),
        (3000, &["manager_approval"][..]),
        (10000, &["manager_approval", "finance_review"][..]),
    ];
    for (amount, approvals) in cases {
        let task = stack
            .create(
                "conditional_approval",
                "approval_routing",
                json!({"amount": amount, "requester": "ada", "purpose": "laptop"}),
            )
            .await;
        let done = stack.finished(task.task_uuid, LIMIT).await;
        assert_eq!(done.state, TaskState::Complete, "amount {amount}");
        let mut expected = set(&["validate_request", "routing_decision", "finalize_approval"]);
        expected.extend(set(approvals));
        assert_eq!(
            names(&stack, task.task_uuid).await,
            expected,
            "amount {amount}: steps never chosen are never created"
        );
        let steps = stack.steps(task.task_uuid).await;
        assert!(steps.iter().all(|s| s.state == StepState::Complete));
        let finalize = stack.step(task.task_uuid, "finalize_approval").await;
        assert_eq!(
            finalize.results.unwrap(),
            json!({"approved": true, "approvals": approvals, "amount": amount})
        );
    }
}

#[tokio::test]
async fn a_decision_naming_a_step_it_cannot_reach_fails_with_a_clear_message() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let mut registry = examples();
    registry.register_fn("approvals::routing_decision", |_ctx| async move {
        Ok(Success::create_steps(json!({}), ["validate_request"]))
    });
    let _worker = stack.start_worker(registry);
    let task = stack
        .create(
            "conditional_approval",
            "approval_routing",
            json!({"amount": 5, "requester": "ada", "purpose": "pens"}),
        )
        .await;
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Error);
    let decision = stack.step(task.task_uuid, "routing_decision").await;
    assert_eq!(decision.state, StepState::Error);
    let error = decision.last_error.unwrap();
    assert_eq!(error["error_type"], "invalid_result");
    assert_eq!(error["retryable"], false);
    assert_eq!(
        error["message"],
        "decision `routing_decision` chose `validate_request`, which is not reachable from it in the template"
    );
    assert_eq!(
        names(&stack, task.task_uuid).await,
        set(&["validate_request", "routing_decision"]),
        "nothing was created"
    );
}

#[tokio::test]
async fn no_branches_lets_the_convergence_run_alone() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let mut registry = examples();
    registry
        .register_fn("approvals::routing_decision", |_ctx| async move {
            Ok(Success::no_branches(json!({"route": []})))
        })
        .register_fn("approvals::finalize_approval", |ctx| async move {
            Ok(Success::new(json!({"parents": ctx.direct_parents})))
        });
    let _worker = stack.start_worker(registry);
    let task = stack
        .create(
            "conditional_approval",
            "approval_routing",
            json!({"amount": 5, "requester": "ada", "purpose": "pens"}),
        )
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    assert_eq!(
        names(&stack, task.task_uuid).await,
        set(&["validate_request", "routing_decision", "finalize_approval"])
    );
    let finalize = stack.step(task.task_uuid, "finalize_approval").await;
    assert_eq!(
        finalize.results.unwrap(),
        json!({"parents": ["routing_decision"]})
    );
}

#[tokio::test]
async fn a_duplicate_decision_result_creates_nothing_twice() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack
        .create(
            "conditional_approval",
            "approval_routing",
            json!({"amount": 3000, "requester": "ada", "purpose": "desk"}),
        )
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let before = names(&stack, task.task_uuid).await;
    let decision = stack.step(task.task_uuid, "routing_decision").await;
    // The same pointer three more times, as a redelivery would bring it.
    let pointer = serde_json::to_value(OrchestrationMessage::StepResult(StepAttempt {
        task_uuid: task.task_uuid,
        step_uuid: decision.workflow_step_uuid,
        attempt: decision.attempts,
        correlation_id: task.correlation_id,
        traceparent: None,
    }))
    .unwrap();
    let mut unit = QueueTx::standalone();
    stack
        .queue
        .send_many(
            &mut unit,
            &QueueName::step_results(),
            &[pointer.clone(), pointer.clone(), pointer],
            Duration::ZERO,
        )
        .await
        .unwrap();
    stack.queue.commit_staged(unit.into_staged()).await.unwrap();
    eventually(LIMIT, "the duplicates to be consumed", || async {
        stack.queued(&QueueName::step_results()).await == 0
    })
    .await;
    assert_eq!(names(&stack, task.task_uuid).await, before);
    let steps = stack.steps(task.task_uuid).await;
    assert!(steps.iter().all(|s| s.state == StepState::Complete));
    let edges: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker.workflow_step_edges WHERE task_uuid = $1")
            .bind(task.task_uuid.as_uuid())
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(
        edges, 3,
        "validate → decision → manager_approval → finalize"
    );
}

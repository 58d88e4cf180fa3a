//! Duplicated messages run nothing twice; a worker that dies mid-step has the
//! step re-claimed after its lease expires (re-driven: its message went
//! with the claim); an orchestrator that dies
//! mid-batch gives its results back at once; a superseded attempt's late
//! result is rejected.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tasker_db::result_audit::{self, AuditOutcome};
use tasker_messaging::send_now;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tasker_types::state::{StepState, TaskState};
use tasker_worker::{HandlerRegistry, Success};

use crate::support::{Stack, counted_template, counting, eventually, examples};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn duplicated_messages_run_nothing_twice() {
    let stack = Stack::new().await;
    stack.register(&counted_template("recovery_tests")).await;
    let orchestrator = stack.start_orchestrator();
    // Create the task while no worker runs, then duplicate the root's pointer.
    let task = stack.create("recovery_tests", "counted", json!({})).await;
    let once = stack.step(task.task_uuid, "once").await;
    let pointer = serde_json::to_value(StepMessage {
        task_uuid: task.task_uuid,
        step_uuid: once.workflow_step_uuid,
        correlation_id: task.correlation_id,
        traceparent: None,
    })
    .unwrap();
    let worker_queue = QueueName::worker("recovery_tests").unwrap();
    send_now(
        stack.queue.as_ref(),
        &worker_queue,
        &[pointer.clone(), pointer],
        Duration::ZERO,
    )
    .await
    .unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let worker = stack.start_worker(counting(calls.clone()));
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    // Duplicate result pointers after the fact change nothing either.
    send_results(&stack, &task, once.workflow_step_uuid, 2).await;
    eventually(LIMIT, "queues to drain", || async {
        stack
            .queue
            .depth(&QueueName::step_results())
            .await
            .unwrap()
            .total
            == 0
            && stack.queue.depth(&worker_queue).await.unwrap().total == 0
    })
    .await;
    worker.stop().await;
    orchestrator.stop().await;

    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "each of the two steps ran once"
    );
    for step in stack.steps(task.task_uuid).await {
        assert_eq!((step.state, step.attempts), (StepState::Complete, 1));
        assert_eq!(
            result_audit::list_for_step(stack.pool(), step.workflow_step_uuid)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let finished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1 AND to_state = 'complete'",
    )
    .bind(task.task_uuid.as_uuid())
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(finished, 1);
}

/// Sends `copies` result pointers for attempt 1 of `step`, as a worker's
/// completion (or a duplicating broker) would.
async fn send_results(
    stack: &Stack,
    task: &tasker_db::task::TaskRow,
    step: tasker_types::ids::StepUuid,
    copies: usize,
) {
    let result = serde_json::to_value(OrchestrationMessage::StepResult(StepAttempt {
        task_uuid: task.task_uuid,
        step_uuid: step,
        attempt: 1,
        correlation_id: task.correlation_id,
        traceparent: None,
    }))
    .unwrap();
    send_now(
        stack.queue.as_ref(),
        &QueueName::step_results(),
        &vec![result; copies],
        Duration::ZERO,
    )
    .await
    .unwrap();
}

const SLOW: &str = r#"
name: slow_chain
namespace_name: recovery_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: long, handler: { callable: "tests::long" }, retry: { max_attempts: 3 } }
  - { name: after, handler: { callable: "tasker::noop" }, dependencies: [long] }
"#;

/// A handler that takes `ms` and ignores cancellation, like a stubborn
/// external call; it records which attempts finished.
fn long_handler(ms: u64, finished: Arc<AtomicUsize>) -> HandlerRegistry {
    let mut registry = examples();
    registry.register_fn("tests::long", move |ctx| {
        let finished = finished.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(Success::new(json!({ "attempt": ctx.attempt })))
        }
    });
    registry
}

#[tokio::test]
async fn a_worker_killed_mid_step_has_the_step_reclaimed_after_its_lease_expires() {
    let stack = Stack::new().await;
    stack.register(SLOW).await;
    let _orchestrator = stack.start_orchestrator();
    let mut short_lease = stack.config.clone();
    short_lease.worker.lease = Duration::from_millis(1500);
    short_lease.worker.lease_renew_interval = Duration::from_millis(300);

    let doomed = stack.start_killable_worker(
        long_handler(60_000, Arc::new(AtomicUsize::new(0))),
        short_lease.clone(),
    );
    let task = stack
        .create("recovery_tests", "slow_chain", json!({}))
        .await;
    eventually(LIMIT, "the first worker to claim the step", || async {
        stack.step(task.task_uuid, "long").await.state == StepState::InProgress
    })
    .await;
    let claimed_by = stack.step(task.task_uuid, "long").await.claimed_by;
    // The message went with the claim: only the lease, and the re-drive
    // sweep that watches it, can bring the step back.
    let worker_queue = QueueName::worker("recovery_tests").unwrap();
    assert_eq!(stack.queue.depth(&worker_queue).await.unwrap().total, 0);
    doomed.kill();

    let finished = Arc::new(AtomicUsize::new(0));
    let _survivor = stack.start_worker_with(long_handler(100, finished.clone()), short_lease);
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let long = stack.step(task.task_uuid, "long").await;
    assert_eq!(long.attempts, 2, "the survivor ran a new attempt");
    assert_eq!(long.results, Some(json!({"attempt": 2})));
    assert_ne!(long.claimed_by, claimed_by);
}

#[tokio::test]
async fn an_orchestrator_killed_mid_batch_gives_its_results_back_at_once() {
    let mut config = crate::support::test_config();
    // Were the taken results merely hidden, a successor would wait this long.
    config.orchestration.result_visibility_timeout = Duration::from_secs(120);
    let stack = Stack::with_config(config).await;
    stack.register(&counted_template("recovery_tests")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let _worker = stack.start_worker(counting(calls.clone()));
    let task = stack.create("recovery_tests", "counted", json!({})).await;

    // Hold the task's row lock so that the orchestrator's batch, having
    // taken the result of `once`, blocks inside its transaction.
    let mut blocker = stack.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE")
        .bind(task.task_uuid.as_uuid())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let doomed = stack.start_killable_orchestrator();
    eventually(
        LIMIT,
        "the orchestrator's batch to wait on the task lock",
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(stack.pool())
            .await
            .unwrap();
            waiting > 0
        },
    )
    .await;
    doomed.kill();
    blocker.commit().await.unwrap();

    let _successor = stack.start_orchestrator();
    let started = std::time::Instant::now();
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the result was handed back by the rollback, not by a visibility timeout"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "each step ran once");
    let once = stack.step(task.task_uuid, "once").await;
    let history = tasker_db::workflow_step_transition::list(stack.pool(), once.workflow_step_uuid)
        .await
        .unwrap();
    assert_eq!(
        history.iter().filter(|h| h.event == "complete").count(),
        1,
        "its result was applied once"
    );
}

#[tokio::test]
async fn a_superseded_attempts_late_result_is_rejected() {
    let stack = Stack::new().await;
    stack.register(SLOW).await;
    let _orchestrator = stack.start_orchestrator();
    // Worker A renews rarely, so the test decides when its lease lapses.
    let mut slow_renewal = stack.config.clone();
    slow_renewal.worker.lease = Duration::from_secs(60);
    slow_renewal.worker.lease_renew_interval = Duration::from_secs(50);
    let finished_a = Arc::new(AtomicUsize::new(0));
    // Either worker may re-claim (A too: it sees the lapsed lease like anyone).
    let _worker_a = stack.start_worker_with(long_handler(2_000, finished_a.clone()), slow_renewal);
    let task = stack
        .create("recovery_tests", "slow_chain", json!({}))
        .await;
    eventually(LIMIT, "worker A to claim the step", || async {
        stack.step(task.task_uuid, "long").await.state == StepState::InProgress
    })
    .await;
    let step = stack.step(task.task_uuid, "long").await.workflow_step_uuid;
    // A stalls (say, a network partition): its lease runs out, and the
    // re-drive sweep sends the step's pointer again.
    sqlx::query("UPDATE tasker.workflow_steps SET lease_expires_at = now() - interval '1 second' WHERE workflow_step_uuid = $1")
        .bind(step.as_uuid())
        .execute(stack.pool())
        .await
        .unwrap();
    let finished_b = Arc::new(AtomicUsize::new(0));
    let _worker_b = stack.start_worker(long_handler(100, finished_b.clone()));

    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    // Wait for A's handler to finish and its result to be judged.
    eventually(LIMIT, "attempt 1's late result", || async {
        result_audit::list_for_step(stack.pool(), step)
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let audit = result_audit::list_for_step(stack.pool(), step)
        .await
        .unwrap();
    let mut judged: Vec<(u32, AuditOutcome, bool)> = audit
        .iter()
        .map(|a| (a.attempt, a.outcome, a.accepted))
        .collect();
    judged.sort_by_key(|j| j.0);
    assert_eq!(
        judged,
        [
            (1, AuditOutcome::Success, false),
            (2, AuditOutcome::Success, true)
        ]
    );
    let long = stack.step(task.task_uuid, "long").await;
    assert_eq!(
        long.results,
        Some(json!({"attempt": 2})),
        "the stale result never replaced the current one"
    );
    assert_eq!(
        finished_a.load(Ordering::SeqCst) + finished_b.load(Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn an_unreadable_failure_envelope_fails_its_step_for_good_instead_of_retrying() {
    let stack = Stack::new().await;
    stack.register(&counted_template("recovery_tests")).await;
    let task = stack.create("recovery_tests", "counted", json!({})).await;
    let once = stack.step(task.task_uuid, "once").await;
    // An attempt's failure whose envelope is not a failure (corruption, or a
    // worker from another version): `once` allows three attempts.
    sqlx::query(
        "UPDATE tasker.workflow_steps
         SET state = 'enqueued_as_error_for_orchestration', attempts = 1,
             last_error = '{\"retryable\": \"maybe\"}'
         WHERE workflow_step_uuid = $1",
    )
    .bind(once.workflow_step_uuid.as_uuid())
    .execute(stack.pool())
    .await
    .unwrap();
    send_results(&stack, &task, once.workflow_step_uuid, 1).await;
    let _orchestrator = stack.start_orchestrator();

    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let once = stack.step(task.task_uuid, "once").await;
    assert_eq!((once.state, once.attempts), (StepState::Error, 1));
    let history = tasker_db::workflow_step_transition::list(stack.pool(), once.workflow_step_uuid)
        .await
        .unwrap();
    assert!(
        history.iter().all(|h| h.event != "schedule_retry"),
        "no retry was guessed: {history:?}"
    );
}

//! Domain events (SPEC §4.9) end to end: every condition and delivery mode,
//! a payload that breaks its schema dropped and counted without failing its
//! step, and the durable stream read back in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_types::state::{StepState, TaskState};
use tasker_worker::events::{AttemptEnd, DomainEvent, EventConsumer};
use tasker_worker::{HandlerError, Worker};

use crate::support::{Stack, examples};

const LIMIT: Duration = Duration::from_secs(30);

const TEMPLATE: &str = r#"
name: events
namespace_name: event_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: charge
    handler: { callable: "events::charge" }
    publishes_events:
      - { name: charge.done, condition: success }
      - { name: charge.noticed, condition: success, delivery_mode: fast }
      - { name: charge.seen, condition: always, delivery_mode: broadcast }
      - name: charge.audited
        condition: success
        schema: { type: object, required: [sku], properties: { sku: { type: string } } }
      - { name: charge.failed, condition: failure }
  - name: flaky
    handler: { callable: "events::flaky" }
    dependencies: [charge]
    retry: { max_attempts: 2, backoff: none }
    publishes_events:
      - { name: flaky.retrying, condition: retryable_failure }
      - { name: flaky.done, condition: success }
      - { name: flaky.gave_up, condition: permanent_failure }
  - name: doomed
    handler: { callable: "events::doomed" }
    dependencies: [flaky]
    publishes_events:
      - { name: doomed.gave_up, condition: permanent_failure }
      - { name: doomed.failed, condition: failure }
      - { name: doomed.retrying, condition: retryable_failure }
"#;

fn handlers() -> tasker_worker::HandlerRegistry {
    let mut registry = examples();
    registry.register_fn("events::charge", |_ctx| async move {
        Ok(tasker_worker::Success::new(json!({ "amount": 10 })))
    });
    let tries = Arc::new(AtomicUsize::new(0));
    registry.register_fn("events::flaky", move |_ctx| {
        let tries = tries.clone();
        async move {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(HandlerError::retryable("not yet"))
            } else {
                Ok(tasker_worker::Success::new(json!({ "ok": true })))
            }
        }
    });
    registry.register_fn("events::doomed", |_ctx| async move {
        Err(HandlerError::permanent("card declined"))
    });
    registry
}

fn names(events: &[DomainEvent]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

fn position(events: &[DomainEvent], name: &str) -> usize {
    events
        .iter()
        .position(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", names(events)))
}

#[tokio::test]
async fn steps_publish_their_declared_events_by_condition_and_delivery_mode() {
    let stack = Stack::new().await;
    stack.register(TEMPLATE).await;
    let worker = Worker::new(
        stack.pool().clone(),
        stack.queue.clone(),
        stack.config.clone(),
        handlers(),
    );
    let mut fast = worker.subscribe_events();
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.run_worker(worker.clone());

    let task = stack.create("event_tests", "events", json!({})).await;
    let finished = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(finished.state, TaskState::Error, "doomed failed the task");
    // The schema violation dropped the event, not the step.
    assert_eq!(
        stack.step(task.task_uuid, "charge").await.state,
        StepState::Complete
    );
    assert_eq!(
        stack.step(task.task_uuid, "flaky").await.state,
        StepState::Complete
    );

    let consumer = EventConsumer::new(stack.queue.clone(), "event_tests")
        .await
        .unwrap();
    let mut durable = Vec::new();
    let started = Instant::now();
    while durable.len() < 6 && started.elapsed() < LIMIT {
        let batch = consumer.next_batch(10).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        durable.extend(batch);
    }
    let mut sorted = names(&durable);
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "charge.done",
            "charge.seen",
            "doomed.failed",
            "doomed.gave_up",
            "flaky.done",
            "flaky.retrying"
        ],
        "durable and broadcast events, each condition once"
    );
    // In order: declaration order within an attempt, attempts and
    // dependencies in the order their results were recorded.
    assert!(position(&durable, "charge.done") < position(&durable, "charge.seen"));
    assert!(position(&durable, "charge.seen") < position(&durable, "flaky.retrying"));
    assert!(position(&durable, "flaky.retrying") < position(&durable, "flaky.done"));
    assert!(position(&durable, "flaky.done") < position(&durable, "doomed.gave_up"));
    assert!(position(&durable, "doomed.gave_up") < position(&durable, "doomed.failed"));

    let retrying = &durable[position(&durable, "flaky.retrying")];
    assert_eq!(
        (retrying.attempt, retrying.outcome),
        (1, AttemptEnd::RetryableFailure)
    );
    assert_eq!(retrying.payload["message"], "not yet");
    let done = &durable[position(&durable, "charge.done")];
    assert_eq!(done.payload, json!({ "amount": 10 }));
    assert_eq!(done.task_uuid, task.task_uuid);
    assert_eq!(done.step_name, "charge");
    assert_eq!(done.namespace, "event_tests");
    let gave_up = &durable[position(&durable, "doomed.gave_up")];
    assert_eq!(gave_up.outcome, AttemptEnd::PermanentFailure);

    let mut fast_names = Vec::new();
    while let Some(event) = fast.try_recv() {
        fast_names.push(event.name.clone());
    }
    assert_eq!(
        fast_names,
        ["charge.noticed", "charge.seen"],
        "fast and broadcast only"
    );

    let stats = worker.event_stats();
    assert_eq!(stats.published_durable, 6, "{stats:?}");
    assert_eq!(stats.published_fast, 2, "{stats:?}");
    assert_eq!(stats.dropped_schema, 1, "{stats:?}");
    assert_eq!(
        stats.dropped_lagged + stats.dropped_unavailable,
        0,
        "{stats:?}"
    );
    // Read back means consumed.
    assert!(consumer.next_batch(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rejected_result_publishes_nothing() {
    // A result that arrives after its task was cancelled is refused, and
    // its events with it: an event exists exactly when its result does.
    // (Only `charge` runs: the rest wait for it.)
    let stack = Stack::new().await;
    stack.register(TEMPLATE).await;
    let mut registry = examples();
    let gate = Arc::new(tokio::sync::Notify::new());
    registry.register_fn("events::charge", {
        let gate = gate.clone();
        move |_ctx| {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Ok(tasker_worker::Success::new(json!({ "amount": 1 })))
            }
        }
    });
    for idle in ["events::flaky", "events::doomed"] {
        registry.register_fn(idle, |_ctx| async move {
            std::future::pending::<()>().await;
            Ok(tasker_worker::Success::new(json!({})))
        });
    }
    let worker = Worker::new(
        stack.pool().clone(),
        stack.queue.clone(),
        stack.config.clone(),
        registry,
    );
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.run_worker(worker.clone());
    let task = stack.create("event_tests", "events", json!({})).await;
    crate::support::eventually(LIMIT, "charge to be running", || async {
        stack.step(task.task_uuid, "charge").await.state == StepState::InProgress
    })
    .await;
    stack
        .orchestrator
        .cancel_task(task.task_uuid, Some("test"))
        .await
        .unwrap();
    gate.notify_one();
    crate::support::eventually(LIMIT, "the late result to be judged", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM tasker.workflow_step_result_audit WHERE task_uuid = $1 AND NOT accepted",
        )
        .bind(task.task_uuid.as_uuid())
        .fetch_one(stack.pool())
        .await
        .unwrap()
            >= 1
    })
    .await;
    let stats = worker.event_stats();
    assert_eq!(
        stats.published_durable + stats.published_fast,
        0,
        "{stats:?}"
    );
}

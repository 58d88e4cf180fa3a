//! Re-drive (ADR 010): a step whose pointer message is gone — deleted by
//! hand here, lost with a broker in production — still runs, and a lost
//! result pointer is re-sent and applied once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_types::messages::QueueName;
use tasker_types::state::{StepState, TaskState};

use crate::support::{Stack, counted_template, counting, eventually};

const LIMIT: Duration = Duration::from_secs(30);

/// The test configuration with the sweep looking every 100 ms for pointers
/// lost for 500 ms.
fn quick_redrive() -> TaskerConfig {
    ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .set("redrive.check_interval_ms", toml::Value::Integer(100))
        .set("redrive.after_ms", toml::Value::Integer(500))
        .load()
        .unwrap()
}

async fn purge(stack: &Stack, queue: &QueueName) {
    stack.purge(queue).await;
}

#[tokio::test]
async fn a_step_whose_pointer_was_deleted_by_hand_still_runs_within_the_threshold() {
    let stack = Stack::with_config(quick_redrive()).await;
    stack.register(&counted_template("redrive_tests")).await;
    let orchestrator = stack.start_orchestrator();
    let task = stack.create("redrive_tests", "counted", json!({})).await;
    purge(&stack, &QueueName::worker("redrive_tests").unwrap()).await;

    let calls = Arc::new(AtomicUsize::new(0));
    let worker = stack.start_worker(counting(calls.clone()));
    let started = Instant::now();
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    // The root waited for the threshold (500 ms) and one sweep at most; the
    // rest ran at full speed.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "each step ran once");
    worker.stop().await;
    orchestrator.stop().await;
}

#[tokio::test]
async fn a_lost_result_pointer_is_re_sent_once_and_applied_once() {
    let stack = Stack::new().await;
    stack.register(&counted_template("redrive_tests")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    // A worker but no orchestrator: the root's result waits on the queue.
    let worker = stack.start_worker(counting(calls.clone()));
    let task = stack.create("redrive_tests", "counted", json!({})).await;
    eventually(LIMIT, "the root's result to be stored", || async {
        stack.step(task.task_uuid, "once").await.state == StepState::EnqueuedForOrchestration
    })
    .await;
    purge(&stack, &QueueName::step_results()).await;
    let orchestrator = stack.start_orchestrator();

    // Nothing moves it until the sweep runs, past the threshold.
    let now = Utc::now();
    let early = stack.orchestrator.redrive_lost_pointers(now).await.unwrap();
    assert!(early.leader);
    assert_eq!(early.total(), 0, "not lost yet: {early:?}");
    let after = TimeDelta::from_std(stack.config.redrive.after).unwrap();
    let later = now + after + TimeDelta::seconds(1);
    let report = stack
        .orchestrator
        .redrive_lost_pointers(later)
        .await
        .unwrap();
    assert_eq!(report.by_kind.get("result"), Some(&1), "{report:?}");
    assert_eq!(report.total(), 1);
    let again = stack
        .orchestrator
        .redrive_lost_pointers(later)
        .await
        .unwrap();
    // The result is not sent again within the threshold. (Its step may
    // have been applied meanwhile and its successor enqueued: seen from
    // `later`, two minutes ahead, that one already looks lost — so only
    // the result kind is checked.)
    assert_eq!(
        again.by_kind.get("result"),
        None,
        "re-driven once per threshold: {again:?}"
    );

    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "each step ran once");
    worker.stop().await;
    orchestrator.stop().await;
}

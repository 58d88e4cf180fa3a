//! RabbitMQ restarts under load (issue 15): the broker is stopped mid-run
//! and started again; every task still completes, every step's handler ran
//! exactly once, and the recovery shows in what the sweeps re-sent.
//!
//! It stops the broker on this machine (`rabbitmqctl stop_app`), so it is a
//! test binary of its own: cargo runs test binaries one after another, so
//! no other test's broker connection is in flight meanwhile.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "engine/support.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_types::state::TaskState;

use support::{Stack, counted_template, counting, test_config};

const TASKS_BEFORE: usize = 15;
const TASKS_DURING: usize = 10;
const OUTAGE: Duration = Duration::from_secs(3);

fn rabbitmqctl(action: &str) {
    let status = Command::new("rabbitmqctl")
        .arg(action)
        .status()
        .expect("rabbitmqctl runs (RabbitMQ is installed on this machine)");
    assert!(status.success(), "rabbitmqctl {action} failed: {status}");
}

/// Starts the broker again even if the test fails half-way.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_completes_and_no_step_runs_twice_across_a_broker_restart() {
    let stack = Stack::on_backend("rabbitmq", test_config()).await;
    stack.register(&counted_template("restart_tests")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let orchestrator = stack.start_orchestrator();
    let worker = stack.start_worker(counting(calls.clone()));

    let mut tasks = Vec::new();
    for _ in 0..TASKS_BEFORE {
        tasks.push(stack.create("restart_tests", "counted", json!({})).await);
    }

    let _restart = RestartOnDrop;
    rabbitmqctl("stop_app");
    let stopped = Instant::now();
    // Created while the broker is down: the tasks are accepted (the database
    // is the record) and their pointers wait in the outbox.
    for _ in 0..TASKS_DURING {
        tasks.push(stack.create("restart_tests", "counted", json!({})).await);
    }
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    let outbox_during: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.message_outbox")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    rabbitmqctl("start_app");
    let restarted = Instant::now();

    for task in &tasks {
        assert_eq!(
            stack
                .finished(task.task_uuid, Duration::from_secs(60))
                .await
                .state,
            TaskState::Complete
        );
    }
    let recovery = restarted.elapsed();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2 * tasks.len(),
        "every step's handler ran exactly once"
    );
    let completions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_step_transitions WHERE to_state = 'complete'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(
        completions,
        2 * tasks.len() as i64,
        "each result applied once"
    );
    let outbox_after: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.message_outbox")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(outbox_after, 0, "the outbox drained");
    assert!(
        outbox_during > 0,
        "sends during the outage waited in the outbox"
    );
    println!(
        "broker restart: {} tasks, {outbox_during} pointers waited in the outbox during a {:?} outage, \
         all complete {recovery:?} after the restart",
        tasks.len(),
        OUTAGE
    );
    worker.stop().await;
    orchestrator.stop().await;
}

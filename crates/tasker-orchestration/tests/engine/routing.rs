//! Routing by step: a step that names a worker pool is enqueued on its
//! pool's queue, only workers with the pool's callables take it, and one
//! task can cross pools (and so languages) with each step seeing its
//! parents' results.

use std::time::Duration;

use serde_json::json;
use tasker_types::messages::QueueName;
use tasker_types::state::{StepState, TaskState};
use tasker_worker::{HandlerRegistry, Success};

use crate::support::{Stack, eventually};

const LIMIT: Duration = Duration::from_secs(30);

const ACROSS_POOLS: &str = r#"
name: across_pools
namespace_name: routing_tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: seed, handler: { callable: "tasker::math", initialization: { operation: add, constant: 1 } } }
  - { name: double, pool: gpu, handler: { callable: "tests::double" }, dependencies: [seed] }
  - { name: last, handler: { callable: "tasker::math", initialization: { operation: multiply, constant: 10 } }, dependencies: [double] }
"#;

/// Only the built-ins: serves the default pool, not `gpu`.
fn default_pool() -> HandlerRegistry {
    HandlerRegistry::with_builtins()
}

/// Only `tests::double`: serves the `gpu` pool, not the default one.
fn gpu_pool() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    registry.register_fn("tests::double", |ctx| async move {
        let value = ctx.dependency_results["seed"]["value"]
            .as_i64()
            .unwrap_or(0);
        Ok(Success::new(json!({ "value": value * 2 })))
    });
    registry
}

#[tokio::test]
async fn a_task_crosses_pools_and_each_pool_is_served_only_by_its_workers() {
    let stack = Stack::new().await;
    stack.register(ACROSS_POOLS).await;
    let _orchestrator = stack.start_orchestrator();
    let _default_worker = stack.start_worker(default_pool());
    let task = stack
        .create("routing_tests", "across_pools", json!({"value": 2}))
        .await;

    // The default pool's worker runs the seed; the pool step then waits on
    // its own queue, which that worker does not read.
    let gpu_queue = QueueName::worker_pool("routing_tests", Some("gpu")).unwrap();
    assert_eq!(gpu_queue.as_str(), "worker_routing_tests__gpu");
    eventually(
        LIMIT,
        "the pool step's pointer on the pool queue",
        || async { stack.queue.depth(&gpu_queue).await.unwrap().total == 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.step(task.task_uuid, "double").await.state,
        StepState::Enqueued,
        "no worker of another pool took it"
    );

    let _gpu_worker = stack.start_worker(gpu_pool());
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let steps = stack.steps(task.task_uuid).await;
    let results: Vec<(&str, serde_json::Value)> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.results.clone().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("seed", json!({"value": 3})),
            ("double", json!({"value": 6})),
            ("last", json!({"value": 60})),
        ]
    );
    assert!(steps.iter().all(|s| s.attempts == 1), "{steps:?}");
}

#[tokio::test]
async fn a_pool_name_that_could_collide_is_refused_at_registration() {
    let stack = Stack::new().await;
    let yaml = ACROSS_POOLS.replace("pool: gpu", "pool: gpu__queue");
    let err = tasker_worker::register_template_sources(
        stack.pool(),
        stack.queue.as_ref(),
        &[("bad.yaml".to_owned(), yaml)],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("field 'pool'"), "{err}");
}

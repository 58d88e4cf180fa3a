//! Several orchestrators and workers on one database: every result is
//! accepted once and every task finalized once.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_types::state::TaskState;

use crate::support::{Stack, examples};

#[tokio::test]
async fn two_orchestrators_and_two_workers_run_200_tasks_exactly_once() {
    let stack = Stack::new().await;
    let orchestrators = [stack.start_orchestrator(), stack.start_orchestrator()];
    let workers = [
        stack.start_worker(examples()),
        stack.start_worker(examples()),
    ];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (namespace, name) = if i % 2 == 0 {
            ("diamond_workflow", "parallel_computation")
        } else {
            ("linear_workflow", "mathematical_sequence")
        };
        tasks.push(
            stack
                .create(namespace, name, json!({"value": (i % 5) + 1}))
                .await,
        );
    }
    for task in &tasks {
        let done = stack
            .finished(task.task_uuid, Duration::from_secs(120))
            .await;
        assert_eq!(done.state, TaskState::Complete, "task {}", task.task_uuid);
    }
    let elapsed = started.elapsed();
    for worker in workers {
        worker.stop().await;
    }
    for orchestrator in orchestrators {
        orchestrator.stop().await;
    }

    let pool = stack.pool().clone();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM tasker.workflow_steps").await,
        800
    );
    assert_eq!(
        count("SELECT count(*) FROM (SELECT workflow_step_uuid FROM tasker.workflow_step_transitions WHERE to_state = 'complete' GROUP BY 1 HAVING count(*) = 1) once").await,
        800,
        "every step accepted exactly once"
    );
    assert_eq!(
        count("SELECT count(*) FROM tasker.workflow_step_result_audit WHERE accepted").await,
        800,
        "one accepted result per step"
    );
    assert_eq!(
        count("SELECT count(*) FROM (SELECT task_uuid FROM tasker.task_transitions WHERE to_state = 'complete' GROUP BY 1 HAVING count(*) = 1) once").await,
        200,
        "every task finalized exactly once"
    );
    let processors = count("SELECT count(DISTINCT processor_id) FROM tasker.task_transitions WHERE to_state = 'complete'").await;
    assert_eq!(processors, 2, "both orchestrators finalized tasks");
    let claimers = count("SELECT count(DISTINCT claimed_by) FROM tasker.workflow_steps").await;
    assert_eq!(claimers, 2, "both workers ran steps");
    eprintln!("200 tasks / 800 steps with 2 orchestrators and 2 workers in {elapsed:?}");
}

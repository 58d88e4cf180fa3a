//! The writer against a real database: an evaluation is written whole, or
//! not at all when a fence fails, and evaluating again from a fresh load
//! then succeeds.

use std::sync::Arc;
use std::time::Duration;

use tasker_config::ConfigLoader;
use tasker_db::named_task;
use tasker_db::task::{self, NewTask};
use tasker_db::testing::TestDb;
use tasker_db::workflow_step;
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_db::workflow_step_graph;
use tasker_messaging::PgmqQueue;
use tasker_types::backoff::FixedJitter;
use tasker_types::state::{StepState, TaskState};
use tasker_types::template::TaskTemplate;

use super::*;
use crate::lifecycle::evaluate::{Input, evaluate};
use crate::lifecycle::graph::TaskGraph;
use crate::shared::Shared;

const LINEAR: &str = "name: linear\nnamespace_name: ns\nversion: 1.0.0\nsteps:
  - { name: a, handler: { callable: x } }
  - { name: b, handler: { callable: x }, dependencies: [a] }
";

async fn cancel_evaluation(
    shared: &Shared,
    task_row: &TaskRow,
    template: &TaskTemplate,
) -> Evaluation {
    let mut conn = shared.pool.acquire().await.unwrap();
    let nodes = workflow_step_graph::graph_for_tasks(&mut conn, &[task_row.task_uuid])
        .await
        .unwrap();
    evaluate(
        TaskGraph::stored(task_row.into(), nodes),
        template,
        &[Input::Cancel],
        chrono::Utc::now(),
        &shared.rules(),
        &mut FixedJitter(1.0),
    )
    .unwrap()
}

#[tokio::test]
async fn a_failed_fence_writes_nothing_and_a_fresh_evaluation_then_applies() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool().clone();
    let config = ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .load()
        .unwrap();
    let shared = Shared::new(
        pool.clone(),
        Arc::new(PgmqQueue::new(pool.clone())),
        config,
        tasker_types::breaker::Breakers::disabled(),
    );
    let template = TaskTemplate::from_yaml(LINEAR, None).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    named_task::register(&mut conn, &template).await.unwrap();
    let registered = named_task::get(&mut *conn, "ns", "linear", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    let created = task::create_committed(
        &pool,
        NewTask::new(&registered, "test", serde_json::json!({})),
        &shared.ctx(),
    )
    .await
    .unwrap();
    let task_row = created.task;
    let a = created.steps[0].workflow_step_uuid;
    let b = created.steps[1].workflow_step_uuid;
    workflow_step_change::apply_one(
        &mut conn,
        StepChange::enqueue(a, StepState::Pending),
        &shared.ctx(),
    )
    .await
    .unwrap();

    // The cancel is decided while `a` is enqueued; a worker claims it
    // before the write.
    let stale = cancel_evaluation(&shared, &task_row, &template).await;
    workflow_step_change::apply_one(
        &mut conn,
        StepChange::claim(a, "worker-1", Duration::from_secs(30)),
        &shared.ctx(),
    )
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let mut batch = Batch::new(&shared, shared.ctx());
    let err = write(
        &mut batch,
        &mut tx,
        std::slice::from_ref(&task_row),
        &[stale],
    )
    .await
    .unwrap_err();
    assert!(is_conflict(&err), "{err}");
    tx.rollback().await.unwrap();
    let b_row = workflow_step::get(&pool, b).await.unwrap().unwrap();
    assert_eq!(
        b_row.state,
        StepState::Pending,
        "nothing of the evaluation was kept"
    );
    let t_row = task::get(&pool, task_row.task_uuid).await.unwrap().unwrap();
    assert_eq!(t_row.state, TaskState::Pending);

    // Evaluated again from a fresh load, the cancel applies to what is there.
    let fresh = cancel_evaluation(&shared, &task_row, &template).await;
    let mut tx = pool.begin().await.unwrap();
    let mut batch = Batch::new(&shared, shared.ctx());
    write(
        &mut batch,
        &mut tx,
        std::slice::from_ref(&task_row),
        &[fresh],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for step in [a, b] {
        let row = workflow_step::get(&pool, step).await.unwrap().unwrap();
        assert_eq!(row.state, StepState::Cancelled);
    }
    let t_row = task::get(&pool, task_row.task_uuid).await.unwrap().unwrap();
    assert_eq!(t_row.state, TaskState::Cancelled);
    assert_eq!(batch.report.finalized, 1);
}

//! Shared fixtures.

use serde_json::json;
use sqlx::PgPool;
use tasker_db::TransitionContext;
use tasker_db::named_task::{self, RegisteredTemplate};
use tasker_db::task::{self, CreatedTask, NewTask};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_types::ids::StepUuid;
use tasker_types::state::StepState;
use tasker_types::template::TaskTemplate;

pub(crate) const DIAMOND: &str = r#"
name: diamond
namespace_name: tests
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: start, handler: { callable: "tasker::noop" } }
  - { name: left, handler: { callable: "tasker::noop" }, dependencies: [start] }
  - { name: right, handler: { callable: "tasker::noop" }, dependencies: [start],
      retry: { max_attempts: 5, backoff: linear } }
  - { name: end, handler: { callable: "tasker::noop" }, dependencies: [left, right] }
environments:
  test:
    steps:
      right: { timeout_seconds: 7, handler: { initialization: { mode: test } } }
"#;

pub(crate) fn template(yaml: &str) -> TaskTemplate {
    TaskTemplate::from_yaml(yaml, Some("fixture.yaml")).unwrap()
}

pub(crate) async fn register(pool: &PgPool, yaml: &str) -> RegisteredTemplate {
    let mut conn = pool.acquire().await.unwrap();
    named_task::register(&mut conn, &template(yaml))
        .await
        .unwrap()
        .template()
        .clone()
}

pub(crate) fn ctx() -> TransitionContext {
    TransitionContext::by("test")
}

pub(crate) async fn create_diamond(pool: &PgPool) -> CreatedTask {
    let registered = register(pool, DIAMOND).await;
    task::create_committed(
        pool,
        NewTask::new(&registered, "test", json!({"n": 1})),
        &ctx(),
    )
    .await
    .unwrap()
}

pub(crate) fn step_named(created: &CreatedTask, name: &str) -> StepUuid {
    created
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .workflow_step_uuid
}

/// Moves a pending step to `enqueued`, committed.
pub(crate) async fn enqueue(pool: &PgPool, step: StepUuid) {
    let mut tx = pool.begin().await.unwrap();
    workflow_step_change::apply_one(
        &mut tx,
        StepChange::enqueue(step, StepState::Pending),
        &ctx(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Makes the lease of `step`'s current attempt run out, as if its worker
/// went silent (no sleeping).
pub(crate) async fn expire_lease(conn: &mut sqlx::PgConnection, step: StepUuid) {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET lease_expires_at = now() - interval '1 second'
         WHERE workflow_step_uuid = $1",
    )
    .bind(step.as_uuid())
    .execute(conn)
    .await
    .unwrap();
}

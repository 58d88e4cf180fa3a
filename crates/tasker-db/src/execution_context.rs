//! What a worker loads to run one step: the task, the step, and the results
//! of the steps it depends on (SPEC §7).

use serde_json::Value;
use sqlx::PgExecutor;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid, TemplateUuid};
use tasker_types::state::{StepState, TaskState};

use crate::convert;
use crate::error::DbError;
use crate::workflow_step::{self, StepRow};

/// The result of an ancestor step.
#[derive(Clone, Debug, PartialEq)]
pub struct DependencyResult {
    /// The ancestor's name.
    pub name: String,
    /// Its result (`None` for a step resolved by hand without one).
    pub results: Option<Value>,
    /// Whether it is a direct parent of the step.
    pub direct: bool,
}

/// Everything a handler's context is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionContext {
    /// The task.
    pub task_uuid: TaskUuid,
    /// The task's state.
    pub task_state: TaskState,
    /// The template row the task runs.
    pub named_task_uuid: TemplateUuid,
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub task_name: String,
    /// Template version.
    pub task_version: String,
    /// The task's context.
    pub context: Value,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// The step.
    pub step: StepRow,
    /// Completed ancestors' results, direct parents first, then by name.
    pub dependencies: Vec<DependencyResult>,
}

/// Loads the context for running `step`.
///
/// # Errors
/// [`DbError::StepNotFound`] when the step does not exist.
pub async fn load(
    conn: &mut sqlx::PgConnection,
    step: StepUuid,
) -> Result<ExecutionContext, DbError> {
    let row = workflow_step::get(&mut *conn, step)
        .await?
        .ok_or(DbError::StepNotFound(step))?;
    let task = sqlx::query!(
        r#"SELECT named_task_uuid, namespace, name, version, state, context, correlation_id
           FROM tasker.tasks WHERE task_uuid = $1"#,
        row.task_uuid.as_uuid()
    )
    .fetch_one(&mut *conn)
    .await?;
    let dependencies = dependencies(&mut *conn, step).await?;
    Ok(ExecutionContext {
        task_uuid: row.task_uuid,
        task_state: convert::task_state(&task.state)?,
        named_task_uuid: TemplateUuid::from_uuid(task.named_task_uuid),
        namespace: task.namespace,
        task_name: task.name,
        task_version: task.version,
        context: task.context,
        correlation_id: CorrelationId::from_uuid(task.correlation_id),
        step: row,
        dependencies,
    })
}

/// The contexts of `steps` (already loaded, e.g. just claimed), with two
/// statements for the whole batch: their tasks, and all their ancestors'
/// results.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn load_many(
    conn: &mut sqlx::PgConnection,
    steps: Vec<StepRow>,
) -> Result<Vec<ExecutionContext>, DbError> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let task_uuids: Vec<uuid::Uuid> = steps.iter().map(|s| s.task_uuid.as_uuid()).collect();
    let tasks = sqlx::query!(
        r#"SELECT task_uuid, named_task_uuid, namespace, name, version, state, context, correlation_id
           FROM tasker.tasks WHERE task_uuid = ANY($1)"#,
        &task_uuids
    )
    .fetch_all(&mut *conn)
    .await?;
    let step_uuids: Vec<uuid::Uuid> = steps
        .iter()
        .map(|s| s.workflow_step_uuid.as_uuid())
        .collect();
    let ancestors = sqlx::query!(
        // The LATERAL … OFFSET 0 lookups keep the planner on index scans: a
        // generic plan otherwise hash-joins whole tables on every iteration
        // and slows down as the tables grow.
        r#"WITH RECURSIVE ancestors (target, step_uuid, direct) AS (
               SELECT to_step_uuid, from_step_uuid, true
               FROM tasker.workflow_step_edges WHERE to_step_uuid = ANY($1)
               UNION
               SELECT a.target, e.from_step_uuid, false
               FROM ancestors a CROSS JOIN LATERAL (
                   SELECT from_step_uuid FROM tasker.workflow_step_edges
                   WHERE to_step_uuid = a.step_uuid OFFSET 0) e)
           SELECT a.target AS "target!", s.name AS "name!", s.results, bool_or(a.direct) AS "direct!"
           FROM ancestors a CROSS JOIN LATERAL (
               SELECT workflow_step_uuid, name, results, state FROM tasker.workflow_steps
               WHERE workflow_step_uuid = a.step_uuid OFFSET 0) s
           WHERE s.state = ANY($2)
           GROUP BY a.target, s.workflow_step_uuid, s.name, s.results
           ORDER BY a.target, bool_or(a.direct) DESC, s.name"#,
        &step_uuids,
        &[
            StepState::Complete.as_str().to_owned(),
            StepState::ResolvedManually.as_str().to_owned()
        ]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_step: std::collections::HashMap<uuid::Uuid, Vec<DependencyResult>> =
        std::collections::HashMap::new();
    for a in ancestors {
        by_step.entry(a.target).or_default().push(DependencyResult {
            name: a.name,
            results: a.results,
            direct: a.direct,
        });
    }
    let tasks: std::collections::HashMap<uuid::Uuid, _> =
        tasks.into_iter().map(|t| (t.task_uuid, t)).collect();
    steps
        .into_iter()
        .map(|step| {
            let task = tasks.get(&step.task_uuid.as_uuid()).ok_or_else(|| {
                DbError::Corrupt(format!("step {} has no task", step.workflow_step_uuid))
            })?;
            Ok(ExecutionContext {
                task_uuid: step.task_uuid,
                task_state: convert::task_state(&task.state)?,
                named_task_uuid: TemplateUuid::from_uuid(task.named_task_uuid),
                namespace: task.namespace.clone(),
                task_name: task.name.clone(),
                task_version: task.version.clone(),
                context: task.context.clone(),
                correlation_id: CorrelationId::from_uuid(task.correlation_id),
                dependencies: by_step
                    .remove(&step.workflow_step_uuid.as_uuid())
                    .unwrap_or_default(),
                step,
            })
        })
        .collect()
}

/// Every ancestor of `step` that satisfied its dependency (`complete` or
/// `resolved_manually`), with its result.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn dependencies(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
) -> Result<Vec<DependencyResult>, DbError> {
    let rows = sqlx::query!(
        // See `load_many` on the LATERAL … OFFSET 0 lookups.
        r#"WITH RECURSIVE ancestors (step_uuid, direct) AS (
               SELECT from_step_uuid, true FROM tasker.workflow_step_edges WHERE to_step_uuid = $1
               UNION
               SELECT e.from_step_uuid, false
               FROM ancestors a CROSS JOIN LATERAL (
                   SELECT from_step_uuid FROM tasker.workflow_step_edges
                   WHERE to_step_uuid = a.step_uuid OFFSET 0) e)
           SELECT s.name AS "name!", s.results, bool_or(a.direct) AS "direct!"
           FROM ancestors a CROSS JOIN LATERAL (
               SELECT workflow_step_uuid, name, results, state FROM tasker.workflow_steps
               WHERE workflow_step_uuid = a.step_uuid OFFSET 0) s
           WHERE s.state = ANY($2)
           GROUP BY s.workflow_step_uuid, s.name, s.results
           ORDER BY bool_or(a.direct) DESC, s.name"#,
        step.as_uuid(),
        &[
            StepState::Complete.as_str().to_owned(),
            StepState::ResolvedManually.as_str().to_owned()
        ]
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DependencyResult {
            name: r.name,
            results: r.results,
            direct: r.direct,
        })
        .collect())
}

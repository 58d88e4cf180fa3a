//! What a worker loads to run one step: the task, the step, and the results
//! of the steps it depends on (SPEC §7).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
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
    /// Direct parents that failed permanently — only possible when their
    /// failure is tolerated (`continue_on_failure` batches), so a
    /// convergence step can see which ones failed — with their last errors.
    pub failed_parents: Vec<(String, Value)>,
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
    load_many(conn, vec![row])
        .await?
        .pop()
        .ok_or(DbError::StepNotFound(step))
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
    let mut lineage = lineage(&mut *conn, &steps).await?;
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
                dependencies: lineage
                    .dependencies
                    .remove(&step.workflow_step_uuid)
                    .unwrap_or_default(),
                failed_parents: lineage
                    .failed_parents
                    .remove(&step.workflow_step_uuid)
                    .unwrap_or_default(),
                step,
            })
        })
        .collect()
}

/// What each step is owed by the steps above it.
struct Lineage {
    dependencies: HashMap<StepUuid, Vec<DependencyResult>>,
    failed_parents: HashMap<StepUuid, Vec<(String, Value)>>,
}

/// The completed ancestors (with results) and failed direct parents of
/// each of `steps`, in two plain statements: the edges of their tasks, and
/// the ancestors' rows. The graph is walked here rather than by a recursive
/// query, whose plan PostgreSQL chose badly as the tables grew (a median of
/// 20 ms per claim in the benchmark; see docs/benchmarks.md).
async fn lineage(conn: &mut sqlx::PgConnection, steps: &[StepRow]) -> Result<Lineage, DbError> {
    let mut tasks: Vec<uuid::Uuid> = steps.iter().map(|s| s.task_uuid.as_uuid()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let edges = sqlx::query!(
        "SELECT from_step_uuid, to_step_uuid FROM tasker.workflow_step_edges WHERE task_uuid = ANY($1)",
        &tasks
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut parents: HashMap<uuid::Uuid, Vec<uuid::Uuid>> = HashMap::new();
    for e in &edges {
        parents
            .entry(e.to_step_uuid)
            .or_default()
            .push(e.from_step_uuid);
    }
    // Each step's ancestors, each marked whether it is a direct parent.
    let mut wanted: HashSet<uuid::Uuid> = HashSet::new();
    let mut ancestry: Vec<(StepUuid, HashMap<uuid::Uuid, bool>)> = Vec::with_capacity(steps.len());
    for step in steps {
        let direct = parents
            .get(&step.workflow_step_uuid.as_uuid())
            .cloned()
            .unwrap_or_default();
        let mut seen: HashMap<uuid::Uuid, bool> = direct.iter().map(|p| (*p, true)).collect();
        let mut stack = direct;
        while let Some(next) = stack.pop() {
            for p in parents.get(&next).into_iter().flatten() {
                if !seen.contains_key(p) {
                    seen.insert(*p, false);
                    stack.push(*p);
                }
            }
        }
        wanted.extend(seen.keys().copied());
        ancestry.push((step.workflow_step_uuid, seen));
    }
    let mut lineage = Lineage {
        dependencies: HashMap::new(),
        failed_parents: HashMap::new(),
    };
    if wanted.is_empty() {
        return Ok(lineage);
    }
    let wanted: Vec<uuid::Uuid> = wanted.into_iter().collect();
    let rows = sqlx::query!(
        r#"SELECT workflow_step_uuid, name, state, results, last_error
           FROM tasker.workflow_steps WHERE workflow_step_uuid = ANY($1)"#,
        &wanted
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_uuid = HashMap::with_capacity(rows.len());
    for r in rows {
        let state = convert::step_state(&r.state)?;
        by_uuid.insert(
            r.workflow_step_uuid,
            (r.name, state, r.results, r.last_error),
        );
    }
    for (step, seen) in ancestry {
        let mut dependencies = Vec::new();
        let mut failed = Vec::new();
        for (uuid, direct) in seen {
            let Some((name, state, results, last_error)) = by_uuid.get(&uuid) else {
                continue;
            };
            if state.satisfies_dependency() {
                dependencies.push(DependencyResult {
                    name: name.clone(),
                    results: results.clone(),
                    direct,
                });
            } else if direct && *state == StepState::Error {
                failed.push((name.clone(), last_error.clone().unwrap_or(Value::Null)));
            }
        }
        dependencies.sort_by(|a, b| b.direct.cmp(&a.direct).then_with(|| a.name.cmp(&b.name)));
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        lineage.dependencies.insert(step, dependencies);
        lineage.failed_parents.insert(step, failed);
    }
    Ok(lineage)
}

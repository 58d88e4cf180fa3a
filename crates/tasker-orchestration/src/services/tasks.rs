//! Task operations: create, get, list, cancel.

use std::collections::HashMap;

use tasker_db::task::{self, TaskFilter, TaskRow};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::workflow_step_edge::{self, Edge};
use tasker_types::api::{TaskList, TaskListQuery, TaskRequest, TaskView};
use tasker_types::ids::TaskUuid;

use super::views::task_view;
use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::backpressure::Intake;
use crate::error::OrchestrationError;
use crate::services::error::ServiceError;

/// Default and largest page sizes of task listings.
pub const DEFAULT_PAGE: u32 = 25;
/// Largest page size.
pub const MAX_PAGE: u32 = 100;

/// Creates a task and returns its view with steps.
///
/// # Errors
/// Forbidden without `tasks:create`; otherwise as [`Orchestrator::create_task`]
/// (which validates the request).
pub async fn create(
    orchestrator: &Orchestrator,
    principal: &Principal,
    request: TaskRequest,
) -> Result<TaskView, ServiceError> {
    principal.require(Permission::TasksCreate)?;
    if let Some(refusal) = orchestrator.refusal(Intake::NewTask) {
        return Err(ServiceError::refused(&refusal));
    }
    // The view of what was committed, without reading it back.
    let created = orchestrator.create_task(request).await?;
    Ok(task_view(
        &created.task,
        &created.steps,
        &created.edges,
        true,
    ))
}

/// One task's view.
///
/// # Errors
/// Forbidden without `tasks:read`; not found.
pub async fn get(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
    with_steps: bool,
) -> Result<TaskView, ServiceError> {
    principal.require(Permission::TasksRead)?;
    view(orchestrator, task, with_steps).await
}

async fn view(
    orchestrator: &Orchestrator,
    task: TaskUuid,
    with_steps: bool,
) -> Result<TaskView, ServiceError> {
    let row = task::get(orchestrator.pool(), task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    let mut views = views_of(orchestrator, vec![row], with_steps).await?;
    views
        .pop()
        .ok_or_else(|| OrchestrationError::TaskNotFound(task).into())
}

/// A page of tasks, newest first.
///
/// # Errors
/// Forbidden without `tasks:read`; invalid for an unknown `include`.
pub async fn list(
    orchestrator: &Orchestrator,
    principal: &Principal,
    query: TaskListQuery,
) -> Result<TaskList, ServiceError> {
    principal.require(Permission::TasksRead)?;
    let with_steps = match query.include.as_deref() {
        None | Some("") => false,
        Some("steps") => true,
        Some(other) => {
            return Err(ServiceError::invalid(format!(
                "`include` takes `steps`, not `{other}`"
            )));
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = TaskFilter {
        namespace: query.namespace,
        name: query.name,
        state: query.state,
        since: query.since,
        before: query.before,
        limit: limit + 1,
    };
    let mut rows = task::list(orchestrator.pool(), &filter).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| r.task_uuid)
    } else {
        None
    };
    Ok(TaskList {
        tasks: views_of(orchestrator, rows, with_steps).await?,
        next_cursor,
    })
}

/// Cancels a task and returns its view.
///
/// # Errors
/// Forbidden without `tasks:cancel`; not found; conflict when already finished.
pub async fn cancel(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
    reason: Option<&str>,
) -> Result<TaskView, ServiceError> {
    principal.require(Permission::TasksCancel)?;
    orchestrator.cancel_task(task, reason).await?;
    view(orchestrator, task, true).await
}

/// Views of `rows`, loading their steps and edges in two queries.
pub(crate) async fn views_of(
    orchestrator: &Orchestrator,
    rows: Vec<TaskRow>,
    with_steps: bool,
) -> Result<Vec<TaskView>, ServiceError> {
    let uuids: Vec<TaskUuid> = rows.iter().map(|r| r.task_uuid).collect();
    let mut steps: HashMap<TaskUuid, Vec<StepRow>> = HashMap::new();
    for step in workflow_step::list_for_tasks(orchestrator.pool(), &uuids).await? {
        steps.entry(step.task_uuid).or_default().push(step);
    }
    let mut edges: HashMap<TaskUuid, Vec<Edge>> = HashMap::new();
    for (task, edge) in workflow_step_edge::list_for_tasks(orchestrator.pool(), &uuids).await? {
        edges.entry(task).or_default().push(edge);
    }
    Ok(rows
        .iter()
        .map(|row| {
            let steps = steps.get(&row.task_uuid).map_or(&[][..], Vec::as_slice);
            let edges = edges.get(&row.task_uuid).map_or(&[][..], Vec::as_slice);
            task_view(row, steps, edges, with_steps)
        })
        .collect())
}

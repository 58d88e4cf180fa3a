//! Task operations: create, get, list, cancel.

use std::collections::HashMap;

use tasker_db::task::{self, TaskFilter, TaskRow};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::workflow_step_edge::{self, Edge};
use tasker_types::api::{TaskList, TaskListQuery, TaskRequest, TaskView};
use tasker_types::ids::TaskUuid;

use super::views::task_view;
use crate::Orchestrator;
use crate::error::OrchestrationError;

/// Default and largest page sizes of task listings.
pub const DEFAULT_PAGE: u32 = 25;
/// Largest page size.
pub const MAX_PAGE: u32 = 100;

/// Creates a task and returns its view with steps.
///
/// # Errors
/// As [`Orchestrator::create_task`], plus [`OrchestrationError::BadRequest`]
/// for malformed optional fields.
pub async fn create(
    orchestrator: &Orchestrator,
    request: TaskRequest,
) -> Result<TaskView, OrchestrationError> {
    check_request(&request)?;
    let created = orchestrator.create_task(request).await?;
    get(orchestrator, created.task_uuid, true).await
}

fn check_request(request: &TaskRequest) -> Result<(), OrchestrationError> {
    let too_long = |field: &str, value: &Option<String>| {
        value.as_ref().filter(|v| v.chars().count() > 255).map(|_| {
            OrchestrationError::BadRequest(format!("`{field}` must be at most 255 characters"))
        })
    };
    for (field, value) in [
        ("initiator", &request.initiator),
        ("source_system", &request.source_system),
        ("reason", &request.reason),
    ] {
        if let Some(err) = too_long(field, value) {
            return Err(err);
        }
    }
    if request.tags.len() > 32
        || request
            .tags
            .iter()
            .any(|t| t.is_empty() || t.chars().count() > 64)
    {
        return Err(OrchestrationError::BadRequest(
            "`tags` takes at most 32 tags of 1 to 64 characters".into(),
        ));
    }
    if !request.context.is_object() {
        return Err(OrchestrationError::BadRequest(
            "`context` must be a JSON object".into(),
        ));
    }
    Ok(())
}

/// One task's view.
///
/// # Errors
/// [`OrchestrationError::TaskNotFound`].
pub async fn get(
    orchestrator: &Orchestrator,
    task: TaskUuid,
    with_steps: bool,
) -> Result<TaskView, OrchestrationError> {
    let row = task::get(orchestrator.pool(), task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    let mut views = views_of(orchestrator, vec![row], with_steps).await?;
    views.pop().ok_or(OrchestrationError::TaskNotFound(task))
}

/// A page of tasks, newest first.
///
/// # Errors
/// [`OrchestrationError::BadRequest`] for an unknown `include`.
pub async fn list(
    orchestrator: &Orchestrator,
    query: TaskListQuery,
) -> Result<TaskList, OrchestrationError> {
    let with_steps = match query.include.as_deref() {
        None | Some("") => false,
        Some("steps") => true,
        Some(other) => {
            return Err(OrchestrationError::BadRequest(format!(
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
/// [`OrchestrationError::TaskNotFound`], [`OrchestrationError::AlreadyFinished`].
pub async fn cancel(
    orchestrator: &Orchestrator,
    task: TaskUuid,
    reason: Option<&str>,
) -> Result<TaskView, OrchestrationError> {
    orchestrator.cancel_task(task, reason).await?;
    get(orchestrator, task, true).await
}

/// Views of `rows`, loading their steps and edges in two queries.
pub(crate) async fn views_of(
    orchestrator: &Orchestrator,
    rows: Vec<TaskRow>,
    with_steps: bool,
) -> Result<Vec<TaskView>, OrchestrationError> {
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

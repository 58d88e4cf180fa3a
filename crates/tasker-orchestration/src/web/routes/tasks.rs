//! `/v1/tasks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tasker_types::api::{ErrorBody, TaskList, TaskListQuery, TaskRequest, TaskView};
use tasker_types::ids::TaskUuid;

use crate::services::tasks;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiQuery, Caller, uuid_param};
use crate::web::state::AppState;

/// Create a task: the graph is written and its ready steps enqueued at once.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = TaskRequest,
    responses(
        (status = 201, description = "Created", body = TaskView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 409, description = "Duplicate task; `details.task_uuid` is the existing one", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Context fails the template's input_schema", body = ErrorBody),
    ))]
pub(crate) async fn create_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let view = tasks::create(&state.orchestrator, &caller, request).await?;
    let location = format!("/v1/tasks/{}", view.task_uuid);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

/// List tasks, newest first, with filters and a cursor.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskListQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<TaskListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    Ok(Json(
        tasks::list(&state.orchestrator, &caller, query).await?,
    ))
}

/// One task with its steps.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}", tag = "tasks",
    params(("task_uuid" = String, Path, description = "The task")),
    responses((status = 200, body = TaskView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(task_uuid): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    Ok(Json(
        tasks::get(&state.orchestrator, &caller, task, true).await?,
    ))
}

/// Why a task is cancelled.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelQuery {
    /// Recorded on every transition.
    reason: Option<String>,
}

/// Cancel a task: its open steps at once, running handlers told.
#[utoipa::path(delete, path = "/v1/tasks/{task_uuid}", tag = "tasks",
    params(("task_uuid" = String, Path, description = "The task"), CancelQuery),
    responses((status = 200, body = TaskView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody)))]
pub(crate) async fn cancel_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(task_uuid): Path<String>,
    ApiQuery(query): ApiQuery<CancelQuery>,
) -> Result<Json<TaskView>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    Ok(Json(
        tasks::cancel(&state.orchestrator, &caller, task, query.reason.as_deref()).await?,
    ))
}

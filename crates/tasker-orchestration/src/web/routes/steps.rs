//! `/v1/tasks/{task_uuid}/workflow_steps`.

use axum::Json;
use axum::extract::{Path, State};
use tasker_types::api::{ErrorBody, StepActionRequest, StepAudit, StepView};
use tasker_types::ids::{StepUuid, TaskUuid};

use crate::services::steps;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Caller, uuid_param};
use crate::web::state::AppState;

/// Every step of a task, with readiness and results.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps", tag = "steps",
    params(("task_uuid" = String, Path, description = "The task")),
    responses((status = 200, body = Vec<StepView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_steps(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(task_uuid): Path<String>,
) -> Result<Json<Vec<StepView>>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    Ok(Json(steps::list(&state.orchestrator, &caller, task).await?))
}

/// One step.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}", tag = "steps",
    params(("task_uuid" = String, Path, description = "The task"), ("step_uuid" = String, Path, description = "The step")),
    responses((status = 200, body = StepView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_step(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
) -> Result<Json<StepView>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    let step: StepUuid = uuid_param(&step_uuid, "step")?;
    Ok(Json(
        steps::get(&state.orchestrator, &caller, task, step).await?,
    ))
}

/// A step's attempts and state changes.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit", tag = "steps",
    params(("task_uuid" = String, Path, description = "The task"), ("step_uuid" = String, Path, description = "The step")),
    responses((status = 200, body = StepAudit), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn step_audit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
) -> Result<Json<StepAudit>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    let step: StepUuid = uuid_param(&step_uuid, "step")?;
    Ok(Json(
        steps::audit(&state.orchestrator, &caller, task, step).await?,
    ))
}

/// Repair a step: `reset_for_retry` (optionally with new `inputs`),
/// `resolve_manually`, or `complete_manually` with a `result` its dependents
/// receive. Audited with `actor` and `reason`; the task resumes from there.
#[utoipa::path(patch, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}", tag = "steps",
    request_body = StepActionRequest,
    params(("task_uuid" = String, Path, description = "The task"), ("step_uuid" = String, Path, description = "The step")),
    responses(
        (status = 200, description = "The step after the action", body = StepView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The step's or task's state does not allow the action", body = ErrorBody)))]
pub(crate) async fn act_on_step(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
    ApiJson(request): ApiJson<StepActionRequest>,
) -> Result<Json<StepView>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    let step: StepUuid = uuid_param(&step_uuid, "step")?;
    Ok(Json(
        steps::act(&state.orchestrator, &caller, task, step, &request).await?,
    ))
}

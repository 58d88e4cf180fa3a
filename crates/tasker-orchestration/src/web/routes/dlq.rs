//! `/v1/dlq`: investigation records for tasks that need a person.

use axum::Json;
use axum::extract::{Path, State};
use tasker_types::api::ErrorBody;
use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqList, DlqListQuery, DlqStats, DlqUpdate,
};
use tasker_types::ids::{DlqEntryUuid, TaskUuid};

use crate::services::dlq;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiQuery, Caller, uuid_param};
use crate::web::state::AppState;

/// List DLQ entries, newest first, with filters and a cursor.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", params(DlqListQuery),
    responses((status = 200, body = DlqList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_entries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<DlqListQuery>,
) -> Result<Json<DlqList>, ApiError> {
    Ok(Json(dlq::list(&state.orchestrator, &caller, query).await?))
}

/// Counts of DLQ entries by reason and status.
#[utoipa::path(get, path = "/v1/dlq/stats", tag = "dlq",
    responses((status = 200, body = DlqStats)))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<DlqStats>, ApiError> {
    Ok(Json(dlq::stats(&state.orchestrator, &caller).await?))
}

/// Every DLQ entry of one task, newest first.
#[utoipa::path(get, path = "/v1/dlq/task/{task_uuid}", tag = "dlq",
    params(("task_uuid" = String, Path, description = "The task")),
    responses((status = 200, body = Vec<DlqEntryView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn for_task(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(task_uuid): Path<String>,
) -> Result<Json<Vec<DlqEntryView>>, ApiError> {
    let task: TaskUuid = uuid_param(&task_uuid, "task")?;
    Ok(Json(
        dlq::for_task(&state.orchestrator, &caller, task).await?,
    ))
}

/// Record an investigation's outcome (`investigating`, `resolved`,
/// `resolved_manually`, `permanently_failed`, `cancelled`).
#[utoipa::path(patch, path = "/v1/dlq/entry/{entry_uuid}", tag = "dlq", request_body = DlqUpdate,
    params(("entry_uuid" = String, Path, description = "The DLQ entry")),
    responses((status = 200, body = DlqEntryView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The entry is closed, or the change goes backwards", body = ErrorBody)))]
pub(crate) async fn update_entry(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(entry_uuid): Path<String>,
    ApiJson(update): ApiJson<DlqUpdate>,
) -> Result<Json<DlqEntryView>, ApiError> {
    let entry: DlqEntryUuid = uuid_param(&entry_uuid, "DLQ entry")?;
    Ok(Json(
        dlq::update(&state.orchestrator, &caller, entry, update).await?,
    ))
}

/// Resolve every open entry matching a filter at once.
#[utoipa::path(post, path = "/v1/dlq/resolve", tag = "dlq", request_body = DlqBulkResolve,
    responses((status = 200, body = DlqBulkResult), (status = 400, body = ErrorBody),
        (status = 409, description = "A matching entry cannot take that status; none was changed", body = ErrorBody)))]
pub(crate) async fn resolve_matching(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<DlqBulkResolve>,
) -> Result<Json<DlqBulkResult>, ApiError> {
    Ok(Json(
        dlq::resolve_matching(&state.orchestrator, &caller, request).await?,
    ))
}

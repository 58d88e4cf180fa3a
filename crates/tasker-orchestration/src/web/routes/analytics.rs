//! `/v1/analytics`: performance and bottleneck reports over the window
//! that ends now.

use axum::Json;
use axum::extract::State;
use tasker_types::analytics::{AnalyticsQuery, BottleneckReport, PerformanceReport};
use tasker_types::api::ErrorBody;

use crate::services::analytics;
use crate::web::error::ApiError;
use crate::web::extract::{ApiQuery, Caller};
use crate::web::state::AppState;

/// Tasks and step attempts finished in the window: counts, error rate
/// (tasks ended `error` ÷ tasks finished) and duration percentiles
/// (completed tasks end to end; step attempts by handler run time),
/// overall and per template version.
#[utoipa::path(get, path = "/v1/analytics/performance", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = PerformanceReport),
        (status = 400, description = "A window, limit or filter out of bounds", body = ErrorBody)))]
pub(crate) async fn performance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> Result<Json<PerformanceReport>, ApiError> {
    Ok(Json(
        analytics::performance(&state.orchestrator, &caller, query).await?,
    ))
}

/// The slowest templates and steps (by p95), the steps retried most and
/// the steps failing most, in the window.
#[utoipa::path(get, path = "/v1/analytics/bottlenecks", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = BottleneckReport),
        (status = 400, description = "A window, limit or filter out of bounds", body = ErrorBody)))]
pub(crate) async fn bottlenecks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> Result<Json<BottleneckReport>, ApiError> {
    Ok(Json(
        analytics::bottlenecks(&state.orchestrator, &caller, query).await?,
    ))
}

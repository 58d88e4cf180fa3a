//! Health and metrics: public, outside `/v1`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tasker_types::api::HealthReport;

use crate::services::health;
use crate::web::state::AppState;

fn with_status(report: HealthReport) -> (StatusCode, Json<HealthReport>) {
    let status = if report.status == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

/// Basic health: the server answers.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = HealthReport)))]
pub(crate) async fn health(State(state): State<AppState>) -> Json<HealthReport> {
    Json(health::live(&state.health))
}

/// Liveness: the process is up (restart it if this fails).
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = HealthReport)))]
pub(crate) async fn live(State(state): State<AppState>) -> Json<HealthReport> {
    Json(health::live(&state.health))
}

/// Readiness: the database answers, the schema is current, orchestration runs.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = HealthReport), (status = 503, description = "Not ready", body = HealthReport)))]
pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    with_status(health::ready(&state.orchestrator, &state.health).await)
}

/// Readiness plus pool and queue details.
#[utoipa::path(get, path = "/health/detailed", tag = "health",
    responses((status = 200, body = HealthReport), (status = 503, description = "Not ready", body = HealthReport)))]
pub(crate) async fn detailed(State(state): State<AppState>) -> impl IntoResponse {
    with_status(health::detailed(&state.orchestrator, &state.health).await)
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    tasker_telemetry::metrics::export_breakers(state.orchestrator.breakers());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

//! The REST API (SPEC §8.1). Routes are registered through
//! `utoipa_axum::OpenApiRouter`, so a route cannot exist without its OpenAPI
//! entry; the document is served at `/api-docs/openapi.json` and browsed at
//! `/api-docs/ui` (Swagger UI, embedded in the binary).

mod common_responses;
mod error;
mod extract;
mod routes;
mod security;
mod state;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tasker_telemetry::propagation;
use tracing::Instrument as _;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use error::ApiError;
pub use extract::parse_json;

use crate::backpressure::Intake;
use crate::services::error::ServiceError;
pub use state::AppState;

/// The API's top-level OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tasker API",
        description = "Create and inspect workflow tasks, steps and templates. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`. With `[auth] enabled = true` every `/v1` route needs a bearer JWT or an `X-API-Key` holding the permission it names (401 without valid credentials, 403 without the permission); health, metrics and this document stay public.",
        license(name = "MIT")
    ),
    tags(
        (name = "tasks", description = "Tasks: runs of a template"),
        (name = "steps", description = "The workflow steps of a task"),
        (name = "templates", description = "Versioned task templates"),
        (name = "dlq", description = "Tasks that need a person: investigation records"),
        (name = "analytics", description = "Throughput, durations and bottlenecks over a window"),
        (name = "health", description = "Health and metrics")
    )
)]
struct ApiDoc;

/// The routes and their OpenAPI document.
pub fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            routes::tasks::create_task,
            routes::tasks::list_tasks
        ))
        .routes(routes!(routes::tasks::get_task, routes::tasks::cancel_task))
        .routes(routes!(routes::steps::list_steps))
        .routes(routes!(routes::steps::get_step, routes::steps::act_on_step))
        .routes(routes!(routes::steps::step_audit))
        .routes(routes!(
            routes::templates::list_templates,
            routes::templates::register_template
        ))
        .routes(routes!(routes::templates::validate_template))
        .routes(routes!(routes::templates::get_template))
        .routes(routes!(routes::dlq::list_entries))
        .routes(routes!(routes::dlq::stats))
        .routes(routes!(routes::dlq::for_task))
        .routes(routes!(routes::dlq::update_entry))
        .routes(routes!(routes::dlq::resolve_matching))
        .routes(routes!(routes::analytics::performance))
        .routes(routes!(routes::analytics::bottlenecks))
        .routes(routes!(routes::health::health))
        .routes(routes!(routes::health::live))
        .routes(routes!(routes::health::ready))
        .routes(routes!(routes::health::detailed))
        .routes(routes!(routes::health::metrics))
        .split_for_parts();
    let mut openapi = openapi;
    security::declare(&mut openapi);
    common_responses::declare(&mut openapi);
    (router, openapi)
}

/// The complete application: the API, its documents, limits and metrics.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api_router();
    api.merge(SwaggerUi::new("/api-docs/ui").url("/api-docs/openapi.json", openapi))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn unknown_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route; see /api-docs/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Refuses `/v1` requests while a circuit breaker is not closed (503 with
/// `Retry-After`; health, metrics and the documents stay served), and
/// feeds the database breaker with the outages requests run into.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    if let Some(refusal) = state.orchestrator.refusal(Intake::Other) {
        return ApiError::from(ServiceError::refused(&refusal)).into_response();
    }
    let response = next.run(request).await;
    if response.extensions().get::<error::OutageSeen>().is_some()
        && state.orchestrator.breakers().database.failed()
    {
        tracing::warn!(
            "database circuit breaker opened: the API answers 503 until PostgreSQL is back"
        );
    }
    response
}

/// Times every request out after the configured limit and records its
/// count and duration by route template (never by raw path, so ids do not
/// explode the label set).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // The request's span continues the caller's trace (a W3C `traceparent`
    // header); a task created under it stores that trace.
    let span = tracing::info_span!("http.request", http.method = %method, http.route = %route,
        http.status = tracing::field::Empty);
    let incoming = request.headers().get(propagation::HEADER);
    propagation::continue_trace(
        &span,
        propagation::from_header(incoming.map(|v| v.as_bytes())),
    );
    let started = Instant::now();
    let running = tokio::time::timeout(state.web.request_timeout, next.run(request));
    let response = match running.instrument(span.clone()).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retry shortly",
        )
        .into_response(),
    };
    let status = response.status().as_u16().to_string();
    span.record("http.status", status.as_str());
    metrics::counter!("tasker_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("tasker_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

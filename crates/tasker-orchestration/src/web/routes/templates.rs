//! `/v1/templates`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tasker_types::api::{
    ErrorBody, TemplateDetail, TemplateRegistration, TemplateSummary, ValidationReport,
};

use crate::services::templates;
use crate::web::error::ApiError;
use crate::web::extract::{ApiQuery, Caller, TemplateBody};
use crate::web::state::AppState;

/// Filters of the template listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateQuery {
    /// Only this namespace.
    namespace: Option<String>,
}

/// Registered templates.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", params(TemplateQuery),
    responses((status = 200, body = Vec<TemplateSummary>), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_templates(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<TemplateQuery>,
) -> Result<Json<Vec<TemplateSummary>>, ApiError> {
    Ok(Json(
        templates::list(&state.orchestrator, &caller, query.namespace.as_deref()).await?,
    ))
}

/// Register a template (YAML or JSON body). The same content again is a
/// no-op (200); different content under an existing version is refused (409).
#[utoipa::path(post, path = "/v1/templates", tag = "templates",
    request_body(content = Object, description = "The template, as YAML (`application/yaml`) or JSON",
        content_type = "application/yaml"),
    responses(
        (status = 201, description = "Registered", body = TemplateRegistration),
        (status = 200, description = "Already registered with the same content", body = TemplateRegistration),
        (status = 400, description = "Invalid template; `details.errors` lists every problem", body = ErrorBody),
        (status = 409, description = "Different content under this version", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(crate) async fn register_template(
    State(state): State<AppState>,
    Caller(caller): Caller,
    TemplateBody(source): TemplateBody,
) -> Result<impl IntoResponse, ApiError> {
    let registration = templates::register(&state.orchestrator, &caller, source).await?;
    let status = if registration.status == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(registration)))
}

/// Validate a template without registering it.
#[utoipa::path(post, path = "/v1/templates/validate", tag = "templates",
    request_body(content = Object, description = "The template, as YAML or JSON", content_type = "application/yaml"),
    responses((status = 200, description = "The verdict, with every problem", body = ValidationReport),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(crate) async fn validate_template(
    Caller(caller): Caller,
    TemplateBody(source): TemplateBody,
) -> Result<Json<ValidationReport>, ApiError> {
    Ok(Json(templates::validate(&caller, source)?))
}

/// One registered template.
#[utoipa::path(get, path = "/v1/templates/{namespace}/{name}/{version}", tag = "templates",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = TemplateDetail), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_template(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> Result<Json<TemplateDetail>, ApiError> {
    Ok(Json(
        templates::get(&state.orchestrator, &caller, &namespace, &name, &version).await?,
    ))
}

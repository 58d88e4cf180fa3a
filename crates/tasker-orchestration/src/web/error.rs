//! One error type for every REST response that is not a success, rendered
//! as SPEC §8.1's `{"error": {"code", "message", "details"}}` with an honest
//! status. 4xx say what was wrong; 5xx say nothing internal but carry an id
//! that is also in the server log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tasker_db::DbError;
use tasker_types::api::{ErrorBody, ErrorDetail};

use crate::error::OrchestrationError;
use crate::services::templates::issues;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    /// An error with `status`, a stable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// The same error with structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 with code `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn internal(err: &dyn std::fmt::Display) -> Self {
        let id = uuid::Uuid::now_v7();
        tracing::error!(error_id = %id, error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (error id {id}); see the server log"),
        )
        .with_details(json!({ "error_id": id }))
    }

    fn unavailable(err: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "request failed on a transient error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is temporarily unavailable; retry shortly",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<OrchestrationError> for ApiError {
    fn from(err: OrchestrationError) -> Self {
        use OrchestrationError as E;
        match err {
            E::TemplateNotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "template_not_found", err.to_string())
            }
            E::TaskNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "task_not_found", err.to_string())
            }
            E::StepNotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "step_not_found", err.to_string())
            }
            E::InvalidContext { ref violations } => {
                let details = json!({ "violations": violations });
                Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "schema_mismatch",
                    err.to_string(),
                )
                .with_details(details)
            }
            E::AlreadyFinished { state, .. } => {
                Self::new(StatusCode::CONFLICT, "already_finished", err.to_string())
                    .with_details(json!({ "state": state }))
            }
            E::InvalidTemplate(ref errors) => {
                Self::bad_request("invalid_template", err.to_string())
                    .with_details(json!({ "errors": issues(errors) }))
            }
            E::BadRequest(message) => Self::bad_request("bad_request", message),
            E::StepActionRefused { state, .. } => {
                Self::new(StatusCode::CONFLICT, "invalid_step_action", err.to_string())
                    .with_details(json!({ "state": state }))
            }
            E::Db(db) => db.into(),
            E::Messaging(m) if m.is_transient() => Self::unavailable(&m),
            E::Messaging(m) => Self::internal(&m),
            E::Corrupt(_) => Self::internal(&err),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::DuplicateTask { existing } => Self::new(
                StatusCode::CONFLICT,
                "duplicate_task",
                format!("a task with the same identity already exists: {existing}"),
            )
            .with_details(json!({ "task_uuid": existing })),
            DbError::TemplateConflict { .. } => {
                Self::new(StatusCode::CONFLICT, "template_conflict", err.to_string())
            }
            DbError::TemplateNotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "template_not_found", err.to_string())
            }
            DbError::TaskNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "task_not_found", err.to_string())
            }
            DbError::Identity(_) => Self::bad_request("bad_request", err.to_string()),
            DbError::DlqEntryNotFound(_) => Self::new(
                StatusCode::NOT_FOUND,
                "dlq_entry_not_found",
                err.to_string(),
            ),
            DbError::DlqStatusConflict { from, .. } => {
                Self::new(StatusCode::CONFLICT, "dlq_status_conflict", err.to_string())
                    .with_details(json!({ "status": from }))
            }
            DbError::TransitionConflict { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            ref e if e.is_transient() => Self::unavailable(e),
            other => Self::internal(&other),
        }
    }
}

//! One error type for every REST response that is not a success, rendered
//! as SPEC §8.1's `{"error": {"code", "message", "details"}}` with an honest
//! status. Service failures arrive as a [`ServiceError`] whose kind picks
//! the status ([`status_of`]); the few errors only HTTP has (body too large,
//! unknown route, wrong method, request timeout) are made here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tasker_types::api::{ErrorBody, ErrorDetail};

use crate::error::OrchestrationError;
use crate::services::error::{ErrorKind, ServiceError};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after: Option<u64>,
    outage: bool,
    close: bool,
}

/// Marks a response whose request found PostgreSQL not answering, so the
/// guard middleware can feed the database breaker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutageSeen;

impl ApiError {
    /// An error with `status`, a stable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
            outage: false,
            close: false,
        }
    }

    /// The same error, closing the connection after it (a body that was
    /// not read to its end cannot be followed by another request).
    #[must_use]
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry =
            (self.status == StatusCode::SERVICE_UNAVAILABLE).then(|| self.retry_after.unwrap_or(1));
        let outage = self.outage;
        let close = self.close;
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if outage {
            response.extensions_mut().insert(OutageSeen);
        }
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tasker\""),
            );
        }
        response
    }
}

/// The one place a service failure's kind becomes an HTTP status.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let mut api = Self::new(status_of(err.kind()), err.code(), err.message())
            .with_details(err.details().clone());
        api.retry_after = err.retry_after();
        api.outage = err.is_outage();
        api
    }
}

impl From<OrchestrationError> for ApiError {
    fn from(err: OrchestrationError) -> Self {
        ServiceError::from(err).into()
    }
}

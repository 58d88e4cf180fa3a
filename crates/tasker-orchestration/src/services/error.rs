//! The one error every service returns and every adapter renders: a kind
//! (which REST maps to a status and gRPC to a code), a stable machine code,
//! a message for people and structured details. Each failure is classified
//! here, once; adapters only translate the kind.

use serde_json::{Value, json};
use tasker_db::DbError;
use tasker_messaging::MessagingError;
use tasker_types::breaker::Outage;

use crate::error::OrchestrationError;
use crate::services::templates::issues;

/// What sort of failure it is: the part adapters translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with what exists (duplicate, wrong state).
    Conflict,
    /// The request is malformed; the message says which field and why.
    Invalid,
    /// Well formed, but the content breaks a declared schema.
    Unprocessable,
    /// A transient failure: retry shortly.
    Unavailable,
    /// No credentials, or credentials that do not check out.
    Unauthorized,
    /// Valid credentials without the permission the operation needs.
    Forbidden,
    /// A bug or an unexpected failure; details are in the server log.
    Internal,
}

impl ErrorKind {
    /// The kind's name, as tests and logs spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Why a service call failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    kind: ErrorKind,
    code: &'static str,
    message: String,
    details: Value,
    /// Seconds the caller should wait before retrying (503s).
    retry_after: Option<u64>,
    /// PostgreSQL did not answer (the adapter feeds the breaker).
    outage: bool,
}

impl ServiceError {
    /// An error of `kind` with a stable `code` and a message for people.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
            outage: false,
        }
    }

    /// A request refused by backpressure or an open breaker (SPEC §12):
    /// unavailable, with the wait in `Retry-After` and in the details.
    pub fn refused(refusal: &crate::backpressure::Refusal) -> Self {
        let seconds = refusal.retry_after_seconds();
        let mut err = Self::new(
            ErrorKind::Unavailable,
            refusal.code,
            refusal.message.clone(),
        )
        .with_details(json!({ "retry_after_seconds": seconds }));
        err.retry_after = Some(seconds);
        err
    }

    /// Seconds to wait before retrying, when the service says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// Whether PostgreSQL failed to answer.
    pub fn is_outage(&self) -> bool {
        self.outage
    }

    /// The same error with structured details (an object).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A malformed request (`bad_request`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, "bad_request", message)
    }

    /// Missing or bad credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    /// An unexpected failure: logged with an id the caller is given, so the
    /// two can be matched without the caller learning internals.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        let id = uuid::Uuid::now_v7();
        tracing::error!(error_id = %id, error = %err, "request failed");
        Self::new(
            ErrorKind::Internal,
            "internal",
            format!("internal error (error id {id}); see the server log"),
        )
        .with_details(json!({ "error_id": id }))
    }

    /// A transient failure of the database or queue.
    pub fn unavailable(err: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "request failed on a transient error");
        Self::new(
            ErrorKind::Unavailable,
            "unavailable",
            "the database is temporarily unavailable; retry shortly",
        )
    }

    /// What sort of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details (an object, possibly empty).
    pub fn details(&self) -> &Value {
        &self.details
    }
}

impl From<OrchestrationError> for ServiceError {
    fn from(err: OrchestrationError) -> Self {
        use ErrorKind as K;
        use OrchestrationError as E;
        match err {
            E::TemplateNotFound { .. } => {
                Self::new(K::NotFound, "template_not_found", err.to_string())
            }
            E::TaskNotFound(_) => Self::new(K::NotFound, "task_not_found", err.to_string()),
            E::StepNotFound { .. } => Self::new(K::NotFound, "step_not_found", err.to_string()),
            E::InvalidContext { ref violations } => {
                let details = json!({ "violations": violations });
                Self::new(K::Unprocessable, "schema_mismatch", err.to_string())
                    .with_details(details)
            }
            E::AlreadyFinished { state, .. } => {
                Self::new(K::Conflict, "already_finished", err.to_string())
                    .with_details(json!({ "state": state }))
            }
            E::InvalidTemplate(ref errors) => {
                Self::new(K::Invalid, "invalid_template", err.to_string())
                    .with_details(json!({ "errors": issues(errors) }))
            }
            E::BadRequest(message) => Self::invalid(message),
            E::StepActionRefused { state, .. } => {
                Self::new(K::Conflict, "invalid_step_action", err.to_string())
                    .with_details(json!({ "state": state }))
            }
            E::Db(db) => db.into(),
            E::Messaging(MessagingError::CircuitOpen { retry_after }) => {
                Self::refused(&crate::backpressure::Refusal {
                    code: "circuit_open",
                    message:
                        "the queue provider is unavailable (circuit breaker open); retry shortly"
                            .into(),
                    retry_after,
                })
            }
            E::Messaging(m) if m.is_transient() => {
                let mut err = Self::unavailable(&m);
                err.outage = m.is_database_outage();
                err
            }
            E::Messaging(m) => Self::internal(&m),
            E::Corrupt(_) => Self::internal(&err),
        }
    }
}

impl From<DbError> for ServiceError {
    fn from(err: DbError) -> Self {
        use ErrorKind as K;
        match err {
            DbError::DuplicateTask { existing } => Self::new(
                K::Conflict,
                "duplicate_task",
                format!("a task with the same identity already exists: {existing}"),
            )
            .with_details(json!({ "task_uuid": existing })),
            DbError::TemplateConflict { .. } => {
                Self::new(K::Conflict, "template_conflict", err.to_string())
            }
            DbError::TemplateNotFound { .. } => {
                Self::new(K::NotFound, "template_not_found", err.to_string())
            }
            DbError::TaskNotFound(_) => Self::new(K::NotFound, "task_not_found", err.to_string()),
            DbError::Identity(_) | DbError::InvalidText(_) => Self::invalid(err.to_string()),
            DbError::DlqEntryNotFound(_) => {
                Self::new(K::NotFound, "dlq_entry_not_found", err.to_string())
            }
            DbError::DlqStatusConflict { from, .. } => {
                Self::new(K::Conflict, "dlq_status_conflict", err.to_string())
                    .with_details(json!({ "status": from }))
            }
            DbError::TransitionConflict { .. } => {
                Self::new(K::Conflict, "conflict", err.to_string())
            }
            ref e if e.is_transient() => {
                let mut unavailable = Self::unavailable(e);
                unavailable.outage = e.is_outage();
                unavailable
            }
            other => Self::internal(&other),
        }
    }
}

impl From<MessagingError> for ServiceError {
    fn from(err: MessagingError) -> Self {
        OrchestrationError::Messaging(err).into()
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        DbError::from(err).into()
    }
}

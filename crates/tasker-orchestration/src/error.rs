//! Orchestration errors: what a caller (the API, the CLI, a test) can act on.

use tasker_db::DbError;
use tasker_messaging::MessagingError;
use tasker_types::breaker::Outage;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::schema::SchemaViolation;
use tasker_types::state::{StepState, TaskState};
use tasker_types::template::TemplateErrors;

/// Why an orchestration operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OrchestrationError {
    /// No template matches the request.
    #[error("no template {namespace}/{name}{}", version.as_ref().map(|v| format!("@{v}")).unwrap_or_default())]
    TemplateNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Requested version.
        version: Option<String>,
    },
    /// The context breaks the template's `input_schema`.
    #[error("context does not match the template's input_schema: {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidContext {
        /// Each violation, with the path of the failing field.
        violations: Vec<SchemaViolation>,
    },
    /// No such task.
    #[error("task {0} not found")]
    TaskNotFound(TaskUuid),
    /// No such step in that task.
    #[error("step {step} not found in task {task}")]
    StepNotFound {
        /// The task.
        task: TaskUuid,
        /// The step.
        step: StepUuid,
    },
    /// A template is invalid; every problem is listed.
    #[error("{0}")]
    InvalidTemplate(TemplateErrors),
    /// A request is malformed in a way the types cannot express.
    #[error("{0}")]
    BadRequest(String),
    /// The task has already finished.
    #[error("task {task} is already {state}")]
    AlreadyFinished {
        /// The task.
        task: TaskUuid,
        /// Its terminal state.
        state: TaskState,
    },
    /// An operator action that the step's state does not allow.
    #[error("cannot {action} step {step} (it is {state}): {message}")]
    StepActionRefused {
        /// The step.
        step: StepUuid,
        /// The action.
        action: &'static str,
        /// The step's state.
        state: StepState,
        /// Why, and what to do instead.
        message: String,
    },
    /// A database failure (including duplicates and conflicts).
    #[error(transparent)]
    Db(#[from] DbError),
    /// A queue failure.
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    /// A stored value that does not parse.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for OrchestrationError {
    fn from(err: sqlx::Error) -> Self {
        OrchestrationError::Db(err.into())
    }
}

/// PostgreSQL did not answer: a database outage, or a PGMQ call (which is
/// PostgreSQL) that did not. A broker's outage is the messaging breaker's.
impl Outage for OrchestrationError {
    fn is_outage(&self) -> bool {
        match self {
            OrchestrationError::Db(err) => err.is_outage(),
            OrchestrationError::Messaging(err) => err.is_database_outage(),
            _ => false,
        }
    }
}

//! Database errors, sorted into what a caller can act on: domain outcomes
//! (a conflict, a duplicate, a missing row) and infrastructure failures,
//! transient or not, so callers retry without parsing strings.

use tasker_types::breaker::Outage;
use tasker_types::dlq::DlqStatus;
use tasker_types::identity::IdentityError;
use tasker_types::ids::{DlqEntryUuid, StepUuid, TaskUuid};
use tasker_types::state::InvalidTransition;
use uuid::Uuid;

/// Why a database operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The requested event is not allowed from the expected state; nothing was written.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The compare-and-set found the row in another state (or attempt); nothing was written.
    #[error("{entity} {uuid} is no longer `{expected_state}`{attempt}; the transition was not applied", attempt = expected_attempt.map(|a| format!(" at attempt {a}")).unwrap_or_default())]
    TransitionConflict {
        /// `"task"` or `"step"`.
        entity: &'static str,
        /// The row.
        uuid: Uuid,
        /// The state the writer expected.
        expected_state: &'static str,
        /// The attempt the writer expected (steps).
        expected_attempt: Option<u32>,
    },
    /// A task with the same identity exists (SPEC §4.8).
    #[error("a task with the same identity already exists: {existing}")]
    DuplicateTask {
        /// The existing task.
        existing: TaskUuid,
    },
    /// The request cannot be given an identity.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Different content is already registered under this template version.
    #[error(
        "template {namespace}/{name}@{version} is already registered with different content; bump the version to change it"
    )]
    TemplateConflict {
        /// Namespace.
        namespace: String,
        /// Template name.
        name: String,
        /// Version.
        version: String,
    },
    /// No template matches.
    #[error("no template {namespace}/{name}{}", version.as_ref().map(|v| format!("@{v}")).unwrap_or_default())]
    TemplateNotFound {
        /// Namespace.
        namespace: String,
        /// Template name.
        name: String,
        /// Version, when one was asked for.
        version: Option<String>,
    },
    /// No such task.
    #[error("task {0} not found")]
    TaskNotFound(TaskUuid),
    /// No such step.
    #[error("step {0} not found")]
    StepNotFound(StepUuid),
    /// No such DLQ entry.
    #[error("DLQ entry {0} not found")]
    DlqEntryNotFound(DlqEntryUuid),
    /// A DLQ entry cannot move to the status asked for.
    #[error("DLQ entry {entry} is `{from}` and cannot become `{to}`")]
    DlqStatusConflict {
        /// The entry.
        entry: DlqEntryUuid,
        /// Its status.
        from: DlqStatus,
        /// The status asked for.
        to: DlqStatus,
    },
    /// A stored value does not parse (a bug or a manual edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A failure worth retrying: connection loss, pool timeout, serialization
    /// failure, deadlock, server shutting down.
    #[error("transient database failure: {0}")]
    Transient(#[source] sqlx::Error),
    /// Text PostgreSQL cannot store: a NUL character (in a name, or as
    /// `\u0000` in JSON), or bytes that are not valid in the encoding.
    /// The statement failed, so nothing was written.
    #[error("text PostgreSQL cannot store (a NUL character?): {0}")]
    InvalidText(String),
    /// Any other database failure.
    #[error("database failure: {0}")]
    Database(#[source] sqlx::Error),
    /// Installing PGMQ failed.
    #[error("installing pgmq failed: {0}")]
    PgmqInstall(String),
    /// Running migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Transient(_))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        if is_transient(&err) {
            DbError::Transient(err)
        } else if let sqlx::Error::Database(db) = &err
            && db
                .code()
                .is_some_and(|c| INVALID_TEXT_CODES.contains(&c.as_ref()))
        {
            DbError::InvalidText(db.message().to_owned())
        } else {
            DbError::Database(err)
        }
    }
}

/// A transient failure other than contention: PostgreSQL did not answer
/// (connection refused or lost, pool timeout, shutting down, out of
/// connections). Serialization failures and deadlocks are answers.
impl Outage for DbError {
    fn is_outage(&self) -> bool {
        match self {
            DbError::Transient(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|c| !CONTENTION_CODES.contains(&c.as_ref())),
            DbError::Transient(_) => true,
            _ => false,
        }
    }
}

/// SQLSTATEs of text the server refuses to store: invalid byte sequence
/// (a NUL in `text`), untranslatable character (`\u0000` in `jsonb`).
const INVALID_TEXT_CODES: [&str; 2] = ["22021", "22P05"];

/// SQLSTATEs of contention: retry, but the server is up.
const CONTENTION_CODES: [&str; 2] = ["40001", "40P01"];

/// SQLSTATEs that mean "try again": serialization failure, deadlock, admin
/// shutdown, crash shutdown, cannot connect now, too many connections.
const TRANSIENT_CODES: [&str; 6] = ["40001", "40P01", "57P01", "57P02", "57P03", "53300"];

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| TRANSIENT_CODES.contains(&c.as_ref())),
        _ => false,
    }
}

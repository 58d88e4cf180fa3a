//! Worker errors.

use std::path::PathBuf;

use tasker_db::DbError;
use tasker_messaging::MessagingError;
use tasker_types::breaker::Outage;
use tasker_types::template::TemplateErrors;

/// Why the worker could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A queue failure.
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    /// A template file is invalid.
    #[error("{0}")]
    Template(#[from] TemplateErrors),
    /// A name that cannot be a queue (an invalid namespace).
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// A template file or directory could not be read.
    #[error("cannot read templates at {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for WorkerError {
    fn from(err: sqlx::Error) -> Self {
        WorkerError::Db(err.into())
    }
}

/// PostgreSQL did not answer (directly, or under PGMQ).
impl Outage for WorkerError {
    fn is_outage(&self) -> bool {
        match self {
            WorkerError::Db(err) => err.is_outage(),
            WorkerError::Messaging(err) => err.is_database_outage(),
            _ => false,
        }
    }
}

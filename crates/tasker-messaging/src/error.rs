//! Messaging errors.

use tasker_types::messages::QueueName;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The queue has not been created (call `ensure_queue`).
    #[error("queue `{0}` does not exist")]
    QueueNotFound(QueueName),
    /// A failure worth retrying (connection loss, pool timeout, …).
    #[error("transient messaging failure: {0}")]
    Transient(#[source] sqlx::Error),
    /// Any other database failure.
    #[error("messaging failure: {0}")]
    Database(#[source] sqlx::Error),
    /// The provider was shut down.
    #[error("the message queue is closed")]
    Closed,
}

impl MessagingError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MessagingError::Transient(_))
    }
}

impl From<sqlx::Error> for MessagingError {
    fn from(err: sqlx::Error) -> Self {
        let transient = matches!(
            err,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Protocol(_)
        ) || matches!(&err, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| ["40001", "40P01", "57P01", "57P02", "57P03", "53300"].contains(&c.as_ref())));
        if transient {
            MessagingError::Transient(err)
        } else {
            MessagingError::Database(err)
        }
    }
}

//! Messaging errors, the same for every provider: callers branch on what
//! happened (a missing queue, a failure worth retrying), never on which
//! client library reported it.

use tasker_types::messages::QueueName;

/// The underlying cause, kept for logs and `source()` chains.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The queue has not been created (call `ensure_queue`).
    #[error("queue `{0}` does not exist")]
    QueueNotFound(QueueName),
    /// A failure worth retrying: the broker or database is unreachable,
    /// restarting, or out of connections.
    #[error("{provider} is unavailable: {source}")]
    Transient {
        /// The provider (`pgmq`, `rabbitmq`, …).
        provider: &'static str,
        /// What the client library reported.
        #[source]
        source: Cause,
    },
    /// Any other provider failure.
    #[error("{provider} failed: {source}")]
    Provider {
        /// The provider.
        provider: &'static str,
        /// What the client library reported.
        #[source]
        source: Cause,
    },
    /// The provider cannot do what was asked (see `Capabilities`).
    #[error("{provider} does not support {what}")]
    Unsupported {
        /// The provider.
        provider: &'static str,
        /// The missing capability.
        what: &'static str,
    },
    /// The provider was shut down.
    #[error("the message queue is closed")]
    Closed,
}

impl MessagingError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MessagingError::Transient { .. })
    }

    pub(crate) fn transient(provider: &'static str, source: impl Into<Cause>) -> Self {
        MessagingError::Transient {
            provider,
            source: source.into(),
        }
    }

    pub(crate) fn provider(provider: &'static str, source: impl Into<Cause>) -> Self {
        MessagingError::Provider {
            provider,
            source: source.into(),
        }
    }
}

/// PostgreSQL failures (pgmq and the outbox live there) worth retrying:
/// lost connections, pool exhaustion, serialization failures and
/// deadlocks, shutdowns and too many connections.
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
            MessagingError::transient("postgresql", err)
        } else {
            MessagingError::provider("postgresql", err)
        }
    }
}

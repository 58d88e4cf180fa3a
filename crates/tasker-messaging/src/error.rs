//! Messaging errors, the same for every provider: callers branch on what
//! happened (a missing queue, a failure worth retrying), never on which
//! client library reported it.

use std::time::Duration;

use tasker_types::breaker::Outage;
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
    /// The messaging circuit breaker is open: the provider failed
    /// repeatedly just now, so the call was not tried (SPEC §12).
    #[error("the queue provider is unavailable (circuit breaker open); retry in {}s", retry_after.as_secs().max(1))]
    CircuitOpen {
        /// When the breaker next lets a call through.
        retry_after: Duration,
    },
}

impl MessagingError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MessagingError::Transient { .. } | MessagingError::CircuitOpen { .. }
        )
    }

    /// Whether this is PostgreSQL failing to answer (PGMQ and the outbox
    /// live there): what the database breaker counts, where a broker's
    /// outage is the messaging breaker's alone.
    pub fn is_database_outage(&self) -> bool {
        matches!(
            self,
            MessagingError::Transient {
                provider: "postgresql",
                ..
            }
        ) && self.is_outage()
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

/// SQLSTATEs that are contention, not an outage: the server answered.
const CONTENTION_CODES: [&str; 2] = ["40001", "40P01"];

/// A transient failure is an outage unless it is PostgreSQL contention (a
/// serialization failure or deadlock); a breaker's own refusal is not one.
impl Outage for MessagingError {
    fn is_outage(&self) -> bool {
        match self {
            MessagingError::Transient { source, .. } => !matches!(
                source.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::Database(db))
                    if db.code().is_some_and(|c| CONTENTION_CODES.contains(&c.as_ref()))
            ),
            _ => false,
        }
    }
}

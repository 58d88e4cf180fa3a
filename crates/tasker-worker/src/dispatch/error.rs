//! Why a call on the dispatch surface failed.

use tasker_config::ConfigError;

use super::hub::DispatchId;
use crate::error::WorkerError;
use crate::handler::HandlerError;

/// A refused or failed call on an [`super::EmbeddedWorker`].
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// No dispatch has this id: it was never handed out, or it was completed
    /// (or abandoned) already.
    #[error("dispatch {0} is unknown: it was never handed out, or it was completed already")]
    Unknown(DispatchId),
    /// The dispatch's attempt is over — it overran its timeout, its task was
    /// cancelled, its lease was lost, or the worker stopped — and its outcome
    /// was recorded without this completion.
    #[error(
        "dispatch {0} is over (timed out, cancelled, lease lost or worker stopped): \
         this completion is refused and the step's recorded outcome stands"
    )]
    Expired(DispatchId),
    /// More steps were queued for the foreign runtime than the worker's
    /// concurrency allows (a bug: each executor queues at most one).
    #[error("the dispatch queue is full ({0} steps): more than the worker's concurrency")]
    QueueFull(usize),
    /// The worker has stopped: nothing more will be dispatched.
    #[error("the worker has stopped")]
    Stopped,
    /// The worker was started in another process: this one is a `fork()`
    /// of it, and a runtime does not survive a fork.
    #[error(
        "this worker was started in process {started}, but this is process {current} \
         (a fork of it): a worker does not survive fork(); start a new one in the child"
    )]
    Forked {
        /// The process that started the worker.
        started: u32,
        /// This process.
        current: u32,
    },
    /// A checkpoint was not saved (the attempt is no longer current, or the
    /// database is unreachable); the handler should stop or fail.
    #[error("{0}")]
    Checkpoint(HandlerError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The worker could not start or failed while running.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The runtime's threads could not be started.
    #[error("cannot start the worker's runtime: {0}")]
    Runtime(std::io::Error),
}

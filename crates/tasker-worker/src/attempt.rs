//! The runtime's side of one running attempt, shared with its handler
//! through the [`crate::StepContext`].
//!
//! A Rust handler is a future: when its attempt ends (timeout, cancellation,
//! hard stop) the runtime drops it and the work stops. A foreign-language
//! handler runs on a thread or event loop the runtime cannot stop, so it
//! needs two things from the runtime:
//!
//! - **linger**: after its attempt ended, it keeps the attempt's concurrency
//!   slot until it really returns, so a worker whose handlers ignore their
//!   cancel flag stops claiming instead of piling up work nobody runs;
//! - **abandon**: the foreign runtime is going away mid-handler (Ctrl-C in a
//!   handler): give the step back without an outcome; its lease expires
//!   and another worker re-claims it.

use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct AttemptControl {
    lingering: Mutex<Option<oneshot::Receiver<()>>>,
    abandoned: CancellationToken,
}

impl AttemptControl {
    /// Keeps the attempt's slot until `done` fires (or its sender is dropped).
    pub(crate) fn linger_until(&self, done: oneshot::Receiver<()>) {
        *self
            .lingering
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(done);
    }

    /// What the runtime must wait for before it frees the slot, if anything.
    pub(crate) fn take_linger(&self) -> Option<oneshot::Receiver<()>> {
        self.lingering
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Ends the attempt without an outcome.
    pub(crate) fn abandon(&self) {
        self.abandoned.cancel();
    }

    /// Whether [`AttemptControl::abandon`] was called.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.is_cancelled()
    }

    /// Resolves once [`AttemptControl::abandon`] was called.
    pub(crate) async fn abandoned(&self) {
        self.abandoned.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_linger_is_taken_once() {
        let control = AttemptControl::default();
        assert!(control.take_linger().is_none());
        let (done, wait) = oneshot::channel();
        control.linger_until(wait);
        let wait = control.take_linger().unwrap();
        assert!(control.take_linger().is_none());
        done.send(()).unwrap();
        wait.await.unwrap();
    }

    #[tokio::test]
    async fn abandon_wakes_the_waiter() {
        let control = std::sync::Arc::new(AttemptControl::default());
        let waiter = tokio::spawn({
            let control = control.clone();
            async move { control.abandoned().await }
        });
        control.abandon();
        waiter.await.unwrap();
    }
}

//! A circuit breaker in front of a queue provider (SPEC §12): while the
//! provider keeps failing to answer, calls fail fast with
//! [`MessagingError::CircuitOpen`] instead of each waiting out its own
//! timeout; every outcome feeds the breaker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tasker_types::breaker::CircuitBreaker;
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::queue::{Capabilities, Delivery, MessageQueue, QueueDepth, Receipt, Subscription};
use crate::unit::{QueueTx, Staged};

/// `inner`, guarded by `breaker`.
pub struct Guarded {
    inner: Arc<dyn MessageQueue>,
    breaker: CircuitBreaker,
}

impl Guarded {
    /// Puts `breaker` in front of `inner`.
    pub fn new(inner: Arc<dyn MessageQueue>, breaker: CircuitBreaker) -> Self {
        Self { inner, breaker }
    }

    fn admit(&self) -> Result<(), MessagingError> {
        self.breaker
            .admit()
            .map_err(|retry_after| MessagingError::CircuitOpen { retry_after })
    }

    fn record<T>(&self, outcome: Result<T, MessagingError>) -> Result<T, MessagingError> {
        if self.breaker.record(&outcome)
            && let Err(err) = &outcome
        {
            tracing::warn!(provider = self.inner.provider(), error = %err,
                "messaging circuit breaker opened: failing fast until the provider answers again");
        }
        outcome
    }
}

#[async_trait]
impl MessageQueue for Guarded {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError> {
        self.admit()?;
        self.record(self.inner.ensure_queue(queue).await)
    }

    async fn send_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError> {
        self.admit()?;
        self.record(self.inner.send_many(tx, queue, messages, delay).await)
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.admit()?;
        self.record(self.inner.receive(queue, max, visibility).await)
    }

    async fn take_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.admit()?;
        self.record(self.inner.take_in(tx, queue, max, visibility).await)
    }

    async fn ack_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> Result<(), MessagingError> {
        self.admit()?;
        self.record(self.inner.ack_many(tx, queue, receipts).await)
    }

    async fn nack_many(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        delay: Duration,
    ) -> Result<usize, MessagingError> {
        self.admit()?;
        self.record(self.inner.nack_many(queue, receipts, delay).await)
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError> {
        self.admit()?;
        self.record(self.inner.depth(queue).await)
    }

    async fn depths(&self, queues: &[QueueName]) -> Result<Vec<QueueDepth>, MessagingError> {
        self.admit()?;
        self.record(self.inner.depths(queues).await)
    }

    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError> {
        self.admit()?;
        self.record(self.inner.pending(queues).await)
    }

    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError> {
        self.admit()?;
        self.record(self.inner.subscribe(queues).await)
    }

    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError> {
        self.admit()?;
        self.record(self.inner.commit_staged(staged).await)
    }
}

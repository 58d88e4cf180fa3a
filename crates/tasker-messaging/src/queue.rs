//! The [`MessageQueue`] trait every provider implements: receive
//! deliveries, acknowledge them by an opaque [`Receipt`], send inside a
//! unit of work ([`QueueTx`]).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::unit::{QueueTx, Staged};

/// The handle that acknowledges one delivery. Opaque: only the provider
/// that issued it knows what it means (a pgmq message id, a RabbitMQ
/// delivery tag on one channel). A receipt the provider no longer holds —
/// acknowledged already, expired, or from a connection that was lost — is
/// ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Receipt {
    /// Which connection (or generation) issued it; 0 for providers whose
    /// receipts outlive connections.
    pub(crate) epoch: u64,
    /// The provider's id for the delivery.
    pub(crate) tag: i64,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.tag)
    }
}

/// A message handed to one receiver. Until it is acknowledged, or until
/// its visibility passes, no other receiver gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// What acknowledges (or returns) it.
    pub receipt: Receipt,
    /// The payload (a pointer message).
    pub payload: Value,
    /// How many times it has been delivered, this delivery included. A
    /// broker that only flags redeliveries reports 2 for any of them, so
    /// treat this as a lower bound.
    pub delivery_count: u32,
}

/// What a provider can do beyond the common contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Sends in a joined [`QueueTx`] commit or vanish with the caller's
    /// transaction (pgmq, and any provider behind the outbox). Without it a
    /// joined send is staged and applied by `commit_staged`.
    pub transactional_send: bool,
    /// Sends may carry a delay. Without it a delayed send is refused with
    /// [`MessagingError::Unsupported`].
    pub delayed_send: bool,
}

/// How many messages a queue holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Every message: ready, delivered and unacknowledged, or delayed
    /// (as far as the provider can see).
    pub total: u64,
    /// Messages a receiver could take now.
    pub visible: u64,
}

/// Why a subscriber woke up. Either way, a consumer should drain its queues:
/// wake-ups merge and may be lost, so they say "look", not "how many".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeUp {
    /// Something arrived in this queue.
    Sent(QueueName),
    /// The subscription lost its connection or fell behind and may have
    /// missed wake-ups: check every queue.
    MaybeMissed,
}

/// A stream of wake-ups for a set of queues.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next wake-up. Cancel-safe: dropping the future loses nothing.
    ///
    /// # Errors
    /// [`MessagingError`] when the subscription cannot continue.
    async fn wait(&mut self) -> Result<WakeUp, MessagingError>;
}

/// The fallback (or only) poll of a consumer: a timer that ticks every
/// period, or never (event-driven mode).
#[derive(Debug)]
pub struct PollTimer(Option<tokio::time::Interval>);

impl PollTimer {
    /// Ticks every `period`, or never for `None`. A tick missed while busy
    /// is delayed, not bunched.
    pub fn new(period: Option<Duration>) -> Self {
        Self(period.map(|p| {
            let mut interval = tokio::time::interval(p);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        }))
    }

    /// Waits for the next tick. Cancel-safe.
    pub async fn tick(&mut self) {
        match &mut self.0 {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// A message queue provider (SPEC §6): pgmq, RabbitMQ and in-memory, all
/// passing one conformance suite.
///
/// Queue names are validated [`QueueName`]s; messages are small JSON
/// pointers. Delivery is at least once: a delivery not acknowledged within
/// its visibility is delivered again (to this or another receiver), and a
/// receiver that dies hands back what it held. A provider may bound how
/// many deliveries one process holds unacknowledged (RabbitMQ's prefetch),
/// so receivers acknowledge or hand back promptly.
#[async_trait]
pub trait MessageQueue: Send + Sync + 'static {
    /// The provider's name (`pgmq`, `rabbitmq`, `in_memory`).
    fn provider(&self) -> &'static str;

    /// What it can do beyond the common contract.
    fn capabilities(&self) -> Capabilities;

    /// Creates `queue` if it does not exist.
    ///
    /// # Errors
    /// [`MessagingError`] when the provider refuses or is unreachable.
    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError>;

    /// Sends `messages` to `queue` as part of `tx`; each becomes receivable
    /// `delay` after the send takes effect. Subscribers of `queue` are woken
    /// when it does (delayed sends wake them when due, or not at all).
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured (here or
    /// at `commit_staged`); [`MessagingError::Unsupported`] for a delay the
    /// provider cannot honour.
    async fn send_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError>;

    /// Receives up to `max` messages ready now, without waiting, each held
    /// for this receiver for `visibility` unless acknowledged or returned.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError>;

    /// Receives up to `max` messages for a consumer whose every effect
    /// commits in `tx`, and acknowledges them as part of `tx`: a provider
    /// that joins it (pgmq) takes them there, so they are gone when `tx`
    /// commits and back at once when it rolls back. Others receive them and
    /// stage the acknowledgement for `commit_staged`; after a rollback they
    /// return when `visibility` passes.
    ///
    /// Only for consumers whose crash loses nothing: the database state they
    /// change is the real record (a worker's claim, a result applied).
    ///
    /// # Errors
    /// As [`MessageQueue::receive`].
    async fn take_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let taken = self.receive(queue, max, visibility).await?;
        let receipts: Vec<Receipt> = taken.iter().map(|d| d.receipt).collect();
        self.ack_many(tx, queue, &receipts).await?;
        Ok(taken)
    }

    /// Acknowledges deliveries as part of `tx`: they are never delivered
    /// again. Receipts the provider no longer holds are ignored.
    ///
    /// # Errors
    /// [`MessagingError`] on provider failure.
    async fn ack_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> Result<(), MessagingError>;

    /// Hands deliveries back, to be delivered again `delay` from now (a
    /// backoff for messages that could not be processed). Returns how many
    /// of `receipts` it still held; the rest are ignored.
    ///
    /// # Errors
    /// [`MessagingError`] on provider failure.
    async fn nack_many(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        delay: Duration,
    ) -> Result<usize, MessagingError>;

    /// How many messages `queue` holds.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError>;

    /// [`MessageQueue::depth`] of each of `queues`, in order — for metrics,
    /// in as few round trips as the provider allows (one for PGMQ).
    ///
    /// # Errors
    /// As [`MessageQueue::depth`], for the first queue that fails.
    async fn depths(&self, queues: &[QueueName]) -> Result<Vec<QueueDepth>, MessagingError> {
        let mut depths = Vec::with_capacity(queues.len());
        for queue in queues {
            depths.push(self.depth(queue).await?);
        }
        Ok(depths)
    }

    /// Which of `queues` have a message to receive now, cheaply (one round
    /// trip, or none), so an idle poll over many queues stays cheap. A hint:
    /// a queue named here may be empty by the time it is received from.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError>;

    /// Subscribes to wake-ups for `queues`.
    ///
    /// # Errors
    /// [`MessagingError`] when the subscription cannot be set up.
    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError>;

    /// Applies what a [`QueueTx`] staged. Call after the caller's own
    /// transaction committed (or at once for a standalone unit of work).
    ///
    /// # Errors
    /// [`MessagingError`] on provider failure; the operations may then be
    /// partly applied. Unsent pointers are recovered by the outbox relay
    /// (for providers behind it) or the re-drive sweep; unacknowledged
    /// deliveries come back, and consumers are idempotent.
    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError>;
}

/// Refuses a delay the provider cannot honour.
///
/// # Errors
/// [`MessagingError::Unsupported`] for a non-zero delay without `delayed_send`.
pub(crate) fn check_delay(
    provider: &(impl MessageQueue + ?Sized),
    delay: Duration,
) -> Result<(), MessagingError> {
    if delay.is_zero() || provider.capabilities().delayed_send {
        Ok(())
    } else {
        Err(MessagingError::Unsupported {
            provider: provider.provider(),
            what: "delayed sends",
        })
    }
}

/// Applies `staged` once the caller's transaction has committed, logging
/// rather than returning a failure: the committed state is the record, so
/// the operation succeeded, and whatever did not go out now is recovered —
/// outbox rows by the outbox sweep, lost pointers by the re-drive sweep,
/// unacknowledged deliveries by their return (consumers ignore duplicates).
/// Returns whether everything was applied.
pub async fn settle_after_commit(queue_provider: &dyn MessageQueue, staged: Staged) -> bool {
    if staged.is_empty() {
        return true;
    }
    match queue_provider.commit_staged(staged).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(provider = queue_provider.provider(), error = %err,
                "committed, but the queue did not take every send or acknowledgement; the sweeps will recover them");
            false
        }
    }
}

/// Sends `messages` at once, outside any caller transaction.
///
/// # Errors
/// As [`MessageQueue::send_many`] and [`MessageQueue::commit_staged`].
pub async fn send_now(
    queue_provider: &dyn MessageQueue,
    queue: &QueueName,
    messages: &[Value],
    delay: Duration,
) -> Result<(), MessagingError> {
    let mut tx = QueueTx::standalone();
    queue_provider
        .send_many(&mut tx, queue, messages, delay)
        .await?;
    queue_provider.commit_staged(tx.into_staged()).await
}

/// Acknowledges deliveries at once, outside any caller transaction.
///
/// # Errors
/// As [`MessageQueue::ack_many`] and [`MessageQueue::commit_staged`].
pub async fn ack_now(
    queue_provider: &dyn MessageQueue,
    queue: &QueueName,
    receipts: &[Receipt],
) -> Result<(), MessagingError> {
    let mut tx = QueueTx::standalone();
    queue_provider.ack_many(&mut tx, queue, receipts).await?;
    queue_provider.commit_staged(tx.into_staged()).await
}

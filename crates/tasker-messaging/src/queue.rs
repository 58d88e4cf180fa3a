//! The [`MessageQueue`] trait every provider implements, and the unit of
//! work ([`QueueTx`]) that sends and deletes belong to.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::messages::QueueName;

use crate::error::MessagingError;

/// A message's id within its queue.
pub type MessageId = i64;

/// A message handed to a reader, hidden from other readers until its
/// visibility timeout passes or it is deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedMessage {
    /// Its id, for `delete_many` and `extend_visibility`.
    pub id: MessageId,
    /// The payload (a pointer message).
    pub payload: Value,
    /// How many times it has been read, this read included.
    pub read_count: u32,
    /// When it was sent.
    pub enqueued_at: DateTime<Utc>,
    /// When it becomes visible again unless deleted or extended.
    pub visible_at: DateTime<Utc>,
}

/// How many messages a queue holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Every message, visible or not.
    pub total: u64,
    /// Messages a reader could take now.
    pub visible: u64,
}

/// Why a subscriber woke up. Either way, a consumer should drain its queues:
/// wake-ups merge and may be lost, so they say "look", not "how many".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeUp {
    /// Something was sent to this queue.
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

/// An operation held back until the caller's unit of work commits.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StagedOp {
    Send {
        queue: QueueName,
        messages: Vec<Value>,
        delay: Duration,
    },
    Delete {
        queue: QueueName,
        ids: Vec<MessageId>,
    },
}

/// The unit of work that sends and deletes belong to.
///
/// - [`QueueTx::join`] puts them inside the caller's PostgreSQL transaction.
///   A provider that lives in that database (pgmq) writes them there, so
///   they commit or roll back with the caller's state changes. A provider
///   that cannot join stages them.
/// - [`QueueTx::standalone`] has no database transaction; every provider
///   stages.
///
/// Staged operations take effect only when the caller hands
/// [`QueueTx::into_staged`] to [`MessageQueue::commit_staged`] — after its
/// own transaction committed. Dropping them is a rollback.
#[derive(Debug)]
pub struct QueueTx<'c> {
    conn: Option<&'c mut PgConnection>,
    staged: Vec<StagedOp>,
}

/// Operations waiting for [`MessageQueue::commit_staged`]. Dropping this
/// value abandons them, as a rollback would.
#[derive(Debug, Default)]
#[must_use = "staged operations take effect only when passed to MessageQueue::commit_staged"]
pub struct Staged(pub(crate) Vec<StagedOp>);

impl Staged {
    /// Whether nothing is waiting (always the case for pgmq in a joined transaction).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These operations followed by `later`'s, for one transaction that
    /// used more than one [`QueueTx`].
    pub fn and(mut self, later: Staged) -> Staged {
        self.0.extend(later.0);
        self
    }
}

impl<'c> QueueTx<'c> {
    /// Joins the caller's PostgreSQL transaction.
    pub fn join(conn: &'c mut PgConnection) -> Self {
        Self {
            conn: Some(conn),
            staged: Vec::new(),
        }
    }

    /// A unit of work with no database transaction.
    pub fn standalone() -> QueueTx<'static> {
        QueueTx {
            conn: None,
            staged: Vec::new(),
        }
    }

    /// The joined transaction, for the caller's own writes in between sends.
    pub fn connection(&mut self) -> Option<&mut PgConnection> {
        self.conn.as_deref_mut()
    }

    pub(crate) fn stage_send(&mut self, queue: &QueueName, messages: &[Value], delay: Duration) {
        self.staged.push(StagedOp::Send {
            queue: queue.clone(),
            messages: messages.to_vec(),
            delay,
        });
    }

    pub(crate) fn stage_delete(&mut self, queue: &QueueName, ids: &[MessageId]) {
        self.staged.push(StagedOp::Delete {
            queue: queue.clone(),
            ids: ids.to_vec(),
        });
    }

    /// Ends the unit of work, releasing the transaction borrow; what was
    /// staged must go to [`MessageQueue::commit_staged`] once the caller's
    /// transaction has committed.
    pub fn into_staged(self) -> Staged {
        Staged(self.staged)
    }
}

/// A message queue provider (SPEC §6): pgmq, in-memory, and later RabbitMQ,
/// all passing one conformance suite.
///
/// Queue names are validated [`QueueName`]s; messages are small JSON
/// pointers. Delivery is at least once: a message read and not deleted
/// before its visibility timeout is delivered again.
#[async_trait]
pub trait MessageQueue: Send + Sync + 'static {
    /// The provider's name (`pgmq`, `in_memory`).
    fn provider(&self) -> &'static str;

    /// Creates `queue` if it does not exist.
    ///
    /// # Errors
    /// [`MessagingError`] when the provider refuses.
    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError>;

    /// Sends `messages` to `queue` as part of `tx`; each becomes visible
    /// `delay` after it is sent. Readers subscribed to `queue` are woken
    /// when the send commits (delayed sends wake no one).
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn send_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError>;

    /// Takes up to `max` visible messages, hiding each for `visibility`.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn read_many(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, MessagingError>;

    /// Like [`MessageQueue::read_many`], but inside `tx` when the provider
    /// can join it (pgmq): the reads then commit with the caller's writes,
    /// and a rollback makes the messages visible again at once. Providers
    /// that cannot join read immediately.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn read_many_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, MessagingError> {
        let _ = tx;
        self.read_many(queue, max, visibility).await
    }

    /// Takes up to `max` visible messages for a consumer whose every effect
    /// commits in `tx`: a provider that joins it (pgmq) deletes them there,
    /// so they are gone when `tx` commits and visible again at once when it
    /// rolls back — no visibility update, no separate delete. Providers that
    /// cannot join read them (hidden for `visibility`) and stage their
    /// deletion for [`MessageQueue::commit_staged`].
    ///
    /// Only for consumers whose crash loses nothing: the database state they
    /// change is the real record, and a rollback hands the messages back.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn take_many_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, MessagingError> {
        read_then_delete(self, tx, queue, max, visibility).await
    }

    /// Deletes messages as part of `tx` (an unknown id is ignored).
    ///
    /// # Errors
    /// [`MessagingError`] on provider failure.
    async fn delete_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        ids: &[MessageId],
    ) -> Result<(), MessagingError>;

    /// Hides messages for `visibility` from now (a reader's lease renewal).
    /// Returns how many of `ids` still existed.
    ///
    /// # Errors
    /// [`MessagingError`] on provider failure.
    async fn extend_visibility(
        &self,
        queue: &QueueName,
        ids: &[MessageId],
        visibility: Duration,
    ) -> Result<usize, MessagingError>;

    /// How many messages `queue` holds.
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError>;

    /// Which of `queues` hold a message a reader could take now, in one
    /// round trip (an idle poll over many queues stays cheap).
    ///
    /// # Errors
    /// [`MessagingError::QueueNotFound`] for a queue never ensured.
    async fn visible(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError>;

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
    /// partly applied, and the caller's recovery (re-sending pointers for
    /// state the database holds) covers the rest.
    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError>;
}

/// [`MessageQueue::take_many_in`] for a provider that cannot join the
/// caller's transaction: read (hidden for `visibility`), then delete as
/// part of `tx` (staged until the caller commits).
///
/// # Errors
/// As [`MessageQueue::read_many_in`] and [`MessageQueue::delete_many`].
pub(crate) async fn read_then_delete<Q: MessageQueue + ?Sized>(
    provider: &Q,
    tx: &mut QueueTx<'_>,
    queue: &QueueName,
    max: usize,
    visibility: Duration,
) -> Result<Vec<ReceivedMessage>, MessagingError> {
    let taken = provider.read_many_in(tx, queue, max, visibility).await?;
    let ids: Vec<MessageId> = taken.iter().map(|m| m.id).collect();
    if !ids.is_empty() {
        provider.delete_many(tx, queue, &ids).await?;
    }
    Ok(taken)
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

/// Deletes messages at once, outside any caller transaction.
///
/// # Errors
/// As [`MessageQueue::delete_many`] and [`MessageQueue::commit_staged`].
pub async fn delete_now(
    queue_provider: &dyn MessageQueue,
    queue: &QueueName,
    ids: &[MessageId],
) -> Result<(), MessagingError> {
    let mut tx = QueueTx::standalone();
    queue_provider.delete_many(&mut tx, queue, ids).await?;
    queue_provider.commit_staged(tx.into_staged()).await
}

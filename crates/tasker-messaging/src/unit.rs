//! The unit of work ([`QueueTx`]) that sends and acknowledgements belong
//! to, and what it hands back when the provider cannot join it ([`Staged`]).

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::messages::QueueName;

use crate::queue::Receipt;

/// An operation held back until the caller's unit of work commits.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StagedOp {
    /// Send these messages.
    Send {
        queue: QueueName,
        messages: Vec<Value>,
        delay: Duration,
    },
    /// Acknowledge these deliveries.
    Ack {
        queue: QueueName,
        receipts: Vec<Receipt>,
    },
    /// Relay these rows of the outbox (written in the caller's transaction).
    Outboxed { ids: Vec<i64> },
}

/// The unit of work that sends and acknowledgements belong to.
///
/// - [`QueueTx::join`] puts them inside the caller's PostgreSQL transaction.
///   A provider with transactional send (pgmq, or any provider behind the
///   outbox) writes them there, so they commit or roll back with the
///   caller's state changes. A provider that cannot join stages them.
/// - [`QueueTx::standalone`] has no database transaction; every provider
///   stages.
///
/// Staged operations take effect only when the caller hands
/// [`QueueTx::into_staged`] to `MessageQueue::commit_staged` — after its
/// own transaction committed. Dropping them is a rollback.
#[derive(Debug)]
pub struct QueueTx<'c> {
    conn: Option<&'c mut PgConnection>,
    staged: Vec<StagedOp>,
}

/// Operations waiting for `MessageQueue::commit_staged`. Dropping this
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

    pub(crate) fn stage(&mut self, op: StagedOp) {
        self.staged.push(op);
    }

    pub(crate) fn stage_send(&mut self, queue: &QueueName, messages: &[Value], delay: Duration) {
        if !messages.is_empty() {
            self.stage(StagedOp::Send {
                queue: queue.clone(),
                messages: messages.to_vec(),
                delay,
            });
        }
    }

    pub(crate) fn stage_ack(&mut self, queue: &QueueName, receipts: &[Receipt]) {
        if !receipts.is_empty() {
            self.stage(StagedOp::Ack {
                queue: queue.clone(),
                receipts: receipts.to_vec(),
            });
        }
    }

    /// Ends the unit of work, releasing the transaction borrow; what was
    /// staged must go to `MessageQueue::commit_staged` once the caller's
    /// transaction has committed.
    pub fn into_staged(self) -> Staged {
        Staged(self.staged)
    }
}

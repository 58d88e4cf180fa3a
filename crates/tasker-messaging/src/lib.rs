//! Tasker's message queues (SPEC §6). Messages are small pointers; the
//! database holds the truth, so every consumer is idempotent.
//!
//! - [`MessageQueue`]: ensure a queue, send and delete inside a caller's
//!   unit of work ([`QueueTx`]), read under a visibility timeout, extend
//!   visibility, measure depth, subscribe to wake-ups.
//! - [`PgmqQueue`]: PGMQ in the same PostgreSQL database; sends join the
//!   caller's transaction and notify subscribers in it.
//! - [`InMemoryQueue`]: in-process, for single-process tests.
//! - [`connect`]: the one place that picks a provider from configuration.
//! - `conformance` (feature `testing`): the suite both pass.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tasker_messaging::{MessageQueue, PgmqQueue, QueueTx};
//! use tasker_types::messages::QueueName;
//!
//! let queues = PgmqQueue::new(pool.clone());
//! let queue = QueueName::worker("payments")?;
//! queues.ensure_queue(&queue).await?;
//!
//! let mut tx = pool.begin().await?;
//! // ... change state with tasker-db on `tx` ...
//! let mut unit = QueueTx::join(&mut tx);
//! queues.send_many(&mut unit, &queue, &[serde_json::json!({"step": 1})], Duration::ZERO).await?;
//! let staged = unit.into_staged(); // empty for pgmq: the send is in `tx`
//! tx.commit().await?;
//! queues.commit_staged(staged).await?;
//! # Ok(()) }
//! ```

mod connect;
mod error;
mod in_memory;
mod pgmq;
mod queue;

#[cfg(feature = "testing")]
pub mod conformance;

pub use connect::connect;
pub use error::MessagingError;
pub use in_memory::InMemoryQueue;
pub use pgmq::{PgmqQueue, channel_for};
pub use queue::{
    MessageId, MessageQueue, PollTimer, QueueDepth, QueueTx, ReceivedMessage, Staged, Subscription,
    WakeUp, delete_now, send_now,
};

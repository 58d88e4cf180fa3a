//! Tasker's message queues (SPEC §6). Messages are small pointers; the
//! database holds the truth, so every consumer is idempotent.
//!
//! - [`MessageQueue`]: ensure a queue; send inside a caller's unit of work
//!   ([`QueueTx`]); receive [`Delivery`]s held for a visibility period and
//!   acknowledge them by [`Receipt`] (or hand them back with a delay);
//!   measure depth; subscribe to wake-ups. [`Capabilities`] say whether
//!   sends join a PostgreSQL transaction and whether they can be delayed.
//! - [`PgmqQueue`]: PGMQ in the same PostgreSQL database; sends and takes
//!   join the caller's transaction and notify subscribers in it.
//! - [`RabbitQueue`]: RabbitMQ, with publisher confirms, prefetch, delay
//!   queues and reconnection.
//! - [`InMemoryQueue`]: in-process, for single-process tests.
//! - [`Outboxed`]: transactional send for a provider without it, through
//!   an outbox table; [`relay_outbox`] sends what a crashed process left.
//! - [`connect`]: the one place that picks a provider from configuration.
//! - `conformance` (feature `testing`): the suite every provider passes.
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
mod guarded;
mod in_memory;
mod outbox;
mod pgmq;
mod queue;
mod rabbitmq;
mod unit;

#[cfg(feature = "testing")]
pub mod conformance;

pub use connect::{connect, connect_guarded};
pub use error::{Cause, MessagingError};
pub use guarded::Guarded;
pub use in_memory::InMemoryQueue;
pub use outbox::{Outboxed, relay_outbox};
pub use pgmq::{PgmqQueue, channel_for};
pub use queue::{
    Capabilities, Delivery, MessageQueue, PollTimer, QueueDepth, Receipt, Subscription, WakeUp,
    ack_now, send_now, settle_after_commit,
};
pub use rabbitmq::{RabbitQueue, RabbitSettings};
pub use unit::{QueueTx, Staged};

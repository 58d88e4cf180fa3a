//! Domain events (SPEC §4.9) on the worker side: what in-process
//! subscribers receive ([`EventSubscription`], the "fast" mode), how the
//! durable stream is read back ([`EventConsumer`]), and what was published
//! and dropped ([`EventStats`]).
//!
//! A step's declared events fire when an attempt's result is recorded:
//! `durable` ones are sent to `<namespace>_domain_events` in the very
//! transaction that records the result (so an event exists exactly when its
//! result does), `fast` ones go to this process's subscribers after the
//! commit, `broadcast` ones both. Publishing never fails a step: a payload
//! that breaks the event's schema, a subscriber that falls behind, or an
//! unreachable queue drops the event and counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tasker_messaging::{MessageQueue, ack_now};
use tasker_types::messages::QueueName;
use tokio::sync::broadcast;

pub use tasker_types::domain_event::{AttemptEnd, DomainEvent};

use crate::error::WorkerError;

/// What a worker published and dropped since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Sent to a `<namespace>_domain_events` queue (committed with their results).
    pub published_durable: u64,
    /// Handed to in-process subscribers.
    pub published_fast: u64,
    /// Dropped: the payload broke the event's declared schema.
    pub dropped_schema: u64,
    /// Dropped: a subscriber fell further behind than `domain_event_capacity`.
    pub dropped_lagged: u64,
    /// Dropped: the durable queue could not be created or reached.
    pub dropped_unavailable: u64,
}

#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    pub(crate) published_durable: AtomicU64,
    pub(crate) published_fast: AtomicU64,
    pub(crate) dropped_schema: AtomicU64,
    pub(crate) dropped_lagged: AtomicU64,
    pub(crate) dropped_unavailable: AtomicU64,
}

impl EventCounters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> EventStats {
        EventStats {
            published_durable: self.published_durable.load(Ordering::Relaxed),
            published_fast: self.published_fast.load(Ordering::Relaxed),
            dropped_schema: self.dropped_schema.load(Ordering::Relaxed),
            dropped_lagged: self.dropped_lagged.load(Ordering::Relaxed),
            dropped_unavailable: self.dropped_unavailable.load(Ordering::Relaxed),
        }
    }
}

/// The in-process bus of fast events.
#[derive(Debug)]
pub(crate) struct EventBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
    pub(crate) counters: Arc<EventCounters>,
}

impl EventBus {
    /// A bus whose subscribers may each fall `capacity` events behind.
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            counters: Arc::new(EventCounters::default()),
        }
    }

    pub(crate) fn subscribe(&self) -> EventSubscription {
        EventSubscription {
            receiver: self.sender.subscribe(),
            counters: self.counters.clone(),
        }
    }

    /// Hands `event` to every current subscriber (none is not an error).
    pub(crate) fn publish(&self, event: DomainEvent) {
        let _ = self.sender.send(Arc::new(event));
        EventCounters::add(&self.counters.published_fast, 1);
    }

    pub(crate) fn stats(&self) -> EventStats {
        self.counters.snapshot()
    }
}

/// Fast domain events of this worker process, from the moment of
/// subscribing, in the order their results were recorded.
#[derive(Debug)]
pub struct EventSubscription {
    receiver: broadcast::Receiver<Arc<DomainEvent>>,
    counters: Arc<EventCounters>,
}

impl EventSubscription {
    /// The next event; `None` once the worker is gone. A subscriber that
    /// fell behind skips the events it missed (counted in
    /// [`EventStats::dropped_lagged`]). Cancel-safe.
    pub async fn recv(&mut self) -> Option<Arc<DomainEvent>> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.counters
                        .dropped_lagged
                        .fetch_add(missed, Ordering::Relaxed);
                    tracing::warn!(
                        missed,
                        "a domain event subscriber fell behind; events dropped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event, waiting on the calling thread (which must not be
    /// an async runtime's: for foreign-language hosts, without their
    /// interpreter lock held); `None` once the worker is gone.
    pub fn blocking_recv(&mut self) -> Option<Arc<DomainEvent>> {
        loop {
            match self.receiver.blocking_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.counters
                        .dropped_lagged
                        .fetch_add(missed, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting now.
    pub fn try_recv(&mut self) -> Option<Arc<DomainEvent>> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                    self.counters
                        .dropped_lagged
                        .fetch_add(missed, Ordering::Relaxed);
                }
                Err(_) => return None,
            }
        }
    }
}

/// Reads a namespace's durable domain events (`<namespace>_domain_events`),
/// oldest first, acknowledging what it returns. Several consumers of one
/// namespace share its events (each event goes to one of them); delivery
/// is at least once, so deduplicate on [`DomainEvent::event_id`].
pub struct EventConsumer {
    queue: Arc<dyn MessageQueue>,
    name: QueueName,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("queue", &self.name)
            .finish_non_exhaustive()
    }
}

impl EventConsumer {
    /// A consumer of `namespace`'s events on `queue` (the queue is created
    /// if no event was published yet).
    ///
    /// # Errors
    /// [`WorkerError::InvalidNamespace`] for an invalid namespace, [`WorkerError::Messaging`]
    /// when the queue cannot be created.
    pub async fn new(queue: Arc<dyn MessageQueue>, namespace: &str) -> Result<Self, WorkerError> {
        let name = QueueName::domain_events(namespace)
            .map_err(|e| WorkerError::InvalidNamespace(e.to_string()))?;
        queue.ensure_queue(&name).await?;
        Ok(Self { queue, name })
    }

    /// Up to `max` events waiting now (empty when none), acknowledged.
    /// A message that is not an event is acknowledged and skipped.
    ///
    /// # Errors
    /// [`WorkerError::Messaging`] when the queue cannot be read.
    pub async fn next_batch(&self, max: usize) -> Result<Vec<DomainEvent>, WorkerError> {
        let deliveries = self
            .queue
            .receive(&self.name, max, Duration::from_secs(30))
            .await?;
        let receipts: Vec<_> = deliveries.iter().map(|d| d.receipt).collect();
        let mut events = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match serde_json::from_value::<DomainEvent>(delivery.payload) {
                Ok(event) => events.push(event),
                Err(err) => {
                    tracing::warn!(queue = %self.name, error = %err, "skipping a message that is not a domain event");
                }
            }
        }
        ack_now(self.queue.as_ref(), &self.name, &receipts).await?;
        Ok(events)
    }
}

//! An in-process provider for tests of a single process. It cannot join a
//! PostgreSQL transaction, so every send and acknowledgement is staged and
//! applied by `commit_staged`, exactly as RabbitMQ's are. Like a broker's,
//! its receipts name one delivery: after a redelivery the old one is ignored.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tasker_types::messages::QueueName;
use tokio::sync::broadcast;

use crate::error::MessagingError;
use crate::queue::{
    Capabilities, Delivery, MessageQueue, QueueDepth, Receipt, Subscription, WakeUp, check_delay,
};
use crate::unit::{QueueTx, Staged, StagedOp};

type MessageId = i64;

#[derive(Debug)]
struct Stored {
    payload: Value,
    visible_at: DateTime<Utc>,
    read_count: u32,
}

impl Stored {
    /// Whether `receipt` names this message's latest delivery.
    fn delivered_as(&self, receipt: &Receipt) -> bool {
        u64::from(self.read_count) == receipt.epoch
    }
}

#[derive(Debug, Default)]
struct Queue {
    next_id: MessageId,
    messages: BTreeMap<MessageId, Stored>,
}

/// Queues in process memory.
#[derive(Clone, Debug)]
pub struct InMemoryQueue {
    queues: Arc<Mutex<HashMap<QueueName, Queue>>>,
    wake: broadcast::Sender<QueueName>,
}

impl InMemoryQueue {
    /// A provider whose subscribers buffer up to `wake_capacity` wake-ups
    /// (beyond that they get [`WakeUp::MaybeMissed`]).
    pub fn new(wake_capacity: usize) -> Self {
        let (wake, _) = broadcast::channel(wake_capacity.max(1));
        Self {
            queues: Arc::new(Mutex::new(HashMap::new())),
            wake,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<QueueName, Queue>> {
        // A poisoned lock means a panic mid-update in a test; the map is
        // still structurally sound, so keep serving it.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn require(&self, queue: &QueueName) -> Result<(), MessagingError> {
        if self.lock().contains_key(queue) {
            Ok(())
        } else {
            Err(MessagingError::QueueNotFound(queue.clone()))
        }
    }
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

#[async_trait]
impl MessageQueue for InMemoryQueue {
    fn provider(&self) -> &'static str {
        "in_memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactional_send: false,
            delayed_send: true,
        }
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError> {
        self.lock().entry(queue.clone()).or_default();
        Ok(())
    }

    async fn send_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError> {
        check_delay(self, delay)?;
        self.require(queue)?;
        tx.stage_send(queue, messages, delay);
        Ok(())
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let now = Utc::now();
        let mut queues = self.lock();
        let q = queues
            .get_mut(queue)
            .ok_or_else(|| MessagingError::QueueNotFound(queue.clone()))?;
        let mut read = Vec::new();
        for (id, stored) in q.messages.iter_mut() {
            if read.len() >= max {
                break;
            }
            if stored.visible_at <= now {
                stored.read_count += 1;
                stored.visible_at = after(now, visibility);
                read.push(Delivery {
                    receipt: Receipt {
                        epoch: u64::from(stored.read_count),
                        tag: *id,
                    },
                    payload: stored.payload.clone(),
                    delivery_count: stored.read_count,
                });
            }
        }
        Ok(read)
    }

    async fn ack_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> Result<(), MessagingError> {
        tx.stage_ack(queue, receipts);
        Ok(())
    }

    async fn nack_many(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        delay: Duration,
    ) -> Result<usize, MessagingError> {
        let until = after(Utc::now(), delay);
        let mut queues = self.lock();
        let q = queues
            .get_mut(queue)
            .ok_or_else(|| MessagingError::QueueNotFound(queue.clone()))?;
        let mut returned = 0;
        for receipt in receipts {
            if let Some(stored) = q.messages.get_mut(&receipt.tag)
                && stored.delivered_as(receipt)
            {
                stored.visible_at = until;
                returned += 1;
            }
        }
        Ok(returned)
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError> {
        let now = Utc::now();
        let queues = self.lock();
        let q = queues
            .get(queue)
            .ok_or_else(|| MessagingError::QueueNotFound(queue.clone()))?;
        let visible = q.messages.values().filter(|m| m.visible_at <= now).count();
        Ok(QueueDepth {
            total: q.messages.len() as u64,
            visible: visible as u64,
        })
    }

    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError> {
        let now = Utc::now();
        let state = self.lock();
        let mut found = Vec::new();
        for queue in queues {
            let q = state
                .get(queue)
                .ok_or_else(|| MessagingError::QueueNotFound(queue.clone()))?;
            if q.messages.values().any(|m| m.visible_at <= now) {
                found.push(queue.clone());
            }
        }
        Ok(found)
    }

    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError> {
        Ok(Box::new(InMemorySubscription {
            receiver: self.wake.subscribe(),
            queues: queues.iter().cloned().collect(),
        }))
    }

    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError> {
        let mut woken = Vec::new();
        {
            let now = Utc::now();
            let mut queues = self.lock();
            for op in staged.0 {
                match op {
                    StagedOp::Send {
                        queue,
                        messages,
                        delay,
                    } => {
                        let q = queues
                            .get_mut(&queue)
                            .ok_or_else(|| MessagingError::QueueNotFound(queue.clone()))?;
                        for payload in messages {
                            q.next_id += 1;
                            q.messages.insert(
                                q.next_id,
                                Stored {
                                    payload,
                                    visible_at: after(now, delay),
                                    read_count: 0,
                                },
                            );
                        }
                        if delay.is_zero() {
                            woken.push(queue);
                        }
                    }
                    StagedOp::Ack { queue, receipts } => {
                        if let Some(q) = queues.get_mut(&queue) {
                            for receipt in receipts {
                                if q.messages
                                    .get(&receipt.tag)
                                    .is_some_and(|m| m.delivered_as(&receipt))
                                {
                                    q.messages.remove(&receipt.tag);
                                }
                            }
                        }
                    }
                    // Only the outbox stages these, and it relays them itself.
                    StagedOp::Outboxed { .. } => {
                        return Err(MessagingError::Unsupported {
                            provider: "in_memory",
                            what: "relaying outbox rows",
                        });
                    }
                }
            }
        }
        for queue in woken {
            // No subscriber is not an error: readers also poll.
            let _ = self.wake.send(queue);
        }
        Ok(())
    }
}

struct InMemorySubscription {
    receiver: broadcast::Receiver<QueueName>,
    queues: HashSet<QueueName>,
}

#[async_trait]
impl Subscription for InMemorySubscription {
    async fn wait(&mut self) -> Result<WakeUp, MessagingError> {
        loop {
            match self.receiver.recv().await {
                Ok(queue) if self.queues.contains(&queue) => return Ok(WakeUp::Sent(queue)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return Ok(WakeUp::MaybeMissed),
                Err(broadcast::error::RecvError::Closed) => return Err(MessagingError::Closed),
            }
        }
    }
}

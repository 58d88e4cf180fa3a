//! The RabbitMQ provider (AMQP 0-9-1 through lapin).
//!
//! - Every Tasker queue is a durable queue named `<prefix>.<queue>` on the
//!   default exchange; messages are persistent and every publish waits for
//!   the broker's confirm, so a send that returned is on the broker's disk.
//! - Delayed sends wait in per-level delay queues that dead-letter into the
//!   real queue (see `delay`): no plugin needed.
//! - Receiving is push-based: one consumer per queue, on its own channel,
//!   with `prefetch` unacknowledged deliveries at most, buffered locally;
//!   `receive` takes from that buffer without waiting. A delivery held
//!   longer than its visibility is handed back (nack with requeue) before
//!   the next receive, so the visibility contract holds as it does for pgmq.
//! - Sends cannot join a PostgreSQL transaction: they are staged, or go
//!   through the outbox (`crate::Outboxed`) where `connect` puts it.
//! - The connection is opened on first use and replaced when it breaks
//!   (`link`); deliveries of a lost connection are void (the broker
//!   requeued them), and subscribers are told they may have missed wake-ups.

mod delay;
mod errors;
mod link;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, BasicProperties};
use serde_json::Value;
use tasker_types::messages::QueueName;
use tokio::sync::{broadcast, mpsc};

use self::errors::classify;
use self::link::{Link, Live};
use crate::error::MessagingError;
use crate::queue::{
    Capabilities, Delivery, MessageQueue, QueueDepth, Receipt, Subscription, WakeUp, check_delay,
};
use crate::unit::{QueueTx, Staged, StagedOp};

/// Where and how to reach the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RabbitSettings {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// Most unacknowledged deliveries per queue consumer.
    pub prefetch: u16,
    /// Prepended to every queue name (`<prefix>.<queue>`), so several
    /// Tasker installations (or test runs) can share one broker.
    pub queue_prefix: String,
    /// Queues unused this long are deleted by the broker (`x-expires`);
    /// `None` in production. Tests set it so their queues clean up.
    pub queue_expires: Option<Duration>,
}

/// Wake-ups a subscriber can hold before it is told it may have missed some.
const WAKE_CAPACITY: usize = 1024;

/// RabbitMQ queues. Cloning shares the connection.
#[derive(Clone)]
pub struct RabbitQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitQueue")
            .field("broker", &self.inner.link.address())
            .field("queue_prefix", &self.inner.settings.queue_prefix)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: RabbitSettings,
    link: Link,
    consumers: Mutex<HashMap<QueueName, Consumer>>,
    /// Held while a consumer starts, so that concurrent receivers start one
    /// (a replaced consumer's channel closes, and the broker would then
    /// redeliver what it had handed out).
    starting: tokio::sync::Mutex<()>,
    held: Mutex<HashMap<Receipt, Held>>,
    known: Mutex<HashSet<QueueName>>,
    wake: broadcast::Sender<WakeUp>,
}

/// One queue's consumer: its channel, and the deliveries pushed to it and
/// not yet received.
struct Consumer {
    epoch: u64,
    buffered: mpsc::Receiver<lapin::message::Delivery>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A delivery handed to a receiver and not yet acknowledged.
struct Held {
    queue: QueueName,
    acker: Acker,
    payload: Vec<u8>,
    until: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; if something did, the maps
    // are still structurally sound.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RabbitQueue {
    /// A provider for the broker at `settings.url`. Connects on first use.
    pub fn new(settings: RabbitSettings) -> Self {
        let (wake, _) = broadcast::channel(WAKE_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                link: Link::new(settings.url.clone()),
                settings,
                consumers: Mutex::new(HashMap::new()),
                starting: tokio::sync::Mutex::new(()),
                held: Mutex::new(HashMap::new()),
                known: Mutex::new(HashSet::new()),
                wake,
            }),
        }
    }

    /// Closes the connection; unacknowledged deliveries return to the broker.
    pub async fn close(&self) {
        lock(&self.inner.consumers).clear();
        lock(&self.inner.held).clear();
        self.inner.link.close().await;
    }
}

impl Inner {
    fn physical(&self, queue: &QueueName) -> String {
        format!("{}.{queue}", self.settings.queue_prefix)
    }

    async fn live(&self) -> Result<Live, MessagingError> {
        self.link.live().await
    }

    /// Maps `err`, forgetting the connection if it is gone.
    async fn failed(
        &self,
        live: &Live,
        err: lapin::Error,
        queue: Option<&QueueName>,
    ) -> MessagingError {
        if errors::is_connection_loss(&err) {
            self.link.broken(live.epoch).await;
        }
        classify(err, queue)
    }

    async fn declare(
        &self,
        live: &Live,
        name: &str,
        arguments: FieldTable,
        queue: &QueueName,
    ) -> Result<lapin::Queue, MessagingError> {
        let channel = match live.connection.create_channel().await {
            Ok(channel) => channel,
            Err(err) => return Err(self.failed(live, err, None).await),
        };
        let declared = channel
            .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
            .await;
        let _ = channel.close(200, "declared".into()).await;
        match declared {
            Ok(q) => Ok(q),
            // It exists with other arguments (declared by a test harness,
            // or shaped by an operator's policy): it exists, which is all
            // ensuring asks.
            Err(err) if errors::is_precondition_failed(&err) => {
                self.require_named(live, name, queue).await
            }
            Err(err) => Err(self.failed(live, err, Some(queue)).await),
        }
    }

    /// Fails with `QueueNotFound` unless `queue` exists on the broker.
    async fn require(
        &self,
        live: &Live,
        queue: &QueueName,
    ) -> Result<lapin::Queue, MessagingError> {
        let found = self
            .require_named(live, &self.physical(queue), queue)
            .await?;
        lock(&self.known).insert(queue.clone());
        Ok(found)
    }

    /// The broker queue `name` (in front of `queue`), declared passively.
    async fn require_named(
        &self,
        live: &Live,
        name: &str,
        queue: &QueueName,
    ) -> Result<lapin::Queue, MessagingError> {
        let channel = match live.connection.create_channel().await {
            Ok(channel) => channel,
            Err(err) => return Err(self.failed(live, err, None).await),
        };
        let options = QueueDeclareOptions::durable().passive();
        let found = channel
            .queue_declare(name.into(), options, FieldTable::default())
            .await;
        let _ = channel.close(200, "checked".into()).await;
        match found {
            Ok(q) => Ok(q),
            Err(err) => Err(self.failed(live, err, Some(queue)).await),
        }
    }

    /// Starts `queue`'s consumer on this connection unless it runs already.
    async fn consume(&self, live: &Live, queue: &QueueName) -> Result<(), MessagingError> {
        let running = || {
            lock(&self.consumers)
                .get(queue)
                .is_some_and(|c| c.epoch == live.epoch && !c.task.is_finished())
        };
        if running() {
            return Ok(());
        }
        let _starting = self.starting.lock().await;
        if running() {
            return Ok(());
        }
        let channel = match live.connection.create_channel().await {
            Ok(channel) => channel,
            Err(err) => return Err(self.failed(live, err, None).await),
        };
        if let Err(err) = channel
            .basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await
        {
            return Err(self.failed(live, err, Some(queue)).await);
        }
        let mut stream = match channel
            .basic_consume(
                self.physical(queue).as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
        {
            Ok(stream) => stream,
            Err(err) => return Err(self.failed(live, err, Some(queue)).await),
        };
        let (push, buffered) = mpsc::channel(usize::from(self.settings.prefetch.max(1)));
        let wake = self.wake.clone();
        let name = queue.clone();
        let task = tokio::spawn(async move {
            // The channel lives as long as its consumer.
            let _channel = channel;
            while let Some(next) = stream.next().await {
                match next {
                    Ok(delivery) => {
                        if push.send(delivery).await.is_err() {
                            break;
                        }
                        // No subscriber is not an error: receivers also poll.
                        let _ = wake.send(WakeUp::Sent(name.clone()));
                    }
                    Err(err) => {
                        tracing::warn!(queue = %name, error = %err, "RabbitMQ consumer stopped");
                        break;
                    }
                }
            }
            let _ = wake.send(WakeUp::MaybeMissed);
        });
        lock(&self.consumers).insert(
            queue.clone(),
            Consumer {
                epoch: live.epoch,
                buffered,
                task,
            },
        );
        Ok(())
    }

    /// Hands back deliveries held past their visibility, and forgets those
    /// of lost connections (the broker requeued them).
    async fn reap(&self, live: &Live) {
        let now = Instant::now();
        let expired: Vec<Held> = {
            let mut held = lock(&self.held);
            let gone: Vec<Receipt> = held
                .iter()
                .filter(|(r, h)| r.epoch != live.epoch || h.until <= now)
                .map(|(r, _)| *r)
                .collect();
            gone.into_iter()
                .filter_map(|r| held.remove(&r).filter(|_| r.epoch == live.epoch))
                .collect()
        };
        for held in expired {
            let _ = held.acker.nack(requeue()).await;
        }
    }

    /// Takes `receipts` out of the held set: the ones this provider still holds.
    fn release(&self, receipts: &[Receipt]) -> Vec<Held> {
        let mut held = lock(&self.held);
        receipts.iter().filter_map(|r| held.remove(r)).collect()
    }

    async fn publish(
        &self,
        live: &Live,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError> {
        let target = match delay::level_ms(delay) {
            None => self.physical(queue),
            Some(level) => self.delay_queue(live, queue, level).await?,
        };
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let mut confirms = Vec::with_capacity(messages.len());
        for message in messages {
            let body =
                serde_json::to_vec(message).map_err(|e| MessagingError::provider("rabbitmq", e))?;
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            match live
                .publisher
                .basic_publish(
                    "".into(),
                    target.as_str().into(),
                    options,
                    &body,
                    properties.clone(),
                )
                .await
            {
                Ok(confirm) => confirms.push(confirm),
                Err(err) => return Err(self.failed(live, err, Some(queue)).await),
            }
        }
        for confirm in confirms {
            match confirm.await {
                Ok(confirmation) if confirmation.is_ack() => {
                    if confirmation.take_message().is_some() {
                        lock(&self.known).remove(queue);
                        return Err(MessagingError::QueueNotFound(queue.clone()));
                    }
                }
                Ok(_) => {
                    return Err(MessagingError::provider(
                        "rabbitmq",
                        format!("the broker refused a message for `{queue}`"),
                    ));
                }
                Err(err) => return Err(self.failed(live, err, Some(queue)).await),
            }
        }
        Ok(())
    }

    /// Declares (again: that keeps it from expiring) the delay queue for
    /// `level_ms` in front of `queue`, and returns its name.
    async fn delay_queue(
        &self,
        live: &Live,
        queue: &QueueName,
        level_ms: u64,
    ) -> Result<String, MessagingError> {
        let name = format!("{}.delay.{level_ms}", self.physical(queue));
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(level_ms).unwrap_or(i64::MAX)),
        );
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.physical(queue).as_str().into()),
        );
        // Unused for a minute past its TTL, it goes (a message sent just
        // before the re-declare has left by then).
        let expires = level_ms.saturating_add(60_000).min(delay::MAX_DELAY_MS);
        arguments.insert(
            "x-expires".into(),
            AMQPValue::LongLongInt(i64::try_from(expires).unwrap_or(i64::MAX)),
        );
        self.declare(live, &name, arguments, queue).await?;
        Ok(name)
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

/// How many times the broker delivered it: quorum queues count
/// (`x-delivery-count`, redeliveries only); classic queues only flag.
fn delivery_count(delivery: &lapin::message::Delivery) -> u32 {
    let counted = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            _ => None,
        });
    match counted {
        Some(redeliveries) => redeliveries.saturating_add(1),
        None if delivery.redelivered => 2,
        None => 1,
    }
}

fn payload_of(data: &[u8]) -> Value {
    serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}

#[async_trait]
impl MessageQueue for RabbitQueue {
    fn provider(&self) -> &'static str {
        "rabbitmq"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactional_send: false,
            delayed_send: true,
        }
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError> {
        let inner = &self.inner;
        let live = inner.live().await?;
        let mut arguments = FieldTable::default();
        if let Some(expires) = inner.settings.queue_expires {
            arguments.insert(
                "x-expires".into(),
                AMQPValue::LongLongInt(i64::try_from(expires.as_millis()).unwrap_or(i64::MAX)),
            );
        }
        inner
            .declare(&live, &inner.physical(queue), arguments, queue)
            .await?;
        lock(&inner.known).insert(queue.clone());
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
        if !lock(&self.inner.known).contains(queue) {
            let live = self.inner.live().await?;
            self.inner.require(&live, queue).await?;
        }
        tx.stage_send(queue, messages, delay);
        Ok(())
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let inner = &self.inner;
        let live = inner.live().await?;
        inner.reap(&live).await;
        inner.consume(&live, queue).await?;
        let mut taken = Vec::new();
        if let Some(consumer) = lock(&inner.consumers).get_mut(queue) {
            while taken.len() < max {
                match consumer.buffered.try_recv() {
                    Ok(delivery) => taken.push(delivery),
                    Err(_) => break,
                }
            }
        }
        let until = Instant::now() + visibility;
        let mut held = lock(&inner.held);
        Ok(taken
            .into_iter()
            .map(|d| {
                let receipt = Receipt {
                    epoch: live.epoch,
                    tag: i64::try_from(d.delivery_tag).unwrap_or(i64::MAX),
                };
                let delivery = Delivery {
                    receipt,
                    payload: payload_of(&d.data),
                    delivery_count: delivery_count(&d),
                };
                held.insert(
                    receipt,
                    Held {
                        queue: queue.clone(),
                        acker: d.acker,
                        payload: d.data,
                        until,
                    },
                );
                delivery
            })
            .collect())
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
        let inner = &self.inner;
        let returned = inner.release(receipts);
        let count = returned.len();
        if delay.is_zero() {
            for held in returned {
                let _ = held.acker.nack(requeue()).await;
            }
            return Ok(count);
        }
        // Back later: a copy waits in the delay queue, then the delivery is
        // acknowledged. A crash in between leaves both, and consumers are
        // idempotent.
        let live = inner.live().await?;
        for held in returned {
            inner
                .publish(&live, &held.queue, &[payload_of(&held.payload)], delay)
                .await?;
            let _ = held.acker.ack(BasicAckOptions::default()).await;
        }
        let _ = queue;
        Ok(count)
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError> {
        let inner = &self.inner;
        let live = inner.live().await?;
        let ready = u64::from(inner.require(&live, queue).await?.message_count());
        let buffered = lock(&inner.consumers)
            .get(queue)
            .map_or(0, |c| c.buffered.len() as u64);
        let held = lock(&inner.held)
            .values()
            .filter(|h| &h.queue == queue)
            .count() as u64;
        Ok(QueueDepth {
            total: ready + buffered + held,
            visible: ready + buffered,
        })
    }

    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError> {
        let inner = &self.inner;
        let live = inner.live().await?;
        inner.reap(&live).await;
        for queue in queues {
            inner.consume(&live, queue).await?;
        }
        let consumers = lock(&inner.consumers);
        Ok(queues
            .iter()
            .filter(|q| consumers.get(*q).is_some_and(|c| !c.buffered.is_empty()))
            .cloned()
            .collect())
    }

    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError> {
        let inner = &self.inner;
        let receiver = inner.wake.subscribe();
        let live = inner.live().await?;
        for queue in queues {
            inner.consume(&live, queue).await?;
        }
        Ok(Box::new(RabbitSubscription {
            receiver,
            queues: queues.iter().cloned().collect(),
        }))
    }

    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError> {
        let inner = &self.inner;
        for op in staged.0 {
            match op {
                StagedOp::Send {
                    queue,
                    messages,
                    delay,
                } => {
                    let live = inner.live().await?;
                    inner.publish(&live, &queue, &messages, delay).await?;
                }
                StagedOp::Ack { receipts, .. } => {
                    for held in inner.release(&receipts) {
                        // A lost channel returned it to the broker already.
                        let _ = held.acker.ack(BasicAckOptions::default()).await;
                    }
                }
                // Only the outbox stages these, and it relays them itself.
                StagedOp::Outboxed { .. } => {
                    return Err(MessagingError::Unsupported {
                        provider: "rabbitmq",
                        what: "relaying outbox rows",
                    });
                }
            }
        }
        Ok(())
    }
}

struct RabbitSubscription {
    receiver: broadcast::Receiver<WakeUp>,
    queues: HashSet<QueueName>,
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn wait(&mut self) -> Result<WakeUp, MessagingError> {
        loop {
            match self.receiver.recv().await {
                Ok(WakeUp::Sent(queue)) if self.queues.contains(&queue) => {
                    return Ok(WakeUp::Sent(queue));
                }
                Ok(WakeUp::Sent(_)) => {}
                Ok(WakeUp::MaybeMissed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Ok(WakeUp::MaybeMissed);
                }
                Err(broadcast::error::RecvError::Closed) => return Err(MessagingError::Closed),
            }
        }
    }
}

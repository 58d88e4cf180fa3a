//! The outbox (ADR 011): transactional send for a provider that has none.
//!
//! [`Outboxed`] wraps such a provider (RabbitMQ, in-memory). A send in a
//! joined [`QueueTx`] becomes rows of `tasker.message_outbox`, written in
//! the caller's transaction, so a rolled-back change sends nothing. After
//! the commit, `commit_staged` deletes those rows and publishes them in one
//! transaction that commits only once the broker confirmed them; if the
//! process dies first, the rows stay and [`relay_outbox`] (run by the
//! orchestration leader) sends them later. A pointer is never lost and never
//! sent for a change that did not commit; it may be sent twice (a crash
//! after the broker confirmed, before the delete committed), which every
//! consumer tolerates.
//!
//! Everything else — receiving, acknowledging, subscriptions — is the
//! wrapped provider's own.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::queue::{Capabilities, Delivery, MessageQueue, QueueDepth, Receipt, Subscription};
use crate::unit::{QueueTx, Staged, StagedOp};

/// A provider whose joined sends go through the outbox.
#[derive(Clone)]
pub struct Outboxed {
    inner: Arc<dyn MessageQueue>,
    pool: PgPool,
}

impl std::fmt::Debug for Outboxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outboxed")
            .field("inner", &self.inner.provider())
            .finish_non_exhaustive()
    }
}

impl Outboxed {
    /// `inner` with an outbox in the database behind `pool` (migrated by
    /// `tasker_db::migrate`).
    pub fn new(inner: Arc<dyn MessageQueue>, pool: PgPool) -> Self {
        Self { inner, pool }
    }
}

/// One outbox row on its way to the broker.
struct Row {
    queue_name: String,
    payload: Value,
    delay_ms: i64,
}

/// An outbox row as `DELETE … RETURNING id, queue_name, payload, delay_ms`
/// gives it.
type Returned = (i64, String, Value, i64);

/// The rows in the order they were written (`RETURNING` promises none).
fn in_written_order(mut returned: Vec<Returned>) -> Vec<Row> {
    returned.sort_by_key(|(id, ..)| *id);
    returned
        .into_iter()
        .map(|(_, queue_name, payload, delay_ms)| Row {
            queue_name,
            payload,
            delay_ms,
        })
        .collect()
}

async fn write_rows(
    conn: &mut PgConnection,
    queue: &QueueName,
    messages: &[Value],
    delay: Duration,
) -> Result<Vec<i64>, MessagingError> {
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO tasker.message_outbox (queue_name, payload, delay_ms)
         SELECT $1, m, $3 FROM unnest($2::jsonb[]) WITH ORDINALITY AS t(m, n) ORDER BY n
         RETURNING id",
    )
    .bind(queue.as_str())
    .bind(messages)
    .bind(delay_ms)
    .fetch_all(conn)
    .await?;
    Ok(ids)
}

/// Sends `rows` (in id order) through `queue` outside any transaction,
/// keeping consecutive rows for one queue and delay in one send.
async fn publish(queue: &dyn MessageQueue, rows: Vec<Row>) -> Result<usize, MessagingError> {
    let sent = rows.len();
    let mut unit = QueueTx::standalone();
    let mut run: Option<(String, i64, Vec<Value>)> = None;
    for row in rows {
        match &mut run {
            Some((name, delay, batch)) if *name == row.queue_name && *delay == row.delay_ms => {
                batch.push(row.payload);
            }
            _ => {
                if let Some(done) = run.take() {
                    send_run(queue, &mut unit, done).await?;
                }
                run = Some((row.queue_name, row.delay_ms, vec![row.payload]));
            }
        }
    }
    if let Some(done) = run {
        send_run(queue, &mut unit, done).await?;
    }
    queue.commit_staged(unit.into_staged()).await?;
    Ok(sent)
}

async fn send_run(
    queue: &dyn MessageQueue,
    unit: &mut QueueTx<'_>,
    (name, delay_ms, messages): (String, i64, Vec<Value>),
) -> Result<(), MessagingError> {
    let name = QueueName::new(name).map_err(|e| MessagingError::provider("outbox", e))?;
    let delay = Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
    queue.send_many(unit, &name, &messages, delay).await
}

/// Relays outbox rows older than `older_than` (left by a process that died
/// between its commit and its relay), at most `limit`, oldest first, through
/// `queue`. Rows another relay holds are skipped. Returns how many it sent.
///
/// # Errors
/// [`MessagingError`] when the database or the broker fails; the rows then
/// stay for the next sweep.
pub async fn relay_outbox(
    queue: &dyn MessageQueue,
    pool: &PgPool,
    older_than: Duration,
    limit: usize,
) -> Result<usize, MessagingError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Returned> = sqlx::query_as(
        "DELETE FROM tasker.message_outbox WHERE id IN (
             SELECT id FROM tasker.message_outbox
             WHERE created_at < clock_timestamp() - make_interval(secs => $1::float8)
             ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, queue_name, payload, delay_ms",
    )
    .bind(older_than.as_secs_f64())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let sent = publish(queue, in_written_order(rows)).await?;
    tx.commit().await?;
    Ok(sent)
}

#[async_trait]
impl MessageQueue for Outboxed {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactional_send: true,
            ..self.inner.capabilities()
        }
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError> {
        self.inner.ensure_queue(queue).await
    }

    async fn send_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
    ) -> Result<(), MessagingError> {
        // The inner provider checks the queue and the delay; what it stages
        // is dropped, since the outbox carries the messages.
        let mut probe = QueueTx::standalone();
        self.inner
            .send_many(&mut probe, queue, messages, delay)
            .await?;
        drop(probe.into_staged());
        if messages.is_empty() {
            return Ok(());
        }
        match tx.connection() {
            Some(conn) => {
                let ids = write_rows(conn, queue, messages, delay).await?;
                tx.stage(StagedOp::Outboxed { ids });
            }
            None => tx.stage_send(queue, messages, delay),
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.inner.receive(queue, max, visibility).await
    }

    async fn take_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.inner.take_in(tx, queue, max, visibility).await
    }

    async fn ack_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> Result<(), MessagingError> {
        self.inner.ack_many(tx, queue, receipts).await
    }

    async fn nack_many(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        delay: Duration,
    ) -> Result<usize, MessagingError> {
        self.inner.nack_many(queue, receipts, delay).await
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError> {
        self.inner.depth(queue).await
    }

    async fn depths(&self, queues: &[QueueName]) -> Result<Vec<QueueDepth>, MessagingError> {
        self.inner.depths(queues).await
    }

    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError> {
        self.inner.pending(queues).await
    }

    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError> {
        self.inner.subscribe(queues).await
    }

    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError> {
        let mut outboxed = Vec::new();
        let mut rest = Vec::new();
        for op in staged.0 {
            match op {
                StagedOp::Outboxed { ids } => outboxed.extend(ids),
                other => rest.push(other),
            }
        }
        if !outboxed.is_empty() {
            let mut tx = self.pool.begin().await?;
            let rows: Vec<Returned> = sqlx::query_as(
                "DELETE FROM tasker.message_outbox WHERE id = ANY($1)
                 RETURNING id, queue_name, payload, delay_ms",
            )
            .bind(&outboxed)
            .fetch_all(&mut *tx)
            .await?;
            // Rows already gone were relayed by the sweep.
            publish(&*self.inner, in_written_order(rows)).await?;
            tx.commit().await?;
        }
        self.inner.commit_staged(Staged(rest)).await
    }
}

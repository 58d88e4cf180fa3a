//! The PGMQ provider: queues are tables in the same PostgreSQL database as
//! Tasker's state, so a send joins the caller's state-change transaction and
//! commits (or vanishes) with it. Every send also `pg_notify`s the queue's
//! channel in that transaction, so subscribers wake the moment it commits.
//!
//! The SQL here calls PGMQ's public functions (`pgmq.send_batch`,
//! `pgmq.read`, `pgmq.pop`, `pgmq.delete`, `pgmq.set_vt`, `pgmq.metrics`); it is the one
//! place outside `tasker-db` that issues SQL, because it *is* the queue.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::queue::{
    Capabilities, Delivery, MessageQueue, QueueDepth, Receipt, Subscription, WakeUp, check_delay,
};
use crate::unit::{QueueTx, Staged, StagedOp};

/// The `pg_notify` channel of a queue.
pub fn channel_for(queue: &QueueName) -> String {
    format!("tasker_q_{queue}")
}

/// PGMQ-backed queues on a pool. Install PGMQ first (`tasker_db::migrate`).
#[derive(Clone, Debug)]
pub struct PgmqQueue {
    pool: PgPool,
}

impl PgmqQueue {
    /// Queues in the database behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// PGMQ's visibility timeouts are whole seconds; round up, at least one.
fn whole_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// A missing queue table surfaces as "undefined table".
fn classify(err: sqlx::Error, queue: &QueueName) -> MessagingError {
    match &err {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "42P01") => {
            MessagingError::QueueNotFound(queue.clone())
        }
        _ => err.into(),
    }
}

async fn send_in(
    conn: &mut PgConnection,
    queue: &QueueName,
    messages: &[Value],
    delay: Duration,
) -> Result<(), MessagingError> {
    if messages.is_empty() {
        return Ok(());
    }
    // One round trip: insert the batch and, for immediate sends, notify the
    // queue's channel in the same transaction (PostgreSQL delivers it on
    // commit and folds duplicates within the transaction).
    sqlx::query!(
        r#"WITH sent AS (
               SELECT * FROM pgmq.send_batch($1::text, $2::jsonb[], NULL::jsonb[],
                                             clock_timestamp() + make_interval(secs => $3::float8))),
           notified AS (
               SELECT pg_notify($4, '') FROM (SELECT 1 FROM sent LIMIT 1) s WHERE $5)
           SELECT (SELECT count(*) FROM sent) AS "sent!", (SELECT count(*) FROM notified) AS "notified!""#,
        queue.as_str(),
        messages,
        delay.as_secs_f64(),
        channel_for(queue),
        delay.is_zero(),
    )
    .fetch_one(conn)
    .await
    .map_err(|e| classify(e, queue))?;
    Ok(())
}

async fn read_in(
    conn: &mut PgConnection,
    queue: &QueueName,
    max: usize,
    visibility: Duration,
) -> Result<Vec<Delivery>, MessagingError> {
    let rows = sqlx::query_as!(
        MessageRecord,
        r#"SELECT msg_id AS "msg_id!", read_ct AS "read_ct!", enqueued_at AS "enqueued_at!",
                  vt AS "vt!", message
           FROM pgmq.read($1::text, $2::int4, $3::int4)"#,
        queue.as_str(),
        whole_seconds(visibility),
        i32::try_from(max).unwrap_or(i32::MAX),
    )
    .fetch_all(conn)
    .await
    .map_err(|e| classify(e, queue))?;
    Ok(rows.into_iter().map(|r| r.received(0)).collect())
}

/// Takes up to `max` visible messages inside `conn`'s transaction with
/// PGMQ's pop: `DELETE … WHERE msg_id IN (visible, FOR UPDATE SKIP LOCKED)
/// RETURNING`, so concurrent takers get disjoint messages.
async fn pop_in(
    conn: &mut PgConnection,
    queue: &QueueName,
    max: usize,
) -> Result<Vec<Delivery>, MessagingError> {
    let rows = sqlx::query_as!(
        MessageRecord,
        r#"SELECT msg_id AS "msg_id!", read_ct AS "read_ct!", enqueued_at AS "enqueued_at!",
                  vt AS "vt!", message
           FROM pgmq.pop($1::text, $2::int4)"#,
        queue.as_str(),
        i32::try_from(max).unwrap_or(i32::MAX),
    )
    .fetch_all(conn)
    .await
    .map_err(|e| classify(e, queue))?;
    // A pop is a delivery that PGMQ's read count does not record.
    Ok(rows.into_iter().map(|r| r.received(1)).collect())
}

/// A message row as PGMQ's read and pop return it.
struct MessageRecord {
    msg_id: i64,
    read_ct: i32,
    // Selected so the row shape matches PGMQ's; deliveries do not carry them.
    #[allow(dead_code)]
    enqueued_at: chrono::DateTime<chrono::Utc>,
    #[allow(dead_code)]
    vt: chrono::DateTime<chrono::Utc>,
    message: Option<Value>,
}

/// A pgmq receipt is the message id: it stays valid across connections
/// until the message is deleted.
fn receipt_of(msg_id: i64) -> Receipt {
    Receipt {
        epoch: 0,
        tag: msg_id,
    }
}

fn ids_of(receipts: &[Receipt]) -> Vec<i64> {
    receipts.iter().map(|r| r.tag).collect()
}

impl MessageRecord {
    fn received(self, uncounted_reads: u32) -> Delivery {
        Delivery {
            receipt: receipt_of(self.msg_id),
            payload: self.message.unwrap_or(Value::Null),
            delivery_count: u32::try_from(self.read_ct).unwrap_or(0) + uncounted_reads,
        }
    }
}

async fn delete_in(
    conn: &mut PgConnection,
    queue: &QueueName,
    ids: &[i64],
) -> Result<(), MessagingError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "SELECT * FROM pgmq.delete($1::text, $2::bigint[])",
        queue.as_str(),
        ids
    )
    .fetch_all(conn)
    .await
    .map_err(|e| classify(e, queue))?;
    Ok(())
}

#[async_trait]
impl MessageQueue for PgmqQueue {
    fn provider(&self) -> &'static str {
        "pgmq"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactional_send: true,
            delayed_send: true,
        }
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), MessagingError> {
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1) AS "exists!""#,
            queue.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            sqlx::query!("SELECT pgmq.create($1)", queue.as_str())
                .execute(&self.pool)
                .await?;
        }
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
        match tx.connection() {
            Some(conn) => send_in(conn, queue, messages, delay).await,
            None => {
                tx.stage_send(queue, messages, delay);
                Ok(())
            }
        }
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let mut conn = self.pool.acquire().await?;
        read_in(&mut conn, queue, max, visibility).await
    }

    async fn take_in(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, MessagingError> {
        if let Some(conn) = tx.connection() {
            return pop_in(conn, queue, max).await;
        }
        let taken = self.receive(queue, max, visibility).await?;
        let receipts: Vec<Receipt> = taken.iter().map(|d| d.receipt).collect();
        tx.stage_ack(queue, &receipts);
        Ok(taken)
    }

    async fn ack_many(
        &self,
        tx: &mut QueueTx<'_>,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> Result<(), MessagingError> {
        match tx.connection() {
            Some(conn) => delete_in(conn, queue, &ids_of(receipts)).await,
            None => {
                tx.stage_ack(queue, receipts);
                Ok(())
            }
        }
    }

    async fn nack_many(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        delay: Duration,
    ) -> Result<usize, MessagingError> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let rows = sqlx::query_scalar!(
            r#"SELECT msg_id AS "msg_id!" FROM pgmq.set_vt($1::text, $2::bigint[],
                   clock_timestamp() + make_interval(secs => $3::float8))"#,
            queue.as_str(),
            &ids_of(receipts),
            delay.as_secs_f64(),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify(e, queue))?;
        Ok(rows.len())
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, MessagingError> {
        let row = sqlx::query!(
            r#"SELECT queue_length AS "total!", queue_visible_length AS "visible!"
               FROM pgmq.metrics($1::text)"#,
            queue.as_str()
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify(e, queue))?;
        Ok(QueueDepth {
            total: u64::try_from(row.total).unwrap_or(0),
            visible: u64::try_from(row.visible).unwrap_or(0),
        })
    }

    async fn depths(&self, queues: &[QueueName]) -> Result<Vec<QueueDepth>, MessagingError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for every queue (pgmq counts each queue's table).
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT queue_name, queue_length, queue_visible_length FROM pgmq.metrics_all()",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify(e, &queues[0]))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let by_name: std::collections::HashMap<&str, QueueDepth> = rows
            .iter()
            .map(|(name, total, visible)| {
                let depth = QueueDepth {
                    total: count(*total),
                    visible: count(*visible),
                };
                (name.as_str(), depth)
            })
            .collect();
        queues
            .iter()
            .map(|q| {
                by_name
                    .get(q.as_str())
                    .copied()
                    .ok_or_else(|| MessagingError::QueueNotFound(q.clone()))
            })
            .collect()
    }

    async fn pending(&self, queues: &[QueueName]) -> Result<Vec<QueueName>, MessagingError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        // Queue names are validated `[a-z0-9_]` identifiers, so quoting them
        // into the statement is safe.
        let sql = queues
            .iter()
            .enumerate()
            .map(|(i, q)| {
                format!("SELECT {i}::int4 WHERE EXISTS (SELECT 1 FROM pgmq.\"q_{q}\" WHERE vt <= clock_timestamp())")
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found: Vec<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "42P01") => {
                    MessagingError::QueueNotFound(queues[0].clone())
                }
                _ => e.into(),
            })?;
        Ok(found
            .into_iter()
            .filter_map(|i| usize::try_from(i).ok().and_then(|i| queues.get(i).cloned()))
            .collect())
    }

    async fn subscribe(
        &self,
        queues: &[QueueName],
    ) -> Result<Box<dyn Subscription>, MessagingError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        let channels: HashMap<String, QueueName> =
            queues.iter().map(|q| (channel_for(q), q.clone())).collect();
        listener
            .listen_all(channels.keys().map(String::as_str))
            .await?;
        Ok(Box::new(PgmqSubscription { listener, channels }))
    }

    async fn commit_staged(&self, staged: Staged) -> Result<(), MessagingError> {
        if staged.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for op in staged.0 {
            match op {
                StagedOp::Send {
                    queue,
                    messages,
                    delay,
                } => send_in(&mut tx, &queue, &messages, delay).await?,
                StagedOp::Ack { queue, receipts } => {
                    delete_in(&mut tx, &queue, &ids_of(&receipts)).await?;
                }
                // Only the outbox stages these, and it relays them itself.
                StagedOp::Outboxed { .. } => {
                    return Err(MessagingError::Unsupported {
                        provider: "pgmq",
                        what: "relaying outbox rows",
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// LISTENs on the channels of its queues. `PgListener` reconnects by itself
/// but drops notifications while disconnected, so a lost connection is
/// reported as [`WakeUp::MaybeMissed`].
struct PgmqSubscription {
    listener: PgListener,
    channels: HashMap<String, QueueName>,
}

#[async_trait]
impl Subscription for PgmqSubscription {
    async fn wait(&mut self) -> Result<WakeUp, MessagingError> {
        loop {
            match self.listener.try_recv().await? {
                None => return Ok(WakeUp::MaybeMissed),
                Some(note) => {
                    if let Some(queue) = self.channels.get(note.channel()) {
                        return Ok(WakeUp::Sent(queue.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn channels_fit_postgres_identifier_limits() {
        let longest = QueueName::new("q".repeat(QueueName::MAX_LEN)).unwrap();
        assert!(channel_for(&longest).len() <= 63);
    }
}

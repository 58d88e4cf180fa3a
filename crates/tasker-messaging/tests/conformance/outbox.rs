//! The outbox keeps its two promises — no pointer lost, none sent for a
//! rolled-back change — when the sender dies between its commit and its
//! relay, for the in-memory provider and for RabbitMQ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_db::testing::TestDb;
use tasker_messaging::{InMemoryQueue, MessageQueue, Outboxed, QueueTx, relay_outbox};
use tasker_types::messages::QueueName;

use super::rabbit;

async fn outbox_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasker.message_outbox")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn receive_all(
    queue: &dyn MessageQueue,
    name: &QueueName,
    n: usize,
) -> Vec<serde_json::Value> {
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < n && started.elapsed() < Duration::from_secs(5) {
        let batch = queue
            .receive(name, 10, Duration::from_secs(60))
            .await
            .unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        got.extend(batch.into_iter().map(|d| d.payload));
    }
    got
}

async fn a_crash_after_commit_loses_nothing(inner: Arc<dyn MessageQueue>) {
    let db = TestDb::new().await.unwrap();
    let queue = Outboxed::new(inner, db.pool().clone());
    let name = QueueName::worker("outbox").unwrap();
    queue.ensure_queue(&name).await.unwrap();

    // Committed, then the process "dies" before relaying: the row stays.
    let mut tx = db.pool().begin().await.unwrap();
    let mut unit = QueueTx::join(&mut tx);
    queue
        .send_many(
            &mut unit,
            &name,
            &[json!({"n": 1}), json!({"n": 2})],
            Duration::ZERO,
        )
        .await
        .unwrap();
    let staged = unit.into_staged();
    tx.commit().await.unwrap();
    drop(staged);
    // Rolled back: no row at all.
    let mut tx = db.pool().begin().await.unwrap();
    let mut unit = QueueTx::join(&mut tx);
    queue
        .send_many(&mut unit, &name, &[json!({"n": 3})], Duration::ZERO)
        .await
        .unwrap();
    drop(unit.into_staged());
    tx.rollback().await.unwrap();

    assert_eq!(outbox_rows(&db).await, 2);
    // Too young for the sweep: it leaves them to their writer.
    assert_eq!(
        relay_outbox(&queue, db.pool(), Duration::from_secs(60), 100)
            .await
            .unwrap(),
        0
    );
    let relayed = relay_outbox(&queue, db.pool(), Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(relayed, 2);
    assert_eq!(outbox_rows(&db).await, 0);
    assert_eq!(
        receive_all(&queue, &name, 2).await,
        [json!({"n": 1}), json!({"n": 2})]
    );
    // A second sweep sends nothing again.
    assert_eq!(
        relay_outbox(&queue, db.pool(), Duration::ZERO, 100)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn in_memory_a_crash_after_commit_loses_nothing() {
    a_crash_after_commit_loses_nothing(Arc::new(InMemoryQueue::new(16))).await;
}

#[tokio::test]
async fn rabbitmq_a_crash_after_commit_loses_nothing() {
    a_crash_after_commit_loses_nothing(Arc::new(rabbit())).await;
}

#[tokio::test]
async fn a_relayed_commit_empties_the_outbox() {
    let db = TestDb::new().await.unwrap();
    let queue = Outboxed::new(Arc::new(rabbit()), db.pool().clone());
    let name = QueueName::worker("outbox_ok").unwrap();
    queue.ensure_queue(&name).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    let mut unit = QueueTx::join(&mut tx);
    queue
        .send_many(&mut unit, &name, &[json!({"n": 1})], Duration::ZERO)
        .await
        .unwrap();
    let staged = unit.into_staged();
    tx.commit().await.unwrap();
    queue.commit_staged(staged).await.unwrap();
    assert_eq!(outbox_rows(&db).await, 0);
    assert_eq!(receive_all(&queue, &name, 1).await, [json!({"n": 1})]);
}

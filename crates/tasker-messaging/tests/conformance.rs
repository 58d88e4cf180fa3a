//! Both providers pass the same conformance suite. pgmq runs against a fresh
//! PostgreSQL database per test.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tasker_db::testing::TestDb;
use tasker_messaging::conformance::{self, Harness};
use tasker_messaging::{
    InMemoryQueue, MessageId, MessageQueue, MessagingError, PgmqQueue, QueueTx, ReceivedMessage,
};
use tasker_types::messages::QueueName;

struct Pgmq {
    db: TestDb,
    queue: PgmqQueue,
}

impl Pgmq {
    async fn new() -> Self {
        let db = TestDb::new().await.unwrap();
        let queue = PgmqQueue::new(db.pool().clone());
        Self { db, queue }
    }
}

#[async_trait]
impl Harness for Pgmq {
    fn queue(&self) -> &dyn MessageQueue {
        &self.queue
    }

    async fn send_in_unit(
        &self,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
        commit: bool,
    ) -> Result<(), MessagingError> {
        let mut tx = self.db.pool().begin().await?;
        let mut unit = QueueTx::join(&mut tx);
        self.queue
            .send_many(&mut unit, queue, messages, delay)
            .await?;
        let staged = unit.into_staged();
        assert!(staged.is_empty(), "pgmq writes into the joined transaction");
        if commit {
            tx.commit().await?;
            self.queue.commit_staged(staged).await
        } else {
            tx.rollback().await?;
            Ok(())
        }
    }

    async fn delete_in_unit(
        &self,
        queue: &QueueName,
        ids: &[MessageId],
        commit: bool,
    ) -> Result<(), MessagingError> {
        let mut tx = self.db.pool().begin().await?;
        let mut unit = QueueTx::join(&mut tx);
        self.queue.delete_many(&mut unit, queue, ids).await?;
        let staged = unit.into_staged();
        if commit {
            tx.commit().await?;
            self.queue.commit_staged(staged).await
        } else {
            tx.rollback().await?;
            Ok(())
        }
    }

    async fn take_in_unit(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
        commit: bool,
    ) -> Result<Vec<ReceivedMessage>, MessagingError> {
        let mut tx = self.db.pool().begin().await?;
        let mut unit = QueueTx::join(&mut tx);
        let taken = self
            .queue
            .take_many_in(&mut unit, queue, max, visibility)
            .await?;
        let staged = unit.into_staged();
        assert!(
            staged.is_empty(),
            "pgmq takes inside the joined transaction"
        );
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(taken)
    }
}

struct Memory(InMemoryQueue);

#[async_trait]
impl Harness for Memory {
    fn queue(&self) -> &dyn MessageQueue {
        &self.0
    }

    async fn send_in_unit(
        &self,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
        commit: bool,
    ) -> Result<(), MessagingError> {
        let mut unit = QueueTx::standalone();
        self.0.send_many(&mut unit, queue, messages, delay).await?;
        let staged = unit.into_staged();
        if commit {
            self.0.commit_staged(staged).await
        } else {
            Ok(())
        }
    }

    async fn delete_in_unit(
        &self,
        queue: &QueueName,
        ids: &[MessageId],
        commit: bool,
    ) -> Result<(), MessagingError> {
        let mut unit = QueueTx::standalone();
        self.0.delete_many(&mut unit, queue, ids).await?;
        let staged = unit.into_staged();
        if commit {
            self.0.commit_staged(staged).await
        } else {
            Ok(())
        }
    }

    async fn take_in_unit(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
        commit: bool,
    ) -> Result<Vec<ReceivedMessage>, MessagingError> {
        let mut unit = QueueTx::standalone();
        let taken = self
            .0
            .take_many_in(&mut unit, queue, max, visibility)
            .await?;
        let staged = unit.into_staged();
        if commit {
            self.0.commit_staged(staged).await?;
        }
        Ok(taken)
    }
}

macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod pgmq {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let harness = Pgmq::new().await;
                    if let Err(why) = conformance::$check(&harness).await {
                        panic!("pgmq: {why}");
                    }
                }
            )*
        }
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let harness = Memory(InMemoryQueue::new(64));
                    if let Err(why) = conformance::$check(&harness).await {
                        panic!("in_memory: {why}");
                    }
                }
            )*
        }
    };
}

suite!(
    ensure_queue_is_idempotent_and_unknown_queues_are_errors,
    committed_sends_are_read_in_order_and_then_hidden,
    a_rolled_back_send_is_never_seen,
    reads_respect_their_limit,
    a_read_message_returns_after_its_visibility_timeout,
    deletes_are_final_and_roll_back_with_their_unit,
    taken_messages_are_gone_on_commit_and_return_on_rollback,
    extending_visibility_keeps_a_message_hidden,
    a_delayed_send_becomes_visible_when_due,
    concurrent_readers_share_messages_without_duplicates,
    a_subscriber_wakes_within_100ms_of_a_send,
    visible_names_the_queues_with_work,
);

#[tokio::test]
async fn pgmq_sends_are_atomic_with_the_callers_state_change() {
    // The point of pgmq: a state change and its pointer commit together.
    let harness = Pgmq::new().await;
    let queue = QueueName::worker("atomic").unwrap();
    harness.queue.ensure_queue(&queue).await.unwrap();
    let mut tx = harness.db.pool().begin().await.unwrap();
    sqlx::query("CREATE TABLE marker (id int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut unit = QueueTx::join(&mut tx);
    harness
        .queue
        .send_many(
            &mut unit,
            &queue,
            &[serde_json::json!({"x": 1})],
            Duration::ZERO,
        )
        .await
        .unwrap();
    sqlx::query("INSERT INTO marker VALUES (1)")
        .execute(unit.connection().unwrap())
        .await
        .unwrap();
    drop(unit.into_staged());
    // Nothing is visible to others before commit.
    assert_eq!(harness.queue.depth(&queue).await.unwrap().total, 0);
    tx.commit().await.unwrap();
    assert_eq!(harness.queue.depth(&queue).await.unwrap().total, 1);
}

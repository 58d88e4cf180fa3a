//! Every provider passes the same conformance suite: pgmq, in-memory and
//! RabbitMQ, raw and behind the outbox (as `connect` builds them). Each
//! test gets a fresh PostgreSQL database and, for RabbitMQ, its own queue
//! prefix on the broker at `RABBITMQ_URL` (default: this machine's).

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use tasker_db::testing::TestDb;
use tasker_messaging::conformance::{self, Subject};
use tasker_messaging::{
    InMemoryQueue, MessageQueue, Outboxed, PgmqQueue, QueueTx, RabbitQueue, RabbitSettings,
};
use tasker_types::messages::QueueName;

#[path = "conformance/outbox.rs"]
mod outbox;

/// The broker the RabbitMQ runs use.
pub fn rabbit_url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A RabbitMQ provider whose queues no other test sees, and which the
/// broker deletes a while after the test.
pub fn rabbit() -> RabbitQueue {
    RabbitQueue::new(RabbitSettings {
        url: rabbit_url(),
        prefetch: 50,
        queue_prefix: format!("test-{}", uuid::Uuid::now_v7().simple()),
        queue_expires: Some(Duration::from_secs(300)),
    })
}

async fn subject(provider: &str) -> (TestDb, Subject) {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool().clone();
    let queue: Arc<dyn MessageQueue> = match provider {
        "pgmq" => Arc::new(PgmqQueue::new(pool.clone())),
        "in_memory" => Arc::new(InMemoryQueue::new(64)),
        "in_memory_outboxed" => Arc::new(Outboxed::new(
            Arc::new(InMemoryQueue::new(64)),
            pool.clone(),
        )),
        "rabbitmq" => Arc::new(rabbit()),
        "rabbitmq_outboxed" => Arc::new(Outboxed::new(Arc::new(rabbit()), pool.clone())),
        other => panic!("no provider {other}"),
    };
    (db, Subject { queue, pool })
}

macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        suite!(@provider pgmq; $($check),*);
        suite!(@provider in_memory; $($check),*);
        suite!(@provider in_memory_outboxed; $($check),*);
        suite!(@provider rabbitmq; $($check),*);
        suite!(@provider rabbitmq_outboxed; $($check),*);
    };
    (@provider $provider:ident; $($check:ident),*) => {
        mod $provider {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let (_db, subject) = subject(stringify!($provider)).await;
                    if let Err(why) = conformance::$check(&subject).await {
                        panic!("{}: {why}", stringify!($provider));
                    }
                }
            )*
        }
    };
}

suite!(
    ensure_queue_is_idempotent_and_unknown_queues_are_errors,
    committed_sends_arrive_in_order_and_are_then_held,
    a_rolled_back_send_is_never_seen,
    receives_respect_their_limit,
    an_unacknowledged_delivery_returns_after_its_visibility,
    acks_are_final_and_roll_back_with_their_unit,
    taken_messages_are_gone_on_commit_and_return_on_rollback,
    a_nacked_delivery_returns_after_its_delay,
    a_delayed_send_arrives_when_due,
    concurrent_receivers_share_messages_without_duplicates,
    a_subscriber_wakes_within_100ms_of_a_send,
    pending_names_the_queues_with_work,
);

#[tokio::test]
async fn pgmq_sends_are_atomic_with_the_callers_state_change() {
    // The point of pgmq: a state change and its pointer commit together.
    let db = TestDb::new().await.unwrap();
    let queues = PgmqQueue::new(db.pool().clone());
    let queue = QueueName::worker("atomic").unwrap();
    queues.ensure_queue(&queue).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    sqlx::query("CREATE TABLE marker (id int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut unit = QueueTx::join(&mut tx);
    queues
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
    assert!(
        unit.into_staged().is_empty(),
        "pgmq writes into the joined transaction"
    );
    // Nothing is visible to others before commit.
    assert_eq!(queues.depth(&queue).await.unwrap().total, 0);
    tx.commit().await.unwrap();
    assert_eq!(queues.depth(&queue).await.unwrap().total, 1);
}

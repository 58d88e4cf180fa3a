//! `tasker-ctl events tail` reads a namespace's durable domain events from
//! the configured backend, oldest first, consuming them.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue, send_now};
use tasker_types::domain_event::{AttemptEnd, DomainEvent};
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::messages::QueueName;

fn event(name: &str, n: u32) -> DomainEvent {
    DomainEvent {
        event_id: uuid::Uuid::now_v7(),
        name: name.to_owned(),
        namespace: "tail_tests".to_owned(),
        task_name: "t".to_owned(),
        task_uuid: TaskUuid::new(),
        step_uuid: StepUuid::new(),
        step_name: "s".to_owned(),
        attempt: n,
        correlation_id: CorrelationId::new(),
        outcome: AttemptEnd::Success,
        payload: json!({ "n": n }),
        published_at: Utc::now(),
    }
}

fn tail(db: &TestDb, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"))
        .args([
            "events",
            "tail",
            "-n",
            "tail_tests",
            "-e",
            "test",
            "-o",
            "json",
        ])
        .args(extra)
        .env("DATABASE_URL", db.url())
        .env("TASKER_MESSAGING_BACKEND", "pgmq")
        .output()
        .unwrap()
}

#[tokio::test]
async fn tail_prints_the_durable_stream_in_order_and_consumes_it() {
    let db = TestDb::new().await.unwrap();
    let queue = PgmqQueue::new(db.pool().clone());
    let name = QueueName::domain_events("tail_tests").unwrap();
    queue.ensure_queue(&name).await.unwrap();
    let sent: Vec<DomainEvent> = (1..=3).map(|n| event(&format!("e.n{n}"), n)).collect();
    let messages: Vec<_> = sent
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    send_now(&queue, &name, &messages, Duration::ZERO)
        .await
        .unwrap();

    let first = tail(&db, &["-c", "2"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let lines: Vec<DomainEvent> = String::from_utf8_lossy(&first.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, sent[..2], "the first two, in order");

    let rest = tail(&db, &[]);
    assert!(rest.status.success());
    let lines: Vec<DomainEvent> = String::from_utf8_lossy(&rest.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, sent[2..], "then the rest; read means consumed");
    let none = tail(&db, &[]);
    assert!(none.status.success());
    assert!(none.stdout.is_empty());
}

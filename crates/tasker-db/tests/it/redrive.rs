//! `step_redrive::mark_due`: which steps count as waiting for a lost
//! pointer — an expired lease at once, the others after the threshold —
//! and that each is re-driven at most once per threshold.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tasker_db::step_redrive::{self, RedriveKind};
use tasker_db::testing::TestDb;
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_types::outcome::StepFailure;

use crate::support::{create_diamond, ctx, enqueue, expire_lease, step_named};

#[tokio::test]
async fn steps_waiting_past_the_threshold_are_picked_once_per_threshold_with_their_pointer_kind() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let created = create_diamond(pool).await;
    let (start, left, right, end) = (
        step_named(&created, "start"),
        step_named(&created, "left"),
        step_named(&created, "right"),
        step_named(&created, "end"),
    );
    let mut conn = pool.acquire().await.unwrap();
    // start: awaiting orchestration with its result; left: claimed, lease
    // run out; right: enqueued and never claimed; end: pending (never
    // re-driven: nothing was sent for it).
    for step in [start, left, right] {
        enqueue(pool, step).await;
    }
    for step in [start, left] {
        workflow_step_change::apply_one(
            &mut conn,
            StepChange::claim(step, "w1", Duration::from_secs(30)),
            &ctx(),
        )
        .await
        .unwrap();
    }
    workflow_step_change::apply_one(
        &mut conn,
        StepChange::record_failure(start, 1, StepFailure::retryable("timeout", "slow")),
        &ctx(),
    )
    .await
    .unwrap();
    expire_lease(&mut conn, left).await;

    let after = TimeDelta::seconds(60);
    let now = Utc::now();
    let at_once = step_redrive::mark_due(&mut conn, now, after, 100)
        .await
        .unwrap();
    let at_once: Vec<_> = at_once.iter().map(|d| (d.step_uuid, d.kind)).collect();
    assert_eq!(
        at_once,
        [(left, RedriveKind::LeaseExpired)],
        "an expired lease at once (its message went at claim time); the rest wait a minute"
    );

    let later = now + TimeDelta::seconds(61);
    let due = step_redrive::mark_due(&mut conn, later, after, 100)
        .await
        .unwrap();
    let mut kinds: Vec<(String, RedriveKind, u32)> = due
        .iter()
        .map(|d| {
            let name = created
                .steps
                .iter()
                .find(|s| s.workflow_step_uuid == d.step_uuid)
                .map(|s| s.name.clone())
                .unwrap();
            (name, d.kind, d.attempt)
        })
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        [
            ("left".to_owned(), RedriveKind::LeaseExpired, 1),
            ("right".to_owned(), RedriveKind::Dispatch, 0),
            ("start".to_owned(), RedriveKind::Result, 1),
        ]
    );
    assert!(due.iter().all(|d| d.task_uuid == created.task.task_uuid
        && d.correlation_id == created.task.correlation_id
        && d.named_task_uuid == created.task.named_task_uuid));
    assert!(!due.iter().any(|d| d.step_uuid == end));

    // Stamped: not again within the threshold, again after it.
    let soon = later + TimeDelta::seconds(30);
    assert!(
        step_redrive::mark_due(&mut conn, soon, after, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let again = later + TimeDelta::seconds(61);
    assert_eq!(
        step_redrive::mark_due(&mut conn, again, after, 100)
            .await
            .unwrap()
            .len(),
        3
    );
    // Bounded.
    let much_later = again + TimeDelta::seconds(61);
    assert_eq!(
        step_redrive::mark_due(&mut conn, much_later, after, 2)
            .await
            .unwrap()
            .len(),
        2
    );

    // Re-driving is not progress: the steps' `updated_at` did not move.
    let stamps: Vec<(chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)> = sqlx::query_as(
        "SELECT updated_at, redriven_at FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(right.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(stamps[0].0 < now + TimeDelta::seconds(1));
    assert!(stamps[0].1.is_some());
}

#[tokio::test]
async fn a_step_reclaimed_after_a_redrive_and_lost_again_is_redriven_at_once() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let created = create_diamond(pool).await;
    let start = step_named(&created, "start");
    let mut conn = pool.acquire().await.unwrap();
    enqueue(pool, start).await;
    let claim = |worker: &str| StepChange::claim(start, worker, Duration::from_secs(30));
    workflow_step_change::apply_one(&mut conn, claim("w1"), &ctx())
        .await
        .unwrap();
    expire_lease(&mut conn, start).await;
    let after = TimeDelta::seconds(60);
    let first = step_redrive::mark_due(&mut conn, Utc::now(), after, 100)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Nobody took the re-sent pointer yet: not again within the threshold.
    let soon = Utc::now() + TimeDelta::seconds(5);
    assert!(
        step_redrive::mark_due(&mut conn, soon, after, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Another worker takes it, and dies too: that is a new loss, re-driven
    // as soon as its lease runs out rather than a threshold later.
    workflow_step_change::apply_one(
        &mut conn,
        StepChange::reclaim(start, "w2", Duration::from_secs(30)),
        &ctx(),
    )
    .await
    .unwrap();
    let past_the_new_lease = Utc::now() + TimeDelta::seconds(31);
    let again = step_redrive::mark_due(&mut conn, past_the_new_lease, after, 100)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.step_uuid, d.kind))
            .collect::<Vec<_>>(),
        [(start, RedriveKind::LeaseExpired)]
    );
}

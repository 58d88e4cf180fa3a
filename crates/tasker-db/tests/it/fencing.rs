use std::time::Duration;

use serde_json::json;
use tasker_db::testing::TestDb;
use tasker_db::workflow_step_change::{self as change, StepChange};
use tasker_db::{DbError, workflow_step, workflow_step_transition};
use tasker_types::outcome::{StepFailure, error_types};
use tasker_types::state::StepState;

use crate::support::{create_diamond, ctx, enqueue, expire_lease, step_named};

const LEASE: Duration = Duration::from_secs(30);

fn boom() -> StepFailure {
    StepFailure::retryable(error_types::HANDLER_ERROR, "boom")
}

#[tokio::test]
async fn of_many_concurrent_claims_of_one_step_exactly_one_wins() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let step = step_named(&created, "start");
    enqueue(db.pool(), step).await;

    let claims = (0..16).map(|i| {
        let pool = db.pool().clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let claim = change::apply_one(
                &mut tx,
                StepChange::claim(step, &format!("worker-{i}"), LEASE),
                &ctx(),
            )
            .await;
            tx.commit().await.unwrap();
            claim
        })
    });
    let mut won = Vec::new();
    for claim in claims {
        match claim.await.unwrap() {
            Ok(claim) => won.push(claim),
            Err(DbError::TransitionConflict {
                expected_state: "enqueued",
                ..
            }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one claim succeeds");
    assert_eq!(won[0].attempt, 1);
    let row = workflow_step::get(db.pool(), step).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (StepState::InProgress, 1));
    let history = workflow_step_transition::list(db.pool(), step)
        .await
        .unwrap();
    assert_eq!(history.iter().filter(|h| h.event == "start").count(), 1);
}

#[tokio::test]
async fn a_stale_attempts_write_is_rejected_after_its_lease_is_reclaimed() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let step = step_named(&created, "start");
    enqueue(db.pool(), step).await;
    let mut conn = db.pool().acquire().await.unwrap();

    let first = change::apply_one(
        &mut conn,
        StepChange::claim(step, "worker-a", LEASE),
        &ctx(),
    )
    .await
    .unwrap();
    // A live lease cannot be taken over.
    let err = change::apply_one(
        &mut conn,
        StepChange::reclaim(step, "worker-b", LEASE),
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::TransitionConflict { .. }), "{err:?}");

    // Worker A goes silent.
    expire_lease(&mut conn, step).await;
    let second = change::apply_one(
        &mut conn,
        StepChange::reclaim(step, "worker-b", LEASE),
        &ctx(),
    )
    .await
    .unwrap();
    assert_eq!((first.attempt, second.attempt), (1, 2));

    // A's late result, and its lease renewal, are fenced out.
    let err = change::apply_one(
        &mut conn,
        StepChange::record_success(step, first.attempt, json!({"from": "a"}), None),
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::TransitionConflict {
                expected_attempt: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        workflow_step::renew_lease(&mut *conn, step, first.attempt, LEASE)
            .await
            .is_err()
    );
    assert!(
        workflow_step::renew_lease(&mut *conn, step, second.attempt, LEASE)
            .await
            .is_ok()
    );

    change::apply_one(
        &mut conn,
        StepChange::record_success(step, second.attempt, json!({"from": "b"}), None),
        &ctx(),
    )
    .await
    .unwrap();
    let row = workflow_step::get(&mut *conn, step).await.unwrap().unwrap();
    assert_eq!(row.state, StepState::EnqueuedForOrchestration);
    assert_eq!(row.results, Some(json!({"from": "b"})));
    assert_eq!(row.claimed_by.as_deref(), Some("worker-b"));
}

#[tokio::test]
async fn reclaiming_stops_when_attempts_are_used_up() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let step = step_named(&created, "left"); // max_attempts 3 (default)
    enqueue(db.pool(), step).await;
    let mut conn = db.pool().acquire().await.unwrap();
    change::apply_one(&mut conn, StepChange::claim(step, "w", LEASE), &ctx())
        .await
        .unwrap();
    for _ in 0..2 {
        expire_lease(&mut conn, step).await;
        change::apply_one(&mut conn, StepChange::reclaim(step, "w", LEASE), &ctx())
            .await
            .unwrap();
    }
    expire_lease(&mut conn, step).await;
    let err = change::apply_one(&mut conn, StepChange::reclaim(step, "w", LEASE), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::TransitionConflict { .. }), "{err:?}");
    assert_eq!(
        workflow_step::get(&mut *conn, step)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        3
    );
}

#[tokio::test]
async fn the_failure_and_retry_path_records_every_transition() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let step = step_named(&created, "right");
    enqueue(db.pool(), step).await;
    let mut tx = db.pool().begin().await.unwrap();
    let claim = change::apply_one(&mut tx, StepChange::claim(step, "w", LEASE), &ctx())
        .await
        .unwrap();
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(5);
    for next in [
        StepChange::record_failure(step, claim.attempt, boom()),
        StepChange::schedule_retry(step, due),
        StepChange::enqueue(step, StepState::WaitingForRetry),
    ] {
        change::apply_one(&mut tx, next, &ctx()).await.unwrap();
    }
    let claim = change::apply_one(&mut tx, StepChange::claim(step, "w", LEASE), &ctx())
        .await
        .unwrap();
    assert_eq!(claim.attempt, 2);
    for next in [
        StepChange::record_success(step, 2, json!({"ok": true}), None),
        StepChange::complete(step),
    ] {
        change::apply_one(&mut tx, next, &ctx()).await.unwrap();
    }
    tx.commit().await.unwrap();

    let row = workflow_step::get(db.pool(), step).await.unwrap().unwrap();
    assert_eq!(row.state, StepState::Complete);
    assert!(row.completed_at.is_some());
    assert_eq!(row.last_error, Some(boom().to_stored()));
    let history = workflow_step_transition::list(db.pool(), step)
        .await
        .unwrap();
    let path: Vec<(&str, StepState, u32)> = history
        .iter()
        .map(|h| (h.event.as_str(), h.to_state, h.attempt))
        .collect();
    assert_eq!(
        path,
        [
            ("create", StepState::Pending, 0),
            ("enqueue", StepState::Enqueued, 0),
            ("start", StepState::InProgress, 1),
            (
                "record_failure",
                StepState::EnqueuedAsErrorForOrchestration,
                1
            ),
            ("schedule_retry", StepState::WaitingForRetry, 1),
            ("enqueue", StepState::Enqueued, 1),
            ("start", StepState::InProgress, 2),
            ("record_success", StepState::EnqueuedForOrchestration, 2),
            ("complete", StepState::Complete, 2),
        ]
    );
    let sort_keys: Vec<i32> = history.iter().map(|h| h.sort_key).collect();
    assert_eq!(sort_keys, (0..9).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_state_column_always_equals_the_most_recent_transition() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let start = step_named(&created, "start");
    enqueue(db.pool(), start).await;
    let mut conn = db.pool().acquire().await.unwrap();
    let claim = change::apply_one(&mut conn, StepChange::claim(start, "w", LEASE), &ctx())
        .await
        .unwrap();
    for next in [
        StepChange::record_failure(start, claim.attempt, boom()),
        StepChange::fail(start),
        StepChange::cancel(step_named(&created, "left"), StepState::Pending),
    ] {
        change::apply_one(&mut conn, next, &ctx()).await.unwrap();
    }
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_steps s
         JOIN (SELECT DISTINCT ON (workflow_step_uuid) workflow_step_uuid, to_state, sort_key
               FROM tasker.workflow_step_transitions
               ORDER BY workflow_step_uuid, sort_key DESC) t
           ON t.workflow_step_uuid = s.workflow_step_uuid
         WHERE t.to_state <> s.state OR t.sort_key <> s.last_sort_key",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    // Terminal steps accept no further events.
    let err = change::apply_one(
        &mut conn,
        StepChange::cancel(start, StepState::Error),
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::InvalidTransition(_)), "{err:?}");
}

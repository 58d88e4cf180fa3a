//! The one step-transition writer applied to many steps at once, as the
//! claimer, the completer and orchestration call it: each change is fenced
//! on its own, a refused change writes nothing, an illegal one fails the
//! whole statement, and every written change has exactly one transition row.

use std::time::Duration;

use serde_json::json;
use tasker_db::testing::TestDb;
use tasker_db::workflow_step_change::{self as change, StepChange};
use tasker_db::{DbError, workflow_step, workflow_step_transition};
use tasker_types::outcome::StepFailure;
use tasker_types::state::StepState;

use crate::support::{create_diamond, ctx, enqueue, expire_lease, step_named};

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_batch_writes_the_changes_whose_fences_hold_and_nothing_for_the_rest() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let (left, right, end) = (
        step_named(&created, "left"),
        step_named(&created, "right"),
        step_named(&created, "end"),
    );
    enqueue(db.pool(), left).await;
    enqueue(db.pool(), right).await;
    let mut conn = db.pool().acquire().await.unwrap();
    // Another worker already holds `right`.
    change::apply_one(&mut conn, StepChange::claim(right, "other", LEASE), &ctx())
        .await
        .unwrap();

    let claims = [left, right, end].map(|s| StepChange::claim(s, "me", LEASE));
    let rows = change::apply_returning_rows(&mut conn, &claims, &ctx())
        .await
        .unwrap();

    let claimed: Vec<_> = rows.iter().map(|r| r.workflow_step_uuid).collect();
    assert_eq!(claimed, [left], "`right` is held, `end` is not enqueued");
    assert_eq!(rows[0].claimed_by.as_deref(), Some("me"));
    assert!(rows[0].lease_expires_at.is_some());
    for (step, starts) in [(left, 1), (right, 1), (end, 0)] {
        let history = workflow_step_transition::list(&mut *conn, step)
            .await
            .unwrap();
        assert_eq!(
            history.iter().filter(|h| h.event == "start").count(),
            starts
        );
    }
    let right_row = workflow_step::get(&mut *conn, right)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(right_row.claimed_by.as_deref(), Some("other"));
}

#[tokio::test]
async fn an_illegal_change_fails_the_whole_batch_before_anything_is_written() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let (left, right) = (step_named(&created, "left"), step_named(&created, "right"));
    let mut conn = db.pool().acquire().await.unwrap();

    let batch = [
        StepChange::enqueue(left, StepState::Pending),
        // Nothing leaves `complete`.
        StepChange::cancel(right, StepState::Complete),
    ];
    let err = change::apply(&mut conn, &batch, &ctx()).await.unwrap_err();
    assert!(matches!(err, DbError::InvalidTransition(_)), "{err:?}");
    let row = workflow_step::get(&mut *conn, left).await.unwrap().unwrap();
    assert_eq!(row.state, StepState::Pending);
}

#[tokio::test]
async fn each_change_carries_its_own_metadata_over_the_contexts() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let (left, right) = (step_named(&created, "left"), step_named(&created, "right"));
    let mut conn = db.pool().acquire().await.unwrap();
    let ctx = ctx().with_metadata(json!({ "reason": "operator", "actor": "ops" }));

    let batch = [
        StepChange::cancel(left, StepState::Pending)
            .with_metadata(json!({ "reason": "fail_fast", "failed_batch": "b_1" })),
        StepChange::cancel(right, StepState::Pending),
    ];
    let written = change::apply(&mut conn, &batch, &ctx).await.unwrap();
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|c| c.state == StepState::Cancelled));

    let last = |history: Vec<workflow_step_transition::StepTransitionRow>| {
        history.last().map(|h| h.metadata.clone()).unwrap()
    };
    let left_history = workflow_step_transition::list(&mut *conn, left).await;
    assert_eq!(
        last(left_history.unwrap()),
        json!({ "reason": "fail_fast", "failed_batch": "b_1", "actor": "ops" })
    );
    let right_history = workflow_step_transition::list(&mut *conn, right).await;
    assert_eq!(
        last(right_history.unwrap()),
        json!({ "reason": "operator", "actor": "ops" })
    );
}

#[tokio::test]
async fn a_lease_expiry_on_the_last_attempt_is_recorded_only_once_the_lease_ran_out() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let start = step_named(&created, "start");
    enqueue(db.pool(), start).await;
    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query("UPDATE tasker.workflow_steps SET max_attempts = 1 WHERE workflow_step_uuid = $1")
        .bind(start.as_uuid())
        .execute(&mut *conn)
        .await
        .unwrap();
    let claim = change::apply_one(&mut conn, StepChange::claim(start, "w", LEASE), &ctx())
        .await
        .unwrap();
    let expiry = || StepChange::lease_expired_on_last_attempt(start, claim.attempt, Some("w"));

    // The lease is live: the worker may still be running.
    let err = change::apply_one(&mut conn, expiry(), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::TransitionConflict { .. }), "{err:?}");

    expire_lease(&mut conn, start).await;
    // No attempts are left, so it cannot be re-claimed ...
    let err = change::apply_one(&mut conn, StepChange::reclaim(start, "w2", LEASE), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::TransitionConflict { .. }), "{err:?}");
    // ... and its death is recorded, once.
    let failed = change::apply_one(&mut conn, expiry(), &ctx())
        .await
        .unwrap();
    assert_eq!(failed.state, StepState::EnqueuedAsErrorForOrchestration);
    assert!(
        change::apply_one(&mut conn, expiry(), &ctx())
            .await
            .is_err()
    );
    let row = workflow_step::get(&mut *conn, start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.lease_expires_at, None);
    assert_eq!(
        row.last_error,
        Some(StepFailure::lease_expired(Some("w")).to_stored())
    );
}

#[tokio::test]
async fn transition_rows_are_insert_only_and_keyed_by_the_steps_last_sort_key() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let start = step_named(&created, "start");
    enqueue(db.pool(), start).await;
    // One transaction, so that its rows can be told apart by `xmin`.
    let mut tx = db.pool().begin().await.unwrap();
    let claim = change::apply_one(&mut tx, StepChange::claim(start, "w", LEASE), &ctx())
        .await
        .unwrap();
    for next in [
        StepChange::record_success(start, claim.attempt, json!({ "ok": true }), None),
        StepChange::complete(start),
    ] {
        change::apply_one(&mut tx, next, &ctx()).await.unwrap();
    }
    // Rows this transaction wrote carry its id as `xmin`: an update of an
    // older row (the demotion a `most_recent` flag needs) would count too.
    let touched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_step_transitions
         WHERE workflow_step_uuid = $1
           AND xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296",
    )
    .bind(start.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(touched, 3, "one new row per change, no older row rewritten");
    let history = workflow_step_transition::list(&mut *tx, start)
        .await
        .unwrap();
    let keys: Vec<i32> = history.iter().map(|h| h.sort_key).collect();
    assert_eq!(keys, [0, 1, 2, 3, 4]);
    let last_sort_key: i32 = sqlx::query_scalar(
        "SELECT last_sort_key FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(start.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(last_sort_key, 4);
}

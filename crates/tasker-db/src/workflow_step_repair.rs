//! Step transitions off the happy path: orchestration refusing an outcome
//! it cannot apply, the staleness detector giving up on a stuck step, and
//! an operator's repairs (SPEC §4.10). Each is a compare-and-set on the
//! state the caller saw plus a transition row, in the caller's transaction.

use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::{StepEvent, StepState};

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;
use crate::workflow_step::{fenced, record, settle};

/// `enqueued_for_orchestration → error`: the worker's success carried an
/// outcome orchestration cannot apply (an invalid decision or batch);
/// `error` says why.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step has no pending result.
pub async fn refuse_result(
    conn: &mut PgConnection,
    step: StepUuid,
    error: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    fail_with(
        conn,
        step,
        StepState::EnqueuedForOrchestration,
        StepEvent::Fail,
        error,
        ctx,
    )
    .await
}

/// `enqueued | in_progress | waiting_for_retry → error`: the staleness
/// detector gives up on a step that made no progress; `error` says why. A
/// running attempt's late result is then rejected by the fence.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is no longer in `from`.
pub async fn expire(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    error: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    fail_with(conn, step, from, StepEvent::Expire, error, ctx).await
}

async fn fail_with(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    event: StepEvent,
    error: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let to = from.next(event)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, last_error = $4, lease_expires_at = NULL, next_retry_at = NULL,
               completed_at = now(), updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        to.as_str(),
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(row.map(|r| (r.task_uuid, r.attempts)), step, from, None)?;
    record(conn, step, task, from, to, event, attempt, ctx).await?;
    Ok(task)
}

/// `error → pending`: an operator asks for a failed step to run again.
/// Its attempts keep counting (they fence late results) and it gets
/// `extra_attempts` more; `inputs`, when given, replace its inputs. Its last
/// checkpoint is kept, so a batch worker resumes where it was.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is not in `error`.
pub async fn reset_for_retry(
    conn: &mut PgConnection,
    step: StepUuid,
    inputs: Option<&Value>,
    extra_attempts: u32,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let from = StepState::Error;
    let to = from.next(StepEvent::ResetForRetry)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, max_attempts = attempts + $4, inputs = COALESCE($5, inputs),
               next_retry_at = NULL, completed_at = NULL, lease_expires_at = NULL,
               updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        to.as_str(),
        convert::to_i32(extra_attempts.max(1)),
        inputs
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(row.map(|r| (r.task_uuid, r.attempts)), step, from, None)?;
    record(
        conn,
        step,
        task,
        from,
        to,
        StepEvent::ResetForRetry,
        attempt,
        ctx,
    )
    .await?;
    Ok(task)
}

/// `<from> → resolved_manually` (any non-terminal state, or `error`): an
/// operator declares the step done without a result; dependents proceed.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is no longer in `from`;
/// [`DbError::InvalidTransition`] when `from` does not allow it.
pub async fn resolve_manually(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    settle(conn, step, from, StepEvent::ResolveManually, None, ctx).await
}

/// `<from> → complete` (any non-terminal state, or `error`) with `result`,
/// which dependents receive as this step's result.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is no longer in `from`;
/// [`DbError::InvalidTransition`] when `from` does not allow it.
pub async fn complete_manually(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    result: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    settle(
        conn,
        step,
        from,
        StepEvent::CompleteManually,
        Some(result),
        ctx,
    )
    .await
}

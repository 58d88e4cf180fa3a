//! `tasker.workflow_steps`: one row per step of a task, and the fenced
//! transitions that move it. Each transition is a function named after its
//! event: a compare-and-set on the expected state (and, for worker writes,
//! the attempt), plus a transition row, in the caller's transaction. Zero
//! rows changed is [`DbError::TransitionConflict`], never a silent success.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use tasker_types::backoff::RetryPolicy;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::{StepEvent, StepState};
use tasker_types::template::{StepDefinition, StepType};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;
use crate::workflow_step_transition::{self as history, Append};

/// A step as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    /// Row id.
    pub workflow_step_uuid: StepUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// Instance name, unique in the task.
    pub name: String,
    /// The template step it was made from.
    pub template_step: String,
    /// Its role in the graph.
    pub step_type: StepType,
    /// The handler's callable.
    pub callable: String,
    /// The handler's configuration.
    pub initialization: Value,
    /// Per-attempt timeout; `None` uses the configured default.
    pub timeout_seconds: Option<u32>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Current state.
    pub state: StepState,
    /// The current attempt (0 before the first claim).
    pub attempts: u32,
    /// Extra inputs (batch cursor, operator edits).
    pub inputs: Option<Value>,
    /// The accepted (or pending) result.
    pub results: Option<Value>,
    /// What a decision or batchable handler asked to create next.
    pub flow_control: Option<Value>,
    /// The last failure.
    pub last_error: Option<Value>,
    /// A batch worker's last checkpoint.
    pub checkpoint: Option<Value>,
    /// When a retry is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When the current attempt's lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker running the current attempt.
    pub claimed_by: Option<String>,
    /// When the current attempt started.
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Reached a terminal state.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A step to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewStep {
    /// Its id.
    pub uuid: StepUuid,
    /// Instance name.
    pub name: String,
    /// The template step.
    pub template_step: String,
    /// Its role.
    pub step_type: StepType,
    /// Handler callable.
    pub callable: String,
    /// Handler configuration.
    pub initialization: Value,
    /// Per-attempt timeout.
    pub timeout_seconds: Option<u32>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Extra inputs.
    pub inputs: Option<Value>,
}

impl NewStep {
    /// A step made from `definition` (already resolved for the environment).
    pub fn from_definition(definition: &StepDefinition) -> Self {
        Self {
            uuid: StepUuid::new(),
            name: definition.name.clone(),
            template_step: definition.name.clone(),
            step_type: definition.step_type,
            callable: definition.handler.callable.clone(),
            initialization: Value::Object(definition.handler.initialization.clone()),
            timeout_seconds: definition.timeout_seconds,
            retry: definition.retry,
            inputs: None,
        }
    }
}

/// The result of claiming a step: the new attempt holds its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The step's task.
    pub task_uuid: TaskUuid,
    /// The attempt number the claimer now owns.
    pub attempt: u32,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: DateTime<Utc>,
}

/// Inserts `steps` of `task` in state `pending`, with their first transitions.
///
/// # Errors
/// [`DbError`] on database failure (e.g. a duplicate step name in the task).
pub async fn insert_many(
    conn: &mut PgConnection,
    task: TaskUuid,
    steps: &[NewStep],
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    insert_many_born(conn, task, steps, &[], ctx).await
}

/// Inserts `steps` of `task`; those whose entry in `enqueued` is true are
/// born `enqueued` (their history reads `→ pending`, `pending → enqueued`),
/// the rest `pending` — for a new task whose ready roots go straight to
/// workers, without an update per root.
///
/// # Errors
/// [`DbError`] on database failure (e.g. a duplicate step name in the task).
pub async fn insert_many_born(
    conn: &mut PgConnection,
    task: TaskUuid,
    steps: &[NewStep],
    enqueued: &[bool],
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    if steps.is_empty() {
        return Ok(());
    }
    let born = StepState::Pending.next(StepEvent::Enqueue)?;
    let states: Vec<String> = (0..steps.len())
        .map(|i| {
            if enqueued.get(i).copied().unwrap_or(false) {
                born.as_str().to_owned()
            } else {
                StepState::Pending.as_str().to_owned()
            }
        })
        .collect();
    let uuids: Vec<Uuid> = steps.iter().map(|s| s.uuid.as_uuid()).collect();
    let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
    let template_steps: Vec<String> = steps.iter().map(|s| s.template_step.clone()).collect();
    let types: Vec<String> = steps
        .iter()
        .map(|s| s.step_type.as_str().to_owned())
        .collect();
    let callables: Vec<String> = steps.iter().map(|s| s.callable.clone()).collect();
    let inits: Vec<Value> = steps.iter().map(|s| s.initialization.clone()).collect();
    let timeouts: Vec<Option<i32>> = steps
        .iter()
        .map(|s| s.timeout_seconds.map(convert::to_i32))
        .collect();
    let max_attempts: Vec<i32> = steps
        .iter()
        .map(|s| convert::to_i32(s.retry.max_attempts))
        .collect();
    let retryable: Vec<bool> = steps.iter().map(|s| s.retry.retryable).collect();
    let backoff: Vec<String> = steps
        .iter()
        .map(|s| convert::backoff_str(s.retry.backoff).to_owned())
        .collect();
    let base: Vec<i64> = steps
        .iter()
        .map(|s| convert::to_i64(s.retry.backoff_base_ms))
        .collect();
    let cap: Vec<i64> = steps
        .iter()
        .map(|s| convert::to_i64(s.retry.max_backoff_ms))
        .collect();
    let inputs: Vec<Option<Value>> = steps.iter().map(|s| s.inputs.clone()).collect();
    sqlx::query!(
        r#"INSERT INTO tasker.workflow_steps
               (workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                initialization, timeout_seconds, max_attempts, retryable, backoff,
                backoff_base_ms, max_backoff_ms, inputs, state)
           SELECT u, $2, n, ts, ty, c, i, t, ma, r, b, bb, mb, inp, st
           FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::jsonb[], $8::int4[], $9::int4[], $10::bool[], $11::text[],
                       $12::int8[], $13::int8[], $14::jsonb[], $15::text[])
                AS s(u, n, ts, ty, c, i, t, ma, r, b, bb, mb, inp, st)"#,
        &uuids,
        task.as_uuid(),
        &names,
        &template_steps,
        &types,
        &callables,
        &inits,
        &timeouts as &[Option<i32>],
        &max_attempts,
        &retryable,
        &backoff,
        &base,
        &cap,
        &inputs as &[Option<Value>],
        &states,
    )
    .execute(&mut *conn)
    .await?;
    let ids: Vec<StepUuid> = steps.iter().map(|s| s.uuid).collect();
    history::append_created_many(conn, task, &ids, enqueued, ctx).await
}

/// One step.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn get(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
) -> Result<Option<StepRow>, DbError> {
    let row = sqlx::query_as!(
        StepRecord,
        r#"SELECT workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                  initialization, timeout_seconds, max_attempts, retryable, backoff,
                  backoff_base_ms, max_backoff_ms, state, attempts, inputs, results,
                  flow_control, last_error, checkpoint, next_retry_at, lease_expires_at, claimed_by,
                  attempt_started_at, created_at, updated_at, completed_at
           FROM tasker.workflow_steps WHERE workflow_step_uuid = $1"#,
        step.as_uuid()
    )
    .fetch_optional(executor)
    .await?;
    row.map(StepRow::try_from).transpose()
}

/// Every step of `task`, in creation order.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list_for_task(
    executor: impl PgExecutor<'_>,
    task: TaskUuid,
) -> Result<Vec<StepRow>, DbError> {
    let rows = sqlx::query_as!(
        StepRecord,
        r#"SELECT workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                  initialization, timeout_seconds, max_attempts, retryable, backoff,
                  backoff_base_ms, max_backoff_ms, state, attempts, inputs, results,
                  flow_control, last_error, checkpoint, next_retry_at, lease_expires_at, claimed_by,
                  attempt_started_at, created_at, updated_at, completed_at
           FROM tasker.workflow_steps WHERE task_uuid = $1 ORDER BY workflow_step_uuid"#,
        task.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(StepRow::try_from).collect()
}

/// Every step of each of `tasks`.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list_for_tasks(
    executor: impl PgExecutor<'_>,
    tasks: &[TaskUuid],
) -> Result<Vec<StepRow>, DbError> {
    let uuids: Vec<Uuid> = tasks.iter().map(TaskUuid::as_uuid).collect();
    let rows = sqlx::query_as!(
        StepRecord,
        r#"SELECT workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                  initialization, timeout_seconds, max_attempts, retryable, backoff,
                  backoff_base_ms, max_backoff_ms, state, attempts, inputs, results,
                  flow_control, last_error, checkpoint, next_retry_at, lease_expires_at, claimed_by,
                  attempt_started_at, created_at, updated_at, completed_at
           FROM tasker.workflow_steps WHERE task_uuid = ANY($1) ORDER BY workflow_step_uuid"#,
        &uuids
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(StepRow::try_from).collect()
}

/// `pending | waiting_for_retry → enqueued`: orchestration hands the step to workers.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is no longer in `from`.
pub async fn enqueue(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    let to = from.next(StepEvent::Enqueue)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, next_retry_at = NULL, updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        to.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(row.map(|r| (r.task_uuid, r.attempts)), step, from, None)?;
    record(conn, step, task, from, to, StepEvent::Enqueue, attempt, ctx).await
}

/// `enqueued → in_progress`: a worker claims the step, starting attempt
/// `attempts + 1` with a lease of `lease`. Of many concurrent claims exactly
/// one succeeds.
///
/// # Errors
/// [`DbError::TransitionConflict`] when another worker claimed it first or
/// it is no longer enqueued.
pub async fn start(
    conn: &mut PgConnection,
    step: StepUuid,
    worker_id: &str,
    lease: Duration,
    ctx: &TransitionContext,
) -> Result<Claim, DbError> {
    let from = StepState::Enqueued;
    let to = from.next(StepEvent::Start)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, attempts = attempts + 1, claimed_by = $4,
               lease_expires_at = now() + make_interval(secs => $5),
               attempt_started_at = now(), updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts, lease_expires_at AS "lease_expires_at!""#,
        step.as_uuid(),
        from.as_str(),
        to.as_str(),
        worker_id,
        lease.as_secs_f64()
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(conflict(step, from, None));
    };
    let claim = Claim {
        task_uuid: TaskUuid::from_uuid(row.task_uuid),
        attempt: convert::count(row.attempts),
        lease_expires_at: row.lease_expires_at,
    };
    record(
        conn,
        step,
        claim.task_uuid,
        from,
        to,
        StepEvent::Start,
        claim.attempt,
        ctx,
    )
    .await?;
    Ok(claim)
}

/// `in_progress → in_progress`: re-claims a step whose lease expired (its
/// worker died), starting a new attempt. Only while attempts remain.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the lease is still live, the step
/// moved on, or no attempts remain.
pub async fn reclaim(
    conn: &mut PgConnection,
    step: StepUuid,
    worker_id: &str,
    lease: Duration,
    ctx: &TransitionContext,
) -> Result<Claim, DbError> {
    let from = StepState::InProgress;
    let to = from.next(StepEvent::Reclaim)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET attempts = attempts + 1, claimed_by = $3,
               lease_expires_at = now() + make_interval(secs => $4),
               attempt_started_at = now(), updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
             AND lease_expires_at < now() AND attempts < max_attempts
           RETURNING task_uuid, attempts, lease_expires_at AS "lease_expires_at!""#,
        step.as_uuid(),
        from.as_str(),
        worker_id,
        lease.as_secs_f64()
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(conflict(step, from, None));
    };
    let claim = Claim {
        task_uuid: TaskUuid::from_uuid(row.task_uuid),
        attempt: convert::count(row.attempts),
        lease_expires_at: row.lease_expires_at,
    };
    record(
        conn,
        step,
        claim.task_uuid,
        from,
        to,
        StepEvent::Reclaim,
        claim.attempt,
        ctx,
    )
    .await?;
    Ok(claim)
}

/// Extends the lease of attempt `attempt` to `lease` from now. Not a state
/// change, but fenced the same way.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the attempt is no longer current.
pub async fn renew_lease(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
    attempt: u32,
    lease: Duration,
) -> Result<DateTime<Utc>, DbError> {
    let from = StepState::InProgress;
    let expires = sqlx::query_scalar!(
        r#"UPDATE tasker.workflow_steps
           SET lease_expires_at = now() + make_interval(secs => $4)
           WHERE workflow_step_uuid = $1 AND state = $2 AND attempts = $3
           RETURNING lease_expires_at AS "lease_expires_at!""#,
        step.as_uuid(),
        from.as_str(),
        convert::to_i32(attempt),
        lease.as_secs_f64()
    )
    .fetch_optional(executor)
    .await?;
    expires.ok_or_else(|| conflict(step, from, Some(attempt)))
}

/// Saves attempt `attempt`'s checkpoint (a batch worker's cursor, items
/// processed and partial results), so a retried attempt resumes from it.
/// Not a state change, but fenced by the attempt like a result write.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the attempt is no longer current.
pub async fn save_checkpoint(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
    attempt: u32,
    checkpoint: &Value,
) -> Result<(), DbError> {
    let from = StepState::InProgress;
    let saved = sqlx::query_scalar!(
        r#"UPDATE tasker.workflow_steps
           SET checkpoint = $4, updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2 AND attempts = $3
           RETURNING attempts"#,
        step.as_uuid(),
        from.as_str(),
        convert::to_i32(attempt),
        checkpoint
    )
    .fetch_optional(executor)
    .await?;
    saved
        .map(|_| ())
        .ok_or_else(|| conflict(step, from, Some(attempt)))
}

/// `in_progress → enqueued_for_orchestration`: attempt `attempt` stores its
/// result (and, for decision and batchable steps, what to create next). A
/// stale attempt's write is rejected.
///
/// # Errors
/// [`DbError::TransitionConflict`] when `attempt` is not the current attempt.
pub async fn record_success(
    conn: &mut PgConnection,
    step: StepUuid,
    attempt: u32,
    result: &Value,
    flow_control: Option<&Value>,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let from = StepState::InProgress;
    let to = from.next(StepEvent::RecordSuccess)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $4, results = $5, flow_control = $6, lease_expires_at = NULL,
               updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2 AND attempts = $3
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        convert::to_i32(attempt),
        to.as_str(),
        result,
        flow_control
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(
        row.map(|r| (r.task_uuid, r.attempts)),
        step,
        from,
        Some(attempt),
    )?;
    record(
        conn,
        step,
        task,
        from,
        to,
        StepEvent::RecordSuccess,
        attempt,
        ctx,
    )
    .await?;
    Ok(task)
}

/// `in_progress → enqueued_as_error_for_orchestration`: attempt `attempt`
/// stores its failure. A stale attempt's write is rejected.
///
/// # Errors
/// [`DbError::TransitionConflict`] when `attempt` is not the current attempt.
pub async fn record_failure(
    conn: &mut PgConnection,
    step: StepUuid,
    attempt: u32,
    error: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let from = StepState::InProgress;
    let to = from.next(StepEvent::RecordFailure)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $4, last_error = $5, lease_expires_at = NULL, updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2 AND attempts = $3
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        convert::to_i32(attempt),
        to.as_str(),
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(
        row.map(|r| (r.task_uuid, r.attempts)),
        step,
        from,
        Some(attempt),
    )?;
    record(
        conn,
        step,
        task,
        from,
        to,
        StepEvent::RecordFailure,
        attempt,
        ctx,
    )
    .await?;
    Ok(task)
}

/// `in_progress → enqueued_as_error_for_orchestration` for a step whose
/// lease expired with no attempts left: its worker died on the last attempt.
/// Fenced by the attempt the caller saw.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the lease is live, attempts remain,
/// or the attempt moved on.
pub async fn record_lease_expiry(
    conn: &mut PgConnection,
    step: StepUuid,
    attempt: u32,
    error: &Value,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let from = StepState::InProgress;
    let to = from.next(StepEvent::RecordFailure)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $4, last_error = $5, lease_expires_at = NULL, updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2 AND attempts = $3
             AND lease_expires_at < now() AND attempts >= max_attempts
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        convert::to_i32(attempt),
        to.as_str(),
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(
        row.map(|r| (r.task_uuid, r.attempts)),
        step,
        from,
        Some(attempt),
    )?;
    record(
        conn,
        step,
        task,
        from,
        to,
        StepEvent::RecordFailure,
        attempt,
        ctx,
    )
    .await?;
    Ok(task)
}

/// `enqueued_for_orchestration → complete`: orchestration accepts the result.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step has no pending result.
pub async fn complete(
    conn: &mut PgConnection,
    step: StepUuid,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    settle(
        conn,
        step,
        StepState::EnqueuedForOrchestration,
        StepEvent::Complete,
        None,
        ctx,
    )
    .await
    .map(|_| ())
}

/// `enqueued_as_error_for_orchestration → waiting_for_retry`, due at `due`.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step has no pending failure.
pub async fn schedule_retry(
    conn: &mut PgConnection,
    step: StepUuid,
    due: DateTime<Utc>,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    let from = StepState::EnqueuedAsErrorForOrchestration;
    let to = from.next(StepEvent::ScheduleRetry)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, next_retry_at = $4, updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        to.as_str(),
        due
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
        StepEvent::ScheduleRetry,
        attempt,
        ctx,
    )
    .await
}

/// `enqueued_as_error_for_orchestration → error`: orchestration gives up.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step has no pending failure.
pub async fn fail(
    conn: &mut PgConnection,
    step: StepUuid,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    settle(
        conn,
        step,
        StepState::EnqueuedAsErrorForOrchestration,
        StepEvent::Fail,
        None,
        ctx,
    )
    .await
    .map(|_| ())
}

/// `<from> → cancelled` for a non-terminal step; a running attempt's later
/// result is then rejected by the fence.
///
/// # Errors
/// [`DbError::TransitionConflict`] when the step is no longer in `from`;
/// [`DbError::InvalidTransition`] when `from` is terminal.
pub async fn cancel(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    settle(conn, step, from, StepEvent::Cancel, None, ctx)
        .await
        .map(|_| ())
}

/// Moves a step into a terminal state by `event`: ends any lease and any
/// pending retry, stamps `completed_at`, and stores `result` when given (an
/// operator's `complete_manually`). Returns the step's task.
pub(crate) async fn settle(
    conn: &mut PgConnection,
    step: StepUuid,
    from: StepState,
    event: StepEvent,
    result: Option<&Value>,
    ctx: &TransitionContext,
) -> Result<TaskUuid, DbError> {
    let to = from.next(event)?;
    let row = sqlx::query!(
        r#"UPDATE tasker.workflow_steps
           SET state = $3, results = COALESCE($4, results), lease_expires_at = NULL,
               next_retry_at = NULL, completed_at = now(), updated_at = now()
           WHERE workflow_step_uuid = $1 AND state = $2
           RETURNING task_uuid, attempts"#,
        step.as_uuid(),
        from.as_str(),
        to.as_str(),
        result
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (task, attempt) = fenced(row.map(|r| (r.task_uuid, r.attempts)), step, from, None)?;
    record(conn, step, task, from, to, event, attempt, ctx).await?;
    Ok(task)
}

/// Maps the CAS's returned row to `(task, attempt)`, or a conflict.
pub(crate) fn fenced(
    row: Option<(Uuid, i32)>,
    step: StepUuid,
    from: StepState,
    expected_attempt: Option<u32>,
) -> Result<(TaskUuid, u32), DbError> {
    row.map(|(task, attempts)| (TaskUuid::from_uuid(task), convert::count(attempts)))
        .ok_or_else(|| conflict(step, from, expected_attempt))
}

pub(crate) fn conflict(step: StepUuid, from: StepState, expected_attempt: Option<u32>) -> DbError {
    DbError::TransitionConflict {
        entity: "step",
        uuid: step.as_uuid(),
        expected_state: from.as_str(),
        expected_attempt,
    }
}

#[allow(clippy::too_many_arguments)] // one call shape, private, mirrors the row it writes
pub(crate) async fn record(
    conn: &mut PgConnection,
    step: StepUuid,
    task: TaskUuid,
    from: StepState,
    to: StepState,
    event: StepEvent,
    attempt: u32,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    let row = Append {
        step,
        task,
        from: Some(from),
        to,
        event: event.as_str(),
        attempt,
    };
    history::append(conn, row, ctx).await
}

/// A row exactly as `SELECT` returns it.
pub(crate) struct StepRecord {
    pub(crate) workflow_step_uuid: Uuid,
    pub(crate) task_uuid: Uuid,
    pub(crate) name: String,
    pub(crate) template_step: String,
    pub(crate) step_type: String,
    pub(crate) callable: String,
    pub(crate) initialization: Value,
    pub(crate) timeout_seconds: Option<i32>,
    pub(crate) max_attempts: i32,
    pub(crate) retryable: bool,
    pub(crate) backoff: String,
    pub(crate) backoff_base_ms: i64,
    pub(crate) max_backoff_ms: i64,
    pub(crate) state: String,
    pub(crate) attempts: i32,
    pub(crate) inputs: Option<Value>,
    pub(crate) results: Option<Value>,
    pub(crate) flow_control: Option<Value>,
    pub(crate) last_error: Option<Value>,
    pub(crate) checkpoint: Option<Value>,
    pub(crate) next_retry_at: Option<DateTime<Utc>>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) claimed_by: Option<String>,
    pub(crate) attempt_started_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
}

impl TryFrom<StepRecord> for StepRow {
    type Error = DbError;

    fn try_from(r: StepRecord) -> Result<Self, DbError> {
        Ok(StepRow {
            workflow_step_uuid: StepUuid::from_uuid(r.workflow_step_uuid),
            task_uuid: TaskUuid::from_uuid(r.task_uuid),
            name: r.name,
            template_step: r.template_step,
            step_type: convert::step_type(&r.step_type)?,
            callable: r.callable,
            initialization: r.initialization,
            timeout_seconds: r.timeout_seconds.map(convert::count),
            retry: RetryPolicy {
                retryable: r.retryable,
                max_attempts: convert::count(r.max_attempts),
                backoff: convert::backoff(&r.backoff)?,
                backoff_base_ms: u64::try_from(r.backoff_base_ms).unwrap_or(0),
                max_backoff_ms: u64::try_from(r.max_backoff_ms).unwrap_or(0),
            },
            state: convert::step_state(&r.state)?,
            attempts: convert::count(r.attempts),
            inputs: r.inputs,
            results: r.results,
            flow_control: r.flow_control,
            last_error: r.last_error,
            checkpoint: r.checkpoint,
            next_retry_at: r.next_retry_at,
            lease_expires_at: r.lease_expires_at,
            claimed_by: r.claimed_by,
            attempt_started_at: r.attempt_started_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        })
    }
}

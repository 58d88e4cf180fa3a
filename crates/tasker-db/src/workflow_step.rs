//! `tasker.workflow_steps`: one row per step of a task — creating and
//! reading steps, and the fenced writes that are not state changes (lease
//! renewal, checkpoints). Every state change goes through the one writer,
//! [`crate::workflow_step_change`].

use std::collections::HashMap;
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
use crate::workflow_step_transition as history;

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

/// Inserts `steps` of `task` in state `pending`, with their first
/// transitions. Returns them as stored, in the order given.
///
/// # Errors
/// [`DbError`] on database failure (e.g. a duplicate step name in the task).
pub async fn insert_many(
    conn: &mut PgConnection,
    task: TaskUuid,
    steps: &[NewStep],
    ctx: &TransitionContext,
) -> Result<Vec<StepRow>, DbError> {
    insert_many_born(conn, task, steps, &[], ctx).await
}

/// Inserts `steps` of `task`; those whose entry in `enqueued` is true are
/// born `enqueued` (their history reads `→ pending`, `pending → enqueued`),
/// the rest `pending` — for a new task whose ready roots go straight to
/// workers, without an update per root. Returns the steps as stored, in
/// the order given, so that a creator need not read them back.
///
/// # Errors
/// [`DbError`] on database failure (e.g. a duplicate step name in the task).
pub async fn insert_many_born(
    conn: &mut PgConnection,
    task: TaskUuid,
    steps: &[NewStep],
    enqueued: &[bool],
    ctx: &TransitionContext,
) -> Result<Vec<StepRow>, DbError> {
    if steps.is_empty() {
        return Ok(Vec::new());
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
    let records = sqlx::query_as!(
        StepRecord,
        r#"INSERT INTO tasker.workflow_steps
               (workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                initialization, timeout_seconds, max_attempts, retryable, backoff,
                backoff_base_ms, max_backoff_ms, inputs, state, last_sort_key)
           SELECT u, $2, n, ts, ty, c, i, t, ma, r, b, bb, mb, inp, st,
                  CASE WHEN st = 'pending' THEN 0 ELSE 1 END
           FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::jsonb[], $8::int4[], $9::int4[], $10::bool[], $11::text[],
                       $12::int8[], $13::int8[], $14::jsonb[], $15::text[])
                AS s(u, n, ts, ty, c, i, t, ma, r, b, bb, mb, inp, st)
           RETURNING workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
                     initialization, timeout_seconds, max_attempts, retryable, backoff,
                     backoff_base_ms, max_backoff_ms, state, attempts, inputs, results,
                     flow_control, last_error, checkpoint, next_retry_at, lease_expires_at,
                     claimed_by, attempt_started_at, created_at, updated_at, completed_at"#,
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
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<StepUuid> = steps.iter().map(|s| s.uuid).collect();
    history::append_created_many(conn, task, &ids, enqueued, ctx).await?;
    // RETURNING's order is not promised; put the rows in the caller's.
    let mut by_uuid: HashMap<Uuid, StepRecord> = records
        .into_iter()
        .map(|r| (r.workflow_step_uuid, r))
        .collect();
    uuids
        .iter()
        .map(|u| {
            by_uuid
                .remove(u)
                .ok_or_else(|| DbError::Corrupt(format!("step {u} was inserted but not returned")))
                .and_then(StepRow::try_from)
        })
        .collect()
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

pub(crate) fn conflict(step: StepUuid, from: StepState, expected_attempt: Option<u32>) -> DbError {
    DbError::TransitionConflict {
        entity: "step",
        uuid: step.as_uuid(),
        expected_state: from.as_str(),
        expected_attempt,
    }
}

/// A row exactly as `SELECT` returns it.
#[derive(sqlx::FromRow)]
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

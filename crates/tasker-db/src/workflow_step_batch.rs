//! Set-based versions of the hot transitions: many steps per statement, each
//! still a compare-and-set on its expected state (and attempt), each writing
//! its transition row in the same statement. Hot paths (claiming, recording
//! results, completing, enqueuing) use these; the single-step functions of
//! [`crate::workflow_step`] remain for the rare paths.
//!
//! Every statement has the same shape: an `UPDATE … RETURNING` CTE makes the
//! change, a second demotes each changed step's most recent transition, and
//! an `INSERT` joined to that demotion adds the new row — so a new row for a
//! step is only produced after its old one was demoted, and the
//! one-most-recent index never sees two. Transition ids are UUIDv7s made in
//! Rust and matched to steps by position.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::{StepEvent, StepState};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;
use crate::workflow_step::{StepRecord, StepRow};

fn ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

/// `enqueued → in_progress` for every step of `steps` still enqueued: one
/// claim per step, new attempt numbers, leases of `lease`. Returns the
/// claimed steps as they now are; steps another worker claimed first (or
/// that moved on) are simply absent.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn claim_many(
    conn: &mut PgConnection,
    steps: &[StepUuid],
    worker_id: &str,
    lease: Duration,
    ctx: &TransitionContext,
) -> Result<Vec<StepRow>, DbError> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let from = StepState::Enqueued;
    let to = from.next(StepEvent::Start)?;
    let uuids: Vec<Uuid> = steps.iter().map(StepUuid::as_uuid).collect();
    let transition_ids = ids(steps.len());
    let rows = sqlx::query_as!(
        StepRecord,
        r#"WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS i(step, tid)),
           claimed AS (
               UPDATE tasker.workflow_steps s
               SET state = $4, attempts = s.attempts + 1, claimed_by = $5,
                   lease_expires_at = now() + make_interval(secs => $6),
                   attempt_started_at = now(), updated_at = now()
               FROM input i
               WHERE s.workflow_step_uuid = i.step AND s.state = $3
               RETURNING s.*, i.tid),
           prev AS (
               UPDATE tasker.workflow_step_transitions t SET most_recent = false
               FROM claimed c
               WHERE t.workflow_step_uuid = c.workflow_step_uuid AND t.most_recent
               RETURNING t.workflow_step_uuid, t.sort_key),
           added AS (
               INSERT INTO tasker.workflow_step_transitions
                   (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                    to_state, event, attempt, sort_key, most_recent, metadata, processor_id)
               SELECT c.tid, c.workflow_step_uuid, c.task_uuid, $3, $4, $7, c.attempts,
                      p.sort_key + 1, true, $8, $9
               FROM claimed c JOIN prev p USING (workflow_step_uuid))
           SELECT workflow_step_uuid AS "workflow_step_uuid!", task_uuid AS "task_uuid!",
                  name AS "name!", template_step AS "template_step!", step_type AS "step_type!",
                  callable AS "callable!", initialization AS "initialization!", timeout_seconds,
                  max_attempts AS "max_attempts!", retryable AS "retryable!", backoff AS "backoff!",
                  backoff_base_ms AS "backoff_base_ms!", max_backoff_ms AS "max_backoff_ms!",
                  state AS "state!", attempts AS "attempts!", inputs, results, flow_control,
                  last_error, checkpoint, next_retry_at, lease_expires_at, claimed_by,
                  attempt_started_at, created_at AS "created_at!", updated_at AS "updated_at!",
                  completed_at
           FROM claimed"#,
        &uuids,
        &transition_ids,
        from.as_str(),
        to.as_str(),
        worker_id,
        lease.as_secs_f64(),
        StepEvent::Start.as_str(),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(StepRow::try_from).collect()
}

/// One finished attempt to record.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptResult {
    /// The step.
    pub step: StepUuid,
    /// The attempt that produced it (the fence).
    pub attempt: u32,
    /// Success (`result`, `flow_control`) or failure (`error`).
    pub outcome: AttemptOutcome,
}

/// What an attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// The handler succeeded.
    Success {
        /// Its result.
        result: Value,
        /// What a decision or batchable step asks to create next.
        flow_control: Option<Value>,
    },
    /// The handler failed.
    Failure {
        /// The failure envelope.
        error: Value,
    },
}

/// `in_progress → enqueued_for_orchestration | enqueued_as_error_for_orchestration`
/// for each attempt that is still current. Returns `(step, task)` of the
/// accepted ones; a superseded attempt's result is absent (rejected).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn record_many(
    conn: &mut PgConnection,
    attempts: &[AttemptResult],
    ctx: &TransitionContext,
) -> Result<Vec<(StepUuid, TaskUuid)>, DbError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let from = StepState::InProgress;
    let ok_state = from.next(StepEvent::RecordSuccess)?;
    let err_state = from.next(StepEvent::RecordFailure)?;
    let mut steps = Vec::with_capacity(attempts.len());
    let mut numbers = Vec::with_capacity(attempts.len());
    let mut successes = Vec::with_capacity(attempts.len());
    let mut results: Vec<Option<Value>> = Vec::with_capacity(attempts.len());
    let mut controls: Vec<Option<Value>> = Vec::with_capacity(attempts.len());
    let mut errors: Vec<Option<Value>> = Vec::with_capacity(attempts.len());
    for a in attempts {
        steps.push(a.step.as_uuid());
        numbers.push(convert::to_i32(a.attempt));
        match &a.outcome {
            AttemptOutcome::Success {
                result,
                flow_control,
            } => {
                successes.push(true);
                results.push(Some(result.clone()));
                controls.push(flow_control.clone());
                errors.push(None);
            }
            AttemptOutcome::Failure { error } => {
                successes.push(false);
                results.push(None);
                controls.push(None);
                errors.push(Some(error.clone()));
            }
        }
    }
    let transition_ids = ids(attempts.len());
    let rows = sqlx::query!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::int4[], $3::bool[], $4::jsonb[], $5::jsonb[],
                                    $6::jsonb[], $7::uuid[])
                   AS i(step, attempt, ok, result, control, error, tid)),
           recorded AS (
               UPDATE tasker.workflow_steps s
               SET state = CASE WHEN i.ok THEN $9 ELSE $10 END,
                   results = CASE WHEN i.ok THEN i.result ELSE s.results END,
                   flow_control = CASE WHEN i.ok THEN i.control ELSE s.flow_control END,
                   last_error = CASE WHEN i.ok THEN s.last_error ELSE i.error END,
                   lease_expires_at = NULL, updated_at = now()
               FROM input i
               WHERE s.workflow_step_uuid = i.step AND s.state = $8 AND s.attempts = i.attempt
               RETURNING s.workflow_step_uuid, s.task_uuid, s.attempts, s.state, i.ok, i.tid),
           prev AS (
               UPDATE tasker.workflow_step_transitions t SET most_recent = false
               FROM recorded r
               WHERE t.workflow_step_uuid = r.workflow_step_uuid AND t.most_recent
               RETURNING t.workflow_step_uuid, t.sort_key),
           added AS (
               INSERT INTO tasker.workflow_step_transitions
                   (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                    to_state, event, attempt, sort_key, most_recent, metadata, processor_id)
               SELECT r.tid, r.workflow_step_uuid, r.task_uuid, $8, r.state,
                      CASE WHEN r.ok THEN $11 ELSE $12 END, r.attempts, p.sort_key + 1, true,
                      $13, $14
               FROM recorded r JOIN prev p USING (workflow_step_uuid))
           SELECT workflow_step_uuid AS "step!", task_uuid AS "task!" FROM recorded"#,
        &steps,
        &numbers,
        &successes,
        &results as &[Option<Value>],
        &controls as &[Option<Value>],
        &errors as &[Option<Value>],
        &transition_ids,
        from.as_str(),
        ok_state.as_str(),
        err_state.as_str(),
        StepEvent::RecordSuccess.as_str(),
        StepEvent::RecordFailure.as_str(),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (StepUuid::from_uuid(r.step), TaskUuid::from_uuid(r.task)))
        .collect())
}

/// `enqueued_for_orchestration → complete` for each of `steps` still
/// awaiting orchestration. Returns the completed ones.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn complete_many(
    conn: &mut PgConnection,
    steps: &[StepUuid],
    ctx: &TransitionContext,
) -> Result<Vec<StepUuid>, DbError> {
    let from = StepState::EnqueuedForOrchestration;
    let to = from.next(StepEvent::Complete)?;
    let pairs: Vec<(StepUuid, StepState)> = steps.iter().map(|s| (*s, from)).collect();
    move_many(conn, &pairs, to, StepEvent::Complete, true, ctx).await
}

/// `<from> → enqueued` for each `(step, from)` still in `from` (`pending` or
/// `waiting_for_retry`). Returns the enqueued ones.
///
/// # Errors
/// [`DbError::InvalidTransition`] when a `from` cannot be enqueued.
pub async fn enqueue_many(
    conn: &mut PgConnection,
    steps: &[(StepUuid, StepState)],
    ctx: &TransitionContext,
) -> Result<Vec<StepUuid>, DbError> {
    let mut to = StepState::Enqueued;
    for (_, from) in steps {
        to = from.next(StepEvent::Enqueue)?;
    }
    move_many(conn, steps, to, StepEvent::Enqueue, false, ctx).await
}

/// The shared statement of [`complete_many`] and [`enqueue_many`]: each
/// `(step, from)` still in `from` moves to `to`; `finish` stamps
/// `completed_at`, otherwise `next_retry_at` is cleared.
async fn move_many(
    conn: &mut PgConnection,
    steps: &[(StepUuid, StepState)],
    to: StepState,
    event: StepEvent,
    finish: bool,
    ctx: &TransitionContext,
) -> Result<Vec<StepUuid>, DbError> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let uuids: Vec<Uuid> = steps.iter().map(|(s, _)| s.as_uuid()).collect();
    let froms: Vec<String> = steps.iter().map(|(_, f)| f.as_str().to_owned()).collect();
    let transition_ids = ids(steps.len());
    let moved = sqlx::query_scalar!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS i(step, from_state, tid)),
           moved AS (
               UPDATE tasker.workflow_steps s
               SET state = $4, updated_at = now(),
                   completed_at = CASE WHEN $6 THEN now() ELSE s.completed_at END,
                   next_retry_at = CASE WHEN $6 THEN s.next_retry_at ELSE NULL END
               FROM input i
               WHERE s.workflow_step_uuid = i.step AND s.state = i.from_state
               RETURNING s.workflow_step_uuid, s.task_uuid, s.attempts, i.from_state, i.tid),
           prev AS (
               UPDATE tasker.workflow_step_transitions t SET most_recent = false
               FROM moved m
               WHERE t.workflow_step_uuid = m.workflow_step_uuid AND t.most_recent
               RETURNING t.workflow_step_uuid, t.sort_key),
           added AS (
               INSERT INTO tasker.workflow_step_transitions
                   (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                    to_state, event, attempt, sort_key, most_recent, metadata, processor_id)
               SELECT m.tid, m.workflow_step_uuid, m.task_uuid, m.from_state, $4, $5, m.attempts,
                      p.sort_key + 1, true, $7, $8
               FROM moved m JOIN prev p USING (workflow_step_uuid))
           SELECT workflow_step_uuid AS "step!" FROM moved"#,
        &uuids,
        &froms,
        &transition_ids,
        to.as_str(),
        event.as_str(),
        finish,
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .fetch_all(conn)
    .await?;
    Ok(moved.into_iter().map(StepUuid::from_uuid).collect())
}

/// What orchestration needs of a step to apply results and plan: no
/// results or inputs, and the step's parents inlined.
#[derive(Clone, Debug, PartialEq)]
pub struct StepNode {
    /// The step.
    pub workflow_step_uuid: StepUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// Its name.
    pub name: String,
    /// The template step it was made from.
    pub template_step: String,
    /// Its role in the graph.
    pub step_type: tasker_types::template::StepType,
    /// Its state.
    pub state: StepState,
    /// Its current attempt.
    pub attempts: u32,
    /// Its retry policy.
    pub retry: tasker_types::backoff::RetryPolicy,
    /// When its retry is due.
    pub next_retry_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its last failure (to decide on a retry).
    pub last_error: Option<Value>,
    /// What a decision or batchable step's handler asked to create (only
    /// loaded while its result awaits orchestration).
    pub flow_control: Option<Value>,
    /// Its parents in the task.
    pub parents: Vec<StepUuid>,
}

/// The step graph of each of `tasks`, in one statement.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn graph_for_tasks(
    conn: &mut PgConnection,
    tasks: &[TaskUuid],
) -> Result<Vec<StepNode>, DbError> {
    let uuids: Vec<Uuid> = tasks.iter().map(TaskUuid::as_uuid).collect();
    let rows = sqlx::query!(
        r#"SELECT s.workflow_step_uuid, s.task_uuid, s.name, s.template_step, s.step_type, s.state,
                  s.attempts, s.max_attempts, s.retryable, s.backoff, s.backoff_base_ms,
                  s.max_backoff_ms, s.next_retry_at, s.last_error,
                  CASE WHEN s.state = 'enqueued_for_orchestration' THEN s.flow_control END
                      AS flow_control,
                  ARRAY(SELECT e.from_step_uuid FROM tasker.workflow_step_edges e
                        WHERE e.to_step_uuid = s.workflow_step_uuid) AS "parents!"
           FROM tasker.workflow_steps s WHERE s.task_uuid = ANY($1)"#,
        &uuids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StepNode {
                workflow_step_uuid: StepUuid::from_uuid(r.workflow_step_uuid),
                task_uuid: TaskUuid::from_uuid(r.task_uuid),
                name: r.name,
                template_step: r.template_step,
                step_type: convert::step_type(&r.step_type)?,
                state: convert::step_state(&r.state)?,
                attempts: convert::count(r.attempts),
                retry: tasker_types::backoff::RetryPolicy {
                    retryable: r.retryable,
                    max_attempts: convert::count(r.max_attempts),
                    backoff: convert::backoff(&r.backoff)?,
                    backoff_base_ms: u64::try_from(r.backoff_base_ms).unwrap_or(0),
                    max_backoff_ms: u64::try_from(r.max_backoff_ms).unwrap_or(0),
                },
                next_retry_at: r.next_retry_at,
                last_error: r.last_error,
                flow_control: r.flow_control,
                parents: r.parents.into_iter().map(StepUuid::from_uuid).collect(),
            })
        })
        .collect()
}

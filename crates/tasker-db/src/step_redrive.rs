//! Steps whose pointer message may be lost (SPEC §6, ADR 001): `enqueued`,
//! or awaiting orchestration, for longer than a threshold; `waiting_for_retry`
//! that long past due; and `in_progress` with a lease that ran out at all —
//! a worker acknowledges its message at claim time, so a dead worker's step
//! has no message left, and its expired lease is the signal. [`mark_due`] picks them and stamps `redriven_at`, so a step is
//! re-driven at most once per threshold; the caller re-sends its pointer in
//! the same transaction. Re-sending is safe because every consumer is
//! idempotent: a duplicate claim fails its fence, a duplicate result finds
//! its step already decided.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid, TemplateUuid};
use tasker_types::state::StepState;

use crate::convert;
use crate::error::DbError;

/// Which pointer a re-driven step needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedriveKind {
    /// `enqueued`: its dispatch pointer to its worker queue.
    Dispatch,
    /// `in_progress` with an expired lease: a dispatch pointer, so that a
    /// worker re-claims it (or fails it, on its last attempt).
    LeaseExpired,
    /// Awaiting orchestration: its result pointer.
    Result,
    /// `waiting_for_retry` past due: its retry reminder.
    Retry,
}

impl RedriveKind {
    /// The kind's name, as metrics label it.
    pub const fn as_str(self) -> &'static str {
        match self {
            RedriveKind::Dispatch => "dispatch",
            RedriveKind::LeaseExpired => "lease_expired",
            RedriveKind::Result => "result",
            RedriveKind::Retry => "retry",
        }
    }

    fn of(state: StepState) -> Option<Self> {
        match state {
            StepState::Enqueued => Some(RedriveKind::Dispatch),
            StepState::InProgress => Some(RedriveKind::LeaseExpired),
            StepState::EnqueuedForOrchestration | StepState::EnqueuedAsErrorForOrchestration => {
                Some(RedriveKind::Result)
            }
            StepState::WaitingForRetry => Some(RedriveKind::Retry),
            _ => None,
        }
    }
}

/// A step to re-drive, with what its pointer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueStep {
    /// The step.
    pub step_uuid: StepUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// The template version the task runs (for the step's queue).
    pub named_task_uuid: TemplateUuid,
    /// The template step (for the step's queue).
    pub template_step: String,
    /// Its current attempt (result and retry pointers name it).
    pub attempt: u32,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// The trace the task was created in.
    pub traceparent: Option<tasker_types::trace::TraceParent>,
    /// Which pointer it needs.
    pub kind: RedriveKind,
}

/// Picks at most `limit` steps that have waited longer than `after` at
/// instant `now`, or whose lease ran out before `now` (and that were not
/// re-driven within `after`), stamps them
/// re-driven at `now`, and returns them, in the caller's transaction. A
/// step that moved since it was picked is left out. Indexed: each state's
/// candidates come from a partial index in age order.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn mark_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: TimeDelta,
    limit: u32,
) -> Result<Vec<DueStep>, DbError> {
    let cutoff = now - after;
    let rows = sqlx::query!(
        r#"WITH candidates AS (
               (SELECT workflow_step_uuid, state FROM tasker.workflow_steps
                WHERE state IN ('enqueued', 'enqueued_for_orchestration',
                                'enqueued_as_error_for_orchestration')
                  AND updated_at < $1 AND (redriven_at IS NULL OR redriven_at < $1)
                ORDER BY updated_at LIMIT $2)
               UNION ALL
               (SELECT workflow_step_uuid, state FROM tasker.workflow_steps
                WHERE state = 'in_progress'
                  AND lease_expires_at < $3
                  AND (redriven_at IS NULL OR redriven_at < $1 OR redriven_at < lease_expires_at)
                ORDER BY lease_expires_at LIMIT $2)
               UNION ALL
               (SELECT workflow_step_uuid, state FROM tasker.workflow_steps
                WHERE state = 'waiting_for_retry'
                  AND next_retry_at < $1 AND (redriven_at IS NULL OR redriven_at < $1)
                ORDER BY next_retry_at LIMIT $2)
               LIMIT $2),
           marked AS (
               UPDATE tasker.workflow_steps s SET redriven_at = $3
               FROM candidates c
               WHERE s.workflow_step_uuid = c.workflow_step_uuid AND s.state = c.state
               RETURNING s.workflow_step_uuid, s.task_uuid, s.template_step, s.state, s.attempts)
           SELECT m.workflow_step_uuid AS "workflow_step_uuid!", m.task_uuid AS "task_uuid!",
                  m.template_step AS "template_step!", m.state AS "state!",
                  m.attempts AS "attempts!", t.named_task_uuid, t.correlation_id, t.traceparent
           FROM marked m JOIN tasker.tasks t ON t.task_uuid = m.task_uuid
           ORDER BY m.workflow_step_uuid"#,
        cutoff,
        i64::from(limit),
        now,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let state = convert::step_state(&r.state)?;
            let kind = RedriveKind::of(state).ok_or_else(|| {
                DbError::Corrupt(format!(
                    "step {} re-driven in state {state}",
                    r.workflow_step_uuid
                ))
            })?;
            Ok(DueStep {
                step_uuid: StepUuid::from_uuid(r.workflow_step_uuid),
                task_uuid: TaskUuid::from_uuid(r.task_uuid),
                named_task_uuid: TemplateUuid::from_uuid(r.named_task_uuid),
                template_step: r.template_step,
                attempt: convert::count(r.attempts),
                correlation_id: CorrelationId::from_uuid(r.correlation_id),
                traceparent: r.traceparent.as_deref().and_then(|t| t.parse().ok()),
                kind,
            })
        })
        .collect()
}

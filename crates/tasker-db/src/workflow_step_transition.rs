//! `tasker.workflow_step_transitions`: the insert-only history of step
//! states. A step's most recent transition is its highest `sort_key` (SPEC
//! §3); [`crate::workflow_step_change`] writes every row after the first.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::{StepEvent, StepState};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;

/// One recorded step state change.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTransitionRow {
    /// State before (`None` for the first row).
    pub from_state: Option<StepState>,
    /// State after.
    pub to_state: StepState,
    /// The event's name.
    pub event: String,
    /// The step's attempt number after the change.
    pub attempt: u32,
    /// Position in the step's history, from 0.
    pub sort_key: i32,
    /// Details.
    pub metadata: serde_json::Value,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Records the first (`→ pending`) transition of newly created steps and,
/// for those `enqueued` says were enqueued at birth, the `pending →
/// enqueued` one after it — one statement for all.
pub(crate) async fn append_created_many(
    conn: &mut PgConnection,
    task: TaskUuid,
    steps: &[StepUuid],
    enqueued: &[bool],
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    let mut ids = Vec::with_capacity(steps.len() * 2);
    let mut step_uuids = Vec::with_capacity(steps.len() * 2);
    let mut from: Vec<Option<String>> = Vec::with_capacity(steps.len() * 2);
    let mut to = Vec::with_capacity(steps.len() * 2);
    let mut events = Vec::with_capacity(steps.len() * 2);
    let mut keys = Vec::with_capacity(steps.len() * 2);
    for (i, step) in steps.iter().enumerate() {
        let born_enqueued = enqueued.get(i).copied().unwrap_or(false);
        ids.push(Uuid::now_v7());
        step_uuids.push(step.as_uuid());
        from.push(None);
        to.push(StepState::Pending.as_str().to_owned());
        events.push("create".to_owned());
        keys.push(0);
        if born_enqueued {
            let enqueued_state = StepState::Pending.next(StepEvent::Enqueue)?;
            ids.push(Uuid::now_v7());
            step_uuids.push(step.as_uuid());
            from.push(Some(StepState::Pending.as_str().to_owned()));
            to.push(enqueued_state.as_str().to_owned());
            events.push(StepEvent::Enqueue.as_str().to_owned());
            keys.push(1);
        }
    }
    sqlx::query!(
        r#"INSERT INTO tasker.workflow_step_transitions
               (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                to_state, event, attempt, sort_key, metadata, processor_id)
           SELECT t, s, $3, f, tt, e, 0, k, $4, $5
           FROM unnest($1::uuid[], $2::uuid[], $6::text[], $7::text[], $8::text[], $9::int4[])
               AS u(t, s, f, tt, e, k)"#,
        &ids,
        &step_uuids,
        task.as_uuid(),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
        &from as &[Option<String>],
        &to,
        &events,
        &keys,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A step's history, oldest first.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
) -> Result<Vec<StepTransitionRow>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT from_state, to_state, event, attempt, sort_key, metadata,
                  processor_id, created_at
           FROM tasker.workflow_step_transitions
           WHERE workflow_step_uuid = $1 ORDER BY sort_key"#,
        step.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StepTransitionRow {
                from_state: r
                    .from_state
                    .as_deref()
                    .map(convert::step_state)
                    .transpose()?,
                to_state: convert::step_state(&r.to_state)?,
                event: r.event,
                attempt: convert::count(r.attempt),
                sort_key: r.sort_key,
                metadata: r.metadata,
                processor_id: r.processor_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

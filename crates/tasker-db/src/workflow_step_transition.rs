//! `tasker.workflow_step_transitions`: the append-only history of step states.

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
    /// Whether this is the step's current state.
    pub most_recent: bool,
    /// Details.
    pub metadata: serde_json::Value,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Describes one step transition to append.
pub(crate) struct Append<'a> {
    pub(crate) step: StepUuid,
    pub(crate) task: TaskUuid,
    pub(crate) from: Option<StepState>,
    pub(crate) to: StepState,
    pub(crate) event: &'a str,
    pub(crate) attempt: u32,
}

/// Appends a row, demoting the previous most recent one, in the caller's
/// transaction (which has just changed `workflow_steps.state`).
pub(crate) async fn append(
    conn: &mut PgConnection,
    row: Append<'_>,
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    // The scalar subquery reads `prev`, so the demotion runs before the new
    // row is inserted and the one-most-recent index never sees two.
    sqlx::query!(
        r#"WITH prev AS (
               UPDATE tasker.workflow_step_transitions SET most_recent = false
               WHERE workflow_step_uuid = $2 AND most_recent
               RETURNING sort_key)
           INSERT INTO tasker.workflow_step_transitions
               (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                to_state, event, attempt, sort_key, most_recent, metadata, processor_id)
           SELECT $1, $2, $3, $4, $5, $6, $7,
                  COALESCE((SELECT max(sort_key) FROM prev), -1) + 1, true, $8, $9"#,
        Uuid::now_v7(),
        row.step.as_uuid(),
        row.task.as_uuid(),
        row.from.map(StepState::as_str),
        row.to.as_str(),
        row.event,
        convert::to_i32(row.attempt),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .execute(conn)
    .await?;
    Ok(())
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
    let mut latest = Vec::with_capacity(steps.len() * 2);
    for (i, step) in steps.iter().enumerate() {
        let born_enqueued = enqueued.get(i).copied().unwrap_or(false);
        ids.push(Uuid::now_v7());
        step_uuids.push(step.as_uuid());
        from.push(None);
        to.push(StepState::Pending.as_str().to_owned());
        events.push("create".to_owned());
        keys.push(0);
        latest.push(!born_enqueued);
        if born_enqueued {
            let enqueued_state = StepState::Pending.next(StepEvent::Enqueue)?;
            ids.push(Uuid::now_v7());
            step_uuids.push(step.as_uuid());
            from.push(Some(StepState::Pending.as_str().to_owned()));
            to.push(enqueued_state.as_str().to_owned());
            events.push(StepEvent::Enqueue.as_str().to_owned());
            keys.push(1);
            latest.push(true);
        }
    }
    sqlx::query!(
        r#"INSERT INTO tasker.workflow_step_transitions
               (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state,
                to_state, event, attempt, sort_key, most_recent, metadata, processor_id)
           SELECT t, s, $3, f, tt, e, 0, k, m, $4, $5
           FROM unnest($1::uuid[], $2::uuid[], $6::text[], $7::text[], $8::text[], $9::int4[],
                       $10::bool[]) AS u(t, s, f, tt, e, k, m)"#,
        &ids,
        &step_uuids,
        task.as_uuid(),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
        &from as &[Option<String>],
        &to,
        &events,
        &keys,
        &latest,
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
        r#"SELECT from_state, to_state, event, attempt, sort_key, most_recent, metadata,
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
                most_recent: r.most_recent,
                metadata: r.metadata,
                processor_id: r.processor_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

//! `tasker.task_transitions`: the append-only history of task states.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_types::ids::TaskUuid;
use tasker_types::state::{TaskEvent, TaskState};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;

/// One recorded task state change.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskTransitionRow {
    /// State before (`None` for the first row).
    pub from_state: Option<TaskState>,
    /// State after.
    pub to_state: TaskState,
    /// The event's name.
    pub event: String,
    /// Position in the task's history, from 0.
    pub sort_key: i32,
    /// Whether this is the task's current state.
    pub most_recent: bool,
    /// Details.
    pub metadata: serde_json::Value,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Appends one row per event of a path through the machine (`states` has
/// one more entry than `events`), demoting the previous most recent row.
pub(crate) async fn append_path(
    conn: &mut PgConnection,
    task: TaskUuid,
    states: &[TaskState],
    events: &[TaskEvent],
    ctx: &TransitionContext,
) -> Result<(), DbError> {
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let from: Vec<String> = states
        .iter()
        .take(events.len())
        .map(|s| s.as_str().to_owned())
        .collect();
    let to: Vec<String> = states
        .iter()
        .skip(1)
        .map(|s| s.as_str().to_owned())
        .collect();
    let names: Vec<String> = events.iter().map(|e| e.as_str().to_owned()).collect();
    let last = i32::try_from(events.len()).unwrap_or(i32::MAX);
    // The scalar subquery reads `prev`, so the demotion runs before the new
    // rows are inserted and the one-most-recent index never sees two.
    sqlx::query!(
        r#"WITH prev AS (
               UPDATE tasker.task_transitions SET most_recent = false
               WHERE task_uuid = $2 AND most_recent
               RETURNING sort_key),
           base AS (SELECT COALESCE((SELECT max(sort_key) FROM prev), -1) AS k)
           INSERT INTO tasker.task_transitions
               (task_transition_uuid, task_uuid, from_state, to_state, event, sort_key,
                most_recent, metadata, processor_id)
           SELECT p.id, $2, p.f, p.t, p.e, base.k + p.n::int4, p.n = $6, $7, $8
           FROM base, unnest($1::uuid[], $3::text[], $4::text[], $5::text[])
                WITH ORDINALITY AS p(id, f, t, e, n)"#,
        &ids,
        task.as_uuid(),
        &from,
        &to,
        &names,
        i64::from(last),
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A task's history, oldest first.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list(
    executor: impl PgExecutor<'_>,
    task: TaskUuid,
) -> Result<Vec<TaskTransitionRow>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT from_state, to_state, event, sort_key, most_recent, metadata, processor_id,
                  created_at
           FROM tasker.task_transitions WHERE task_uuid = $1 ORDER BY sort_key"#,
        task.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(TaskTransitionRow {
                from_state: r
                    .from_state
                    .as_deref()
                    .map(convert::task_state)
                    .transpose()?,
                to_state: convert::task_state(&r.to_state)?,
                event: r.event,
                sort_key: r.sort_key,
                most_recent: r.most_recent,
                metadata: r.metadata,
                processor_id: r.processor_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

//! A task's whole history — its own transitions and its steps' — as one
//! feed, for `WatchTask`, and the registry of watched tasks. Read whole
//! each time a watcher is woken: the notification only says *which* task
//! changed, and only watched tasks notify (see the
//! `transition_notifications` migration).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_types::ids::{StepUuid, TaskUuid};
use uuid::Uuid;

use crate::error::DbError;

/// The channel every transition insert notifies, with the task's UUID.
pub const TRANSITIONS_CHANNEL: &str = "tasker_transitions";

/// One transition of a task or of one of its steps.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FeedEntry {
    /// The transition row's id (UUIDv7: ordered as the engine wrote them).
    pub transition_uuid: Uuid,
    /// The step, for a step transition.
    pub workflow_step_uuid: Option<Uuid>,
    /// The step's name, for a step transition.
    pub step_name: Option<String>,
    /// State before (`None` for the first).
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// The event's name.
    pub event: String,
    /// The step's attempt after the change (step transitions).
    pub attempt: Option<i32>,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When its transaction began.
    pub created_at: DateTime<Utc>,
}

impl FeedEntry {
    /// The step, typed.
    pub fn step(&self) -> Option<StepUuid> {
        self.workflow_step_uuid.map(StepUuid::from)
    }
}

/// Every transition of `task` and its steps, in the order they were written.
/// Step transitions are found through the task's steps (the history has no
/// task index, so that each state change writes one index entry fewer).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn list_for_task<'e>(
    executor: impl PgExecutor<'e>,
    task: TaskUuid,
) -> Result<Vec<FeedEntry>, DbError> {
    let rows = sqlx::query_as::<_, FeedEntry>(
        "SELECT t.task_transition_uuid AS transition_uuid, NULL::uuid AS workflow_step_uuid,
                NULL::text AS step_name, t.from_state, t.to_state, t.event,
                NULL::integer AS attempt, t.processor_id, t.created_at
           FROM tasker.task_transitions t
          WHERE t.task_uuid = $1
         UNION ALL
         SELECT s.workflow_step_transition_uuid, s.workflow_step_uuid, w.name, s.from_state,
                s.to_state, s.event, s.attempt, s.processor_id, s.created_at
           FROM tasker.workflow_steps w
           JOIN tasker.workflow_step_transitions s ON s.workflow_step_uuid = w.workflow_step_uuid
          WHERE w.task_uuid = $1
         ORDER BY 1",
    )
    .bind(Uuid::from(task))
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// Registers an open watch of `task`, so its transitions notify
/// [`TRANSITIONS_CHANNEL`] (unwatched tasks' do not).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn register_watch<'e>(
    executor: impl PgExecutor<'e>,
    watch: Uuid,
    task: TaskUuid,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO tasker.task_watches (watch_uuid, task_uuid) VALUES ($1, $2)")
        .bind(watch)
        .bind(Uuid::from(task))
        .execute(executor)
        .await?;
    Ok(())
}

/// Removes a watch registered by [`register_watch`].
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn unregister_watch<'e>(
    executor: impl PgExecutor<'e>,
    watch: Uuid,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM tasker.task_watches WHERE watch_uuid = $1")
        .bind(watch)
        .execute(executor)
        .await?;
    Ok(())
}

/// Removes watches registered before `before` — left by a server that
/// stopped without unregistering. Returns how many.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn delete_watches_before<'e>(
    executor: impl PgExecutor<'e>,
    before: DateTime<Utc>,
) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM tasker.task_watches WHERE created_at < $1")
        .bind(before)
        .execute(executor)
        .await?;
    Ok(done.rows_affected())
}

//! Which tasks stopped making progress (SPEC §4.10). A task's last activity
//! is the latest of its own change, any step's change, any live lease and
//! any scheduled retry — so a long handler that keeps its lease, or a retry
//! that is simply not due yet, is never stale.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_types::ids::TaskUuid;
use tasker_types::state::TaskState;

use crate::convert;
use crate::error::DbError;

/// Thresholds in minutes (0 = off); a template's `lifecycle` overrides each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StaleThresholds {
    /// `waiting_for_dependencies` without progress.
    pub waiting_for_dependencies: u32,
    /// `waiting_for_retry` without progress.
    pub waiting_for_retry: u32,
    /// `steps_in_process` or `blocked_by_failures` without progress.
    pub steps_in_process: u32,
    /// Total age of an unfinished task.
    pub max_duration: u32,
}

/// A task past one of its thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleTask {
    /// The task.
    pub task_uuid: TaskUuid,
    /// Its state.
    pub state: TaskState,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Its last activity.
    pub last_activity: DateTime<Utc>,
    /// The no-progress threshold that applies to its state (0 = off).
    pub state_minutes: u32,
    /// The total-age threshold that applies to it (0 = off).
    pub duration_minutes: u32,
}

impl StaleTask {
    /// Whether it is past its total-age threshold (rather than only idle).
    pub fn too_old(&self, now: DateTime<Utc>) -> bool {
        self.duration_minutes > 0
            && now - self.created_at > chrono::TimeDelta::minutes(i64::from(self.duration_minutes))
    }
}

/// Unfinished tasks past a threshold at instant `now` (oldest id first, at
/// most `limit`); only `task` when given. Reads without locking: the
/// detector re-checks each task under its lock before it acts.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn find(
    executor: impl PgExecutor<'_>,
    thresholds: &StaleThresholds,
    now: DateTime<Utc>,
    task: Option<TaskUuid>,
    limit: u32,
) -> Result<Vec<StaleTask>, DbError> {
    let minutes = |m: u32| i32::try_from(m).unwrap_or(i32::MAX);
    let rows = sqlx::query!(
        r#"WITH candidates AS (
               SELECT t.task_uuid, t.state, t.created_at, t.updated_at,
                      nt.template -> 'lifecycle' AS lifecycle
               FROM tasker.tasks t JOIN tasker.named_tasks nt USING (named_task_uuid)
               WHERE t.state IN ('waiting_for_dependencies', 'waiting_for_retry',
                                 'steps_in_process', 'blocked_by_failures')
                 AND ($6::uuid IS NULL OR t.task_uuid = $6))
           SELECT c.task_uuid, c.state, c.created_at, a.last_activity AS "last_activity!",
                  l.state_minutes AS "state_minutes!", l.duration_minutes AS "duration_minutes!"
           FROM candidates c
           CROSS JOIN LATERAL (
               SELECT CASE c.state
                   WHEN 'waiting_for_dependencies'
                       THEN coalesce((c.lifecycle ->> 'max_waiting_for_dependencies_minutes')::int, $1)
                   WHEN 'waiting_for_retry'
                       THEN coalesce((c.lifecycle ->> 'max_waiting_for_retry_minutes')::int, $2)
                   ELSE coalesce((c.lifecycle ->> 'max_steps_in_process_minutes')::int, $3)
                   END AS state_minutes,
                   coalesce((c.lifecycle ->> 'max_duration_minutes')::int, $4) AS duration_minutes) l
           CROSS JOIN LATERAL (
               SELECT greatest(c.updated_at, max(s.updated_at), max(s.lease_expires_at),
                               max(s.next_retry_at)) AS last_activity
               FROM tasker.workflow_steps s WHERE s.task_uuid = c.task_uuid) a
           WHERE (l.state_minutes > 0 AND a.last_activity < $5::timestamptz - make_interval(mins => l.state_minutes))
              OR (l.duration_minutes > 0 AND c.created_at < $5::timestamptz - make_interval(mins => l.duration_minutes))
           ORDER BY c.task_uuid
           LIMIT $7"#,
        minutes(thresholds.waiting_for_dependencies),
        minutes(thresholds.waiting_for_retry),
        minutes(thresholds.steps_in_process),
        minutes(thresholds.max_duration),
        now,
        task.map(|t| t.as_uuid()),
        i64::from(limit),
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StaleTask {
                task_uuid: TaskUuid::from_uuid(r.task_uuid),
                state: convert::task_state(&r.state)?,
                created_at: r.created_at,
                last_activity: r.last_activity,
                state_minutes: convert::count(r.state_minutes),
                duration_minutes: convert::count(r.duration_minutes),
            })
        })
        .collect()
}

//! `tasker.task_transitions`: the insert-only history of task states. A
//! task's most recent transition is its highest `sort_key` (SPEC §3).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use tasker_types::ids::TaskUuid;
use tasker_types::state::TaskState;

use crate::convert;
use crate::error::DbError;

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
    /// Details.
    pub metadata: serde_json::Value,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
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
        r#"SELECT from_state, to_state, event, sort_key, metadata, processor_id,
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
                metadata: r.metadata,
                processor_id: r.processor_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

//! `tasker.workflow_step_edges`: parent → child links between the steps of a task.

use sqlx::{PgConnection, PgExecutor};
use tasker_types::ids::{StepUuid, TaskUuid};
use uuid::Uuid;

use crate::error::DbError;

/// A parent → child link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    /// The parent (runs first).
    pub from: StepUuid,
    /// The child (depends on the parent).
    pub to: StepUuid,
}

/// Inserts `edges` of `task`; an edge that exists already is left alone.
///
/// # Errors
/// [`DbError`] on database failure (e.g. a step of another task).
pub async fn insert_many(
    conn: &mut PgConnection,
    task: TaskUuid,
    edges: &[Edge],
) -> Result<(), DbError> {
    if edges.is_empty() {
        return Ok(());
    }
    let from: Vec<Uuid> = edges.iter().map(|e| e.from.as_uuid()).collect();
    let to: Vec<Uuid> = edges.iter().map(|e| e.to.as_uuid()).collect();
    sqlx::query!(
        r#"INSERT INTO tasker.workflow_step_edges (task_uuid, from_step_uuid, to_step_uuid)
           SELECT $1, f, t FROM unnest($2::uuid[], $3::uuid[]) AS e(f, t)
           ON CONFLICT DO NOTHING"#,
        task.as_uuid(),
        &from,
        &to
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Every edge of `task`.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn list_for_task(
    executor: impl PgExecutor<'_>,
    task: TaskUuid,
) -> Result<Vec<Edge>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT from_step_uuid, to_step_uuid FROM tasker.workflow_step_edges
           WHERE task_uuid = $1 ORDER BY from_step_uuid, to_step_uuid"#,
        task.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Edge {
            from: StepUuid::from_uuid(r.from_step_uuid),
            to: StepUuid::from_uuid(r.to_step_uuid),
        })
        .collect())
}

/// Every edge of each of `tasks`, with its task.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn list_for_tasks(
    executor: impl PgExecutor<'_>,
    tasks: &[TaskUuid],
) -> Result<Vec<(TaskUuid, Edge)>, DbError> {
    let uuids: Vec<Uuid> = tasks.iter().map(TaskUuid::as_uuid).collect();
    let rows = sqlx::query!(
        r#"SELECT task_uuid, from_step_uuid, to_step_uuid FROM tasker.workflow_step_edges
           WHERE task_uuid = ANY($1)"#,
        &uuids
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                TaskUuid::from_uuid(r.task_uuid),
                Edge {
                    from: StepUuid::from_uuid(r.from_step_uuid),
                    to: StepUuid::from_uuid(r.to_step_uuid),
                },
            )
        })
        .collect())
}

//! The step graphs orchestration decides over: every step of a task with
//! what the planner needs (state, attempt, retry policy, parents) and what
//! applying a result needs (a failure or an outcome awaiting orchestration)
//! — no results or inputs.

use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::outcome::StepFailure;
use tasker_types::state::StepState;
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;

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
    /// Its attempt's failure, while orchestration has yet to decide on a
    /// retry (`enqueued_as_error_for_orchestration`); an envelope that does
    /// not parse is a permanent `unreadable_failure`.
    pub last_error: Option<StepFailure>,
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
                  s.max_backoff_ms, s.next_retry_at,
                  CASE WHEN s.state = 'enqueued_as_error_for_orchestration' THEN s.last_error END
                      AS last_error,
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
                last_error: r.last_error.as_ref().map(StepFailure::from_stored),
                flow_control: r.flow_control,
                parents: r.parents.into_iter().map(StepUuid::from_uuid).collect(),
            })
        })
        .collect()
}

//! Cancelling a task (SPEC §4.11): every non-terminal step is cancelled at
//! once, the task follows, and workers running its handlers are told on
//! commit. A result that arrives later finds its step cancelled and is
//! rejected by the fence.

use tasker_db::task::{self, TaskRow};
use tasker_db::{DbError, workflow_step};
use tasker_types::ids::TaskUuid;
use tasker_types::state::{TaskEvent, TaskState};

use crate::error::OrchestrationError;
use crate::shared::Shared;

/// How many times a step that changes under us is re-read before giving up.
const STEP_RETRIES: usize = 5;

/// Cancels `task`. `reason` is recorded on every transition.
pub(crate) async fn cancel_task(
    shared: &Shared,
    task_uuid: TaskUuid,
    reason: Option<&str>,
) -> Result<TaskRow, OrchestrationError> {
    let ctx = shared
        .ctx()
        .with_metadata(serde_json::json!({ "reason": reason }));
    let mut tx = shared.pool.begin().await?;
    let mut locked = task::lock_many(&mut tx, &[task_uuid]).await?;
    let Some(task_row) = locked.pop() else {
        return Err(OrchestrationError::TaskNotFound(task_uuid));
    };
    if task_row.state.is_terminal() {
        return Err(OrchestrationError::AlreadyFinished {
            task: task_uuid,
            state: task_row.state,
        });
    }
    let mut cancelled_steps = 0;
    for step in workflow_step::list_for_task(&mut *tx, task_uuid).await? {
        let mut state = step.state;
        for _ in 0..STEP_RETRIES {
            if state.is_terminal() {
                break;
            }
            // Workers do not take the task lock: a step may move between our
            // read and our write. Re-read and try again from its new state.
            match workflow_step::cancel(&mut tx, step.workflow_step_uuid, state, &ctx).await {
                Ok(()) => {
                    cancelled_steps += 1;
                    break;
                }
                Err(DbError::TransitionConflict { .. }) => {
                    let Some(fresh) = workflow_step::get(&mut *tx, step.workflow_step_uuid).await?
                    else {
                        break;
                    };
                    state = fresh.state;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    let state =
        task::transition(&mut tx, task_uuid, task_row.state, TaskEvent::Cancel, &ctx).await?;
    task::announce_cancellation(&mut tx, task_uuid).await?;
    tx.commit().await?;
    tracing::info!(%task_uuid, cancelled_steps, "task cancelled");
    debug_assert_eq!(state, TaskState::Cancelled);
    Ok(TaskRow { state, ..task_row })
}

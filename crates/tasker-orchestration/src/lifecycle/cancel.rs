//! Cancelling a task (SPEC §4.11): every non-terminal step is cancelled at
//! once, the task follows, and workers running its handlers are told on
//! commit. A result that arrives later finds its step cancelled and is
//! rejected by the fence.

use std::collections::HashSet;

use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step;
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_types::ids::{StepUuid, TaskUuid};
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
    // Workers do not take the task lock: a step may move between our read
    // and our write. Those that did are re-read and tried again from their
    // new state.
    let mut cancelled_steps = 0;
    let mut missed: Option<HashSet<StepUuid>> = None;
    for _ in 0..STEP_RETRIES {
        let cancels: Vec<StepChange> = workflow_step::list_for_task(&mut *tx, task_uuid)
            .await?
            .into_iter()
            .filter(|s| !s.state.is_terminal())
            .filter(|s| {
                missed
                    .as_ref()
                    .is_none_or(|m| m.contains(&s.workflow_step_uuid))
            })
            .map(|s| StepChange::cancel(s.workflow_step_uuid, s.state))
            .collect();
        if cancels.is_empty() {
            break;
        }
        let cancelled: HashSet<StepUuid> = workflow_step_change::apply(&mut tx, &cancels, &ctx)
            .await?
            .into_iter()
            .map(|changed| changed.step)
            .collect();
        cancelled_steps += cancelled.len();
        missed = Some(
            cancels
                .iter()
                .map(|c| c.step)
                .filter(|s| !cancelled.contains(s))
                .collect(),
        );
    }
    let state =
        task::transition(&mut tx, task_uuid, task_row.state, TaskEvent::Cancel, &ctx).await?;
    task::announce_cancellation(&mut tx, task_uuid).await?;
    tx.commit().await?;
    tracing::info!(%task_uuid, cancelled_steps, "task cancelled");
    debug_assert_eq!(state, TaskState::Cancelled);
    Ok(TaskRow { state, ..task_row })
}

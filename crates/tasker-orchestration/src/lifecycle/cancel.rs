//! Cancelling a task (SPEC §4.11): every non-terminal step is cancelled at
//! once, the task follows, and workers running its handlers are told on
//! commit. A result that arrives later finds its step cancelled and is
//! rejected by the fence.

use tasker_db::task::TaskRow;
use tasker_types::ids::TaskUuid;
use tasker_types::state::TaskState;

use super::evaluate::Input;
use super::task_operation::apply_to_task;
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// Cancels `task`. `reason` is recorded on every transition.
pub(crate) async fn cancel_task(
    shared: &Shared,
    task_uuid: TaskUuid,
    reason: Option<&str>,
) -> Result<TaskRow, OrchestrationError> {
    let ctx = shared
        .ctx()
        .with_metadata(serde_json::json!({ "reason": reason }));
    let open = |state: TaskState| !state.is_terminal();
    let (task_row, report) = apply_to_task(shared, task_uuid, &ctx, &Input::Cancel, open).await?;
    tracing::info!(%task_uuid, cancelled_steps = report.cancelled, "task cancelled");
    Ok(TaskRow {
        state: TaskState::Cancelled,
        ..task_row
    })
}

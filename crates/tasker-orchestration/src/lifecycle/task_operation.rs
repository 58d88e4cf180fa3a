//! An operation on one task in a transaction of its own — an operator's
//! repair, a cancel: lock the task, check its stored state takes the
//! input, load its graph, evaluate, write, commit, and evaluate again from
//! a fresh load if a worker moved a step in between.

use tasker_db::TransitionContext;
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step_graph;
use tasker_types::backoff::RandomJitter;
use tasker_types::ids::TaskUuid;
use tasker_types::state::TaskState;

use super::batch::{Batch, BatchReport};
use super::evaluate::{Input, evaluate};
use super::graph::TaskGraph;
use super::write::{evaluating_again_on_conflict, write};
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// Applies `input` to `task_uuid`, writing as `ctx`. A task whose stored
/// state `accepts` refuses is [`OrchestrationError::AlreadyFinished`].
/// Returns the task as locked (before the change) and what was done.
pub(crate) async fn apply_to_task(
    shared: &Shared,
    task_uuid: TaskUuid,
    ctx: &TransitionContext,
    input: &Input,
    accepts: fn(TaskState) -> bool,
) -> Result<(TaskRow, BatchReport), OrchestrationError> {
    evaluating_again_on_conflict(|| apply_once(shared, task_uuid, ctx, input, accepts)).await
}

async fn apply_once(
    shared: &Shared,
    task_uuid: TaskUuid,
    ctx: &TransitionContext,
    input: &Input,
    accepts: fn(TaskState) -> bool,
) -> Result<(TaskRow, BatchReport), OrchestrationError> {
    let mut tx = shared.pool.begin().await?;
    let mut locked = task::lock_many(&mut tx, &[task_uuid]).await?;
    let Some(task_row) = locked.pop() else {
        return Err(OrchestrationError::TaskNotFound(task_uuid));
    };
    if !accepts(task_row.state) {
        return Err(OrchestrationError::AlreadyFinished {
            task: task_uuid,
            state: task_row.state,
        });
    }
    let nodes = workflow_step_graph::graph_for_tasks(&mut tx, &[task_uuid]).await?;
    let graph = TaskGraph::stored((&task_row).into(), nodes);
    let template = shared.template(task_row.named_task_uuid).await?;
    let mut batch = Batch::new(shared, ctx.clone());
    let evaluation = evaluate(
        graph,
        &template,
        std::slice::from_ref(input),
        batch.now,
        &shared.rules(),
        &mut RandomJitter::default(),
    )?;
    write(
        &mut batch,
        &mut tx,
        std::slice::from_ref(&task_row),
        &[evaluation],
    )
    .await?;
    let (staged, report) = batch.flush(&mut tx).await?;
    tx.commit().await?;
    tasker_messaging::settle_after_commit(shared.queue.as_ref(), staged).await;
    Ok((task_row, report))
}

//! Moves locked tasks forward from their step graphs: plan each task (pure,
//! [`super::plan`]), enqueue everything that became ready with one
//! statement, and move every task along its path with another. Shared by
//! the result loop and by operator repairs, so both follow the same rules.

use std::collections::HashMap;

use sqlx::PgConnection;
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_db::workflow_step_graph::StepNode;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::messages::{QueueName, StepMessage};
use tasker_types::state::{TaskEvent, TaskState};
use tasker_types::template::{FailureStrategy, StepType, TaskTemplate};

use super::batch::Batch;
use super::outgoing::to_json;
use super::plan::{Group, OnError, StepView, plan};
use crate::error::OrchestrationError;

/// Plans every task of `tasks` over `graph`, enqueues the ready steps and
/// moves the tasks, in the caller's transaction; pointers go to the batch.
pub(crate) async fn advance(
    batch: &mut Batch<'_>,
    conn: &mut PgConnection,
    tasks: &[TaskRow],
    graph: &HashMap<StepUuid, StepNode>,
) -> Result<(), OrchestrationError> {
    let (shared, now) = (batch.shared, batch.now);
    let mut by_task: HashMap<TaskUuid, Vec<&StepNode>> = HashMap::new();
    for node in graph.values() {
        by_task.entry(node.task_uuid).or_default().push(node);
    }
    let mut to_enqueue: Vec<StepChange> = Vec::new();
    // Where each step to enqueue goes: its template step's pool's queue.
    let mut queue_of: HashMap<StepUuid, QueueName> = HashMap::new();
    let mut paths: Vec<(TaskUuid, TaskState, Vec<TaskEvent>)> = Vec::new();
    for task_row in tasks {
        let mut nodes = by_task.remove(&task_row.task_uuid).unwrap_or_default();
        // Creation order (ids are time-ordered), so that when a group can
        // take only some of its ready steps, the earliest batches go first.
        nodes.sort_unstable_by_key(|n| n.workflow_step_uuid);
        let template = shared.template(task_row.named_task_uuid).await?;
        let views = views(&template, &nodes);
        let planned = plan(task_row.state, &views, now);
        for &i in &planned.ready {
            let queue = template
                .step_queue(&nodes[i].template_step)
                .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
            queue_of.insert(nodes[i].workflow_step_uuid, queue);
        }
        to_enqueue.extend(
            planned
                .ready
                .iter()
                .map(|&i| StepChange::enqueue(nodes[i].workflow_step_uuid, nodes[i].state)),
        );
        if !planned.events.is_empty() {
            paths.push((task_row.task_uuid, task_row.state, planned.events));
        }
    }
    let live: HashMap<TaskUuid, &TaskRow> = tasks.iter().map(|t| (t.task_uuid, t)).collect();
    let enqueued = workflow_step_change::apply(&mut *conn, &to_enqueue, &batch.ctx).await?;
    for step in enqueued.iter().map(|changed| &changed.step) {
        let Some(task_row) = graph.get(step).and_then(|n| live.get(&n.task_uuid)) else {
            continue;
        };
        let Some(queue) = queue_of.get(step) else {
            continue;
        };
        let pointer = StepMessage {
            task_uuid: task_row.task_uuid,
            step_uuid: *step,
            correlation_id: task_row.correlation_id,
        };
        batch.out.send(queue, to_json(&pointer)?);
    }
    batch.report.enqueued += enqueued.len();
    metrics::counter!("tasker_steps_enqueued_total").increment(enqueued.len() as u64);
    for (task_uuid, state) in task::transition_paths_many(&mut *conn, &paths, &batch.ctx).await? {
        if state.is_terminal()
            && let Some(task_row) = live.get(&task_uuid)
        {
            batch.report.finalized += 1;
            let elapsed = (now - task_row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            let labels = [
                ("namespace", task_row.namespace.clone()),
                ("state", state.as_str().to_owned()),
            ];
            metrics::counter!("tasker_tasks_finished_total", &labels).increment(1);
            metrics::histogram!("tasker_task_duration_seconds", &labels).record(elapsed);
            tracing::info!(%task_uuid, correlation_id = %task_row.correlation_id, to_state = %state, "task finished");
        }
    }
    Ok(())
}

/// The planner's view of one task's steps: parents as indexes, and for
/// batch workers their batch's parallelism and failure strategy.
fn views(template: &TaskTemplate, nodes: &[&StepNode]) -> Vec<StepView> {
    let index: HashMap<StepUuid, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.workflow_step_uuid, i))
        .collect();
    nodes
        .iter()
        .map(|n| {
            let parents: Vec<usize> = n
                .parents
                .iter()
                .filter_map(|p| index.get(p).copied())
                .collect();
            let (on_error, group) = match batch_config_of(template, n) {
                Some(config) => (
                    on_error(config.failure_strategy),
                    parents.first().map(|&batchable| Group {
                        id: batchable,
                        limit: config.parallelism,
                    }),
                ),
                None => (OnError::Stop, None),
            };
            StepView {
                next_retry_at: n.next_retry_at,
                parents,
                on_error,
                group,
                ..StepView::new(n.state, n.attempts, n.retry)
            }
        })
        .collect()
}

/// The batch settings a batch worker runs under (its batchable step's).
pub(crate) fn batch_config_of<'t>(
    template: &'t TaskTemplate,
    node: &StepNode,
) -> Option<&'t tasker_types::template::BatchConfig> {
    if node.step_type != StepType::BatchWorker {
        return None;
    }
    let worker = template.step(&node.template_step)?;
    let batchable = template.step(worker.dependencies.first()?)?;
    batchable.batch_config.as_ref()
}

fn on_error(strategy: FailureStrategy) -> OnError {
    match strategy {
        FailureStrategy::FailFast => OnError::Stop,
        FailureStrategy::ContinueOnFailure => OnError::Tolerate,
        FailureStrategy::Isolate => OnError::Isolate,
    }
}

//! Task creation and initialization in one transaction: the task, its steps,
//! edges and first transitions, the ready root steps moved to `enqueued`, and
//! their pointer messages — all commit together or not at all.

use std::collections::HashMap;

use chrono::Utc;
use tasker_db::named_task::{self, RegisteredTemplate};
use tasker_db::task::{self, NewTask, TaskRow};
use tasker_types::api::TaskRequest;
use tasker_types::messages::QueueName;
use tasker_types::state::StepState;

use super::outgoing::{Outgoing, ToEnqueue, enqueue_steps};
use super::plan::{StepView, plan};
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// Finds the template a request names (the highest version when it names none).
pub(crate) async fn find_template(
    shared: &Shared,
    request: &TaskRequest,
) -> Result<RegisteredTemplate, OrchestrationError> {
    let mut conn = shared.pool.acquire().await?;
    let found = match &request.version {
        Some(version) => {
            named_task::get(&mut *conn, &request.namespace, &request.name, version).await?
        }
        None => named_task::latest(&mut conn, &request.namespace, &request.name).await?,
    };
    found.ok_or_else(|| OrchestrationError::TemplateNotFound {
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        version: request.version.clone(),
    })
}

/// Creates and starts a task. Returns the task as committed (normally
/// `steps_in_process`).
pub(crate) async fn create_task(
    shared: &Shared,
    request: TaskRequest,
) -> Result<TaskRow, OrchestrationError> {
    let template = find_template(shared, &request).await?;
    if let Some(schema) = shared.input_schema(&template)? {
        let violations = schema.violations(&request.context);
        if !violations.is_empty() {
            return Err(OrchestrationError::InvalidContext { violations });
        }
    }
    let worker_queue = QueueName::worker(&template.template.namespace_name)
        .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
    shared.ensure_queue(&worker_queue).await?;

    let ctx = shared.ctx();
    let mut tx = shared.pool.begin().await?;
    let new = NewTask {
        correlation_id: request.correlation_id,
        idempotency_key: request.idempotency_key,
        priority: request.priority,
        tags: request.tags,
        initiator: request.initiator,
        source_system: request.source_system,
        reason: request.reason,
        ..NewTask::new(&template, &shared.config.environment, request.context)
    };
    let created = task::create(&mut tx, new, &ctx).await?;

    let index: HashMap<_, _> = created
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.uuid, i))
        .collect();
    let mut views: Vec<StepView> = created
        .steps
        .iter()
        .map(|s| StepView::new(StepState::Pending, 0, s.retry))
        .collect();
    for edge in &created.edges {
        if let (Some(&from), Some(&to)) = (index.get(&edge.from), index.get(&edge.to)) {
            views[to].parents.push(from);
        }
    }
    let planned = plan(created.task.state, &views, Utc::now());
    let ready: Vec<ToEnqueue> = planned
        .ready
        .iter()
        .map(|&i| ToEnqueue {
            step: created.steps[i].uuid,
            from: StepState::Pending,
        })
        .collect();

    let mut out = Outgoing::default();
    let task_uuid = created.task.task_uuid;
    let correlation_id = created.task.correlation_id;
    enqueue_steps(
        &mut tx,
        task_uuid,
        correlation_id,
        &worker_queue,
        &ready,
        &ctx,
        &mut out,
    )
    .await?;
    let state = task::transition_path(
        &mut tx,
        task_uuid,
        created.task.state,
        &planned.events,
        &ctx,
    )
    .await?;
    let staged = out.flush(shared.queue.as_ref(), &mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    metrics::counter!("tasker_tasks_created_total", "namespace" => created.task.namespace.clone())
        .increment(1);
    metrics::counter!("tasker_steps_enqueued_total").increment(ready.len() as u64);
    tracing::info!(
        %task_uuid, %correlation_id, namespace = %created.task.namespace, name = %created.task.name,
        steps = created.steps.len(), enqueued = ready.len(), "task created"
    );
    Ok(TaskRow {
        state,
        ..created.task
    })
}

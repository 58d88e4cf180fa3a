//! Task creation and initialization in one transaction: the task, its steps,
//! edges and transitions — the task already `steps_in_process`, the ready
//! root steps already `enqueued` — and their pointer messages, all commit
//! together or not at all.

use std::collections::HashMap;

use chrono::Utc;
use tasker_db::named_task::{self, RegisteredTemplate};
use tasker_db::task::{self, CreatedTask, NewTask, TaskStart};
use tasker_types::api::TaskRequest;
use tasker_types::messages::StepMessage;
use tasker_types::state::{StepState, TaskState};

use super::outgoing::{Outgoing, to_json};
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

/// Creates and starts a task. Returns the task, its steps and edges as
/// committed (the task normally `steps_in_process`).
pub(crate) async fn create_task(
    shared: &Shared,
    request: TaskRequest,
) -> Result<CreatedTask, OrchestrationError> {
    request.check().map_err(OrchestrationError::BadRequest)?;
    let template = find_template(shared, &request).await?;
    if let Some(schema) = shared.input_schema(&template)? {
        let violations = schema.violations(&request.context);
        if !violations.is_empty() {
            return Err(OrchestrationError::InvalidContext { violations });
        }
    }
    // Each step goes to its pool's queue (routing by step).
    let worker_queues = template
        .template
        .queues()
        .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
    for queue in &worker_queues {
        shared.ensure_queue(queue).await?;
    }

    // Plan before writing: a new task's steps are all pending, so the plan
    // follows from the template alone, and the task and its ready roots can
    // be written already started.
    let initial = template
        .template
        .initial_steps()
        .map_err(|e| OrchestrationError::Corrupt(format!("template graph: {e}")))?;
    let position: HashMap<&str, usize> = initial
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let views: Vec<StepView> = initial
        .iter()
        .map(|s| StepView {
            parents: s
                .dependencies
                .iter()
                .filter_map(|d| position.get(d.as_str()).copied())
                .collect(),
            ..StepView::new(StepState::Pending, 0, s.retry)
        })
        .collect();
    let planned = plan(TaskState::Pending, &views, Utc::now());

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
    let start = TaskStart {
        events: &planned.events,
        enqueue: &planned.ready,
    };
    let created = task::create_started(&mut tx, new, &start, &ctx).await?;
    let task_uuid = created.task.task_uuid;
    let correlation_id = created.task.correlation_id;
    let mut out = Outgoing::default();
    for &i in &planned.ready {
        let Some(step) = created.steps.get(i) else {
            continue;
        };
        let Some(definition) = initial.get(i) else {
            continue;
        };
        let queue = template
            .template
            .queue_of(definition)
            .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
        let pointer = StepMessage {
            task_uuid,
            step_uuid: step.workflow_step_uuid,
            correlation_id,
        };
        out.send(&queue, to_json(&pointer)?);
    }
    let staged = out.flush(shared.queue.as_ref(), &mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    let ready = &planned.ready;
    metrics::counter!("tasker_tasks_created_total", "namespace" => created.task.namespace.clone())
        .increment(1);
    metrics::counter!("tasker_steps_enqueued_total").increment(ready.len() as u64);
    tracing::info!(
        %task_uuid, %correlation_id, namespace = %created.task.namespace, name = %created.task.name,
        steps = created.steps.len(), enqueued = ready.len(), "task created"
    );
    Ok(created)
}

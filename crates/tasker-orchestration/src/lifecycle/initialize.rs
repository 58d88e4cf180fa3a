//! Task creation and initialization in one transaction: the task, its steps,
//! edges and transitions — the task already `steps_in_process`, the ready
//! root steps already `enqueued` — and their pointer messages, all commit
//! together or not at all.

use tasker_db::named_task::{self, RegisteredTemplate};
use tasker_db::task::{self, CreatedTask, NewGraph, NewTask, TaskStart};
use tasker_types::api::TaskRequest;
use tasker_types::backoff::RandomJitter;
use tasker_types::ids::StepUuid;
use tasker_types::state::TaskState;
use tracing::Instrument as _;

use super::batch::Batch;
use super::evaluate::evaluate;
use super::graph::{TaskFacts, TaskGraph};
use super::write::queue_pointers;
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

/// Creates and starts a task, in a `task.create` span (a child of the
/// caller's span, so of an incoming `traceparent`), whose trace context is
/// stored with the task. Returns the task, its steps and edges as committed
/// (the task normally `steps_in_process`).
pub(crate) async fn create_task(
    shared: &Shared,
    request: TaskRequest,
) -> Result<CreatedTask, OrchestrationError> {
    let span = tracing::info_span!("task.create", namespace = %request.namespace,
        template = %request.name, task_uuid = tracing::field::Empty,
        correlation_id = tracing::field::Empty);
    create_in_span(shared, request).instrument(span).await
}

async fn create_in_span(
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

    // Decide before writing: a new task's graph is all pending, so what
    // starts at once follows from the template alone, and the task and its
    // ready roots are written already started.
    let resolved = shared.resolve(&template);
    let new_graph = NewGraph::initial(&resolved)?;
    let new = NewTask {
        correlation_id: Some(request.correlation_id.unwrap_or_default()),
        idempotency_key: request.idempotency_key,
        priority: request.priority,
        tags: request.tags,
        initiator: request.initiator,
        source_system: request.source_system,
        reason: request.reason,
        traceparent: tasker_telemetry::propagation::current(),
        ..NewTask::new(&template, &shared.config.environment, request.context)
    };
    let span = tracing::Span::current();
    span.record("task_uuid", tracing::field::display(new.task_uuid));
    if let Some(correlation_id) = new.correlation_id {
        span.record("correlation_id", tracing::field::display(correlation_id));
    }
    let facts = TaskFacts {
        task_uuid: new.task_uuid,
        state: TaskState::Pending,
        correlation_id: new.correlation_id.unwrap_or_default(),
        traceparent: new.traceparent,
    };
    let mut batch = Batch::new(shared, shared.ctx());
    let evaluation = evaluate(
        TaskGraph::new_task(facts, new_graph),
        &resolved,
        &[],
        batch.now,
        &shared.rules(),
        &mut RandomJitter::default(),
    )?;
    let (born, steps, _) = evaluation.graph.to_insert();
    let enqueue: Vec<StepUuid> = steps
        .iter()
        .zip(&born)
        .filter(|(_, born)| **born)
        .map(|(s, _)| s.uuid)
        .collect();
    let start = TaskStart {
        events: &evaluation.path,
        graph: &evaluation.graph.unwritten,
        enqueue: &enqueue,
    };

    let mut tx = shared.pool.begin().await?;
    let created = task::create_started(&mut tx, new, &start, &batch.ctx).await?;
    queue_pointers(&mut batch, &evaluation)?;
    let (staged, _) = batch.flush(&mut tx).await?;
    tx.commit().await?;
    tasker_messaging::settle_after_commit(shared.queue.as_ref(), staged).await;
    let (task_uuid, correlation_id) = (created.task.task_uuid, created.task.correlation_id);
    let enqueued = evaluation.sends.len();
    metrics::counter!("tasker_tasks_created_total", "namespace" => created.task.namespace.clone())
        .increment(1);
    metrics::counter!("tasker_steps_enqueued_total").increment(enqueued as u64);
    tracing::info!(
        %task_uuid, %correlation_id, namespace = %created.task.namespace, name = %created.task.name,
        steps = created.steps.len(), enqueued, "task created"
    );
    Ok(created)
}

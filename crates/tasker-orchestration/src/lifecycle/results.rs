//! Applies a batch of orchestration messages in one transaction:
//!
//! 1. take the messages from the queue inside the transaction
//!    ([`take_and_process`]), so they are gone exactly when the batch
//!    commits;
//! 2. lock the tasks concerned and load their step graphs;
//! 3. evaluate each task's messages in memory ([`super::evaluate`]);
//! 4. write every evaluation with set-based statements ([`super::write`]);
//! 5. send the pointers in the same transaction.
//!
//! When a write finds a step moved by someone who does not take the task
//! lock (a worker's claim), the transaction rolls back and the batch is
//! taken and evaluated again.

use std::collections::HashMap;

use tasker_db::task;
use tasker_db::workflow_step_graph;
use tasker_messaging::{Delivery, QueueTx, Staged};
use tasker_types::backoff::RandomJitter;
use tasker_types::ids::TaskUuid;
use tasker_types::messages::{OrchestrationMessage, QueueName};
use tasker_types::trace::TraceParent;
use tracing::Instrument as _;

use super::batch::{Batch, BatchReport};
use super::evaluate::{Input, evaluate};
use super::graph::TaskGraph;
use super::write::{MAX_EVALUATIONS, evaluating_again_on_conflict, is_conflict, write};
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// What [`take_and_process`] took, and what became of it.
pub(crate) struct Taken {
    /// The messages taken (none when the queue was empty).
    pub(crate) messages: Vec<Delivery>,
    /// The batch's report, or why its transaction rolled back (the messages
    /// are then visible again).
    pub(crate) result: Result<BatchReport, OrchestrationError>,
}

/// Takes up to `max` messages from `orchestration_step_results` inside the
/// transaction that applies them, and commits: taking, state changes and
/// new pointers are one unit, so a crash or an error gives the messages
/// back and nothing is half-applied. `on_full` runs when the take was full,
/// before the batch is applied (more may be waiting).
pub(crate) async fn take_and_process(shared: &Shared, max: usize, on_full: impl FnOnce()) -> Taken {
    let mut on_full = Some(on_full);
    let mut taken = take_and_process_once(shared, max, &mut on_full).await;
    for _ in 1..MAX_EVALUATIONS {
        match &taken.result {
            Err(err) if is_conflict(err) => {
                taken = take_and_process_once(shared, max, &mut on_full).await;
            }
            _ => break,
        }
    }
    taken
}

async fn take_and_process_once(
    shared: &Shared,
    max: usize,
    on_full: &mut Option<impl FnOnce()>,
) -> Taken {
    let mut messages = Vec::new();
    let result = async {
        let mut tx = shared.pool.begin().await?;
        let taking = {
            let mut unit = QueueTx::join(&mut tx);
            messages = shared
                .queue
                .take_in(
                    &mut unit,
                    &QueueName::step_results(),
                    max,
                    shared.config.orchestration.result_visibility_timeout,
                )
                .await?;
            unit.into_staged()
        };
        if messages.is_empty() {
            tx.commit().await?;
            return Ok(BatchReport::default());
        }
        if messages.len() == max
            && let Some(on_full) = on_full.take()
        {
            on_full();
        }
        let batch = Batch::new(shared, shared.ctx());
        apply_and_commit(tx, batch, &messages, taking).await
    }
    .await;
    Taken { messages, result }
}

/// Applies `messages`, already read from `orchestration_step_results`, in
/// one transaction that also deletes them, committed before returning.
pub(crate) async fn process_batch(
    shared: &Shared,
    messages: &[Delivery],
) -> Result<BatchReport, OrchestrationError> {
    evaluating_again_on_conflict(|| process_batch_once(shared, messages)).await
}

async fn process_batch_once(
    shared: &Shared,
    messages: &[Delivery],
) -> Result<BatchReport, OrchestrationError> {
    let tx = shared.pool.begin().await?;
    let mut batch = Batch::new(shared, shared.ctx());
    batch.out.ack(
        &QueueName::step_results(),
        messages.iter().map(|m| m.receipt),
    );
    apply_and_commit(tx, batch, messages, Staged::default()).await
}

/// Applies `messages` in `tx`, sends the batch's pointers, commits, then
/// applies what the provider staged (`earlier` first).
async fn apply_and_commit(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    mut batch: Batch<'_>,
    messages: &[Delivery],
    earlier: Staged,
) -> Result<BatchReport, OrchestrationError> {
    let shared = batch.shared;
    let span = tracing::info_span!("orchestration.batch", size = messages.len());
    // Each traced message gets a `step.result` span in its own trace (the
    // worker's `step.run` is its parent), lasting until the batch commits;
    // the batch span, which serves many traces, links to them.
    let results: Vec<tracing::Span> = messages
        .iter()
        .filter_map(|m| result_span(&span, &m.payload))
        .collect();
    let applied = async {
        apply_batch(&mut batch, &mut tx, messages).await?;
        let (flushed, report) = batch.flush(&mut tx).await?;
        tx.commit().await?;
        tasker_messaging::settle_after_commit(shared.queue.as_ref(), earlier.and(flushed)).await;
        Ok(report)
    }
    .instrument(span)
    .await;
    drop(results);
    applied
}

/// The `step.result` span of a message that carries a trace context.
fn result_span(batch: &tracing::Span, payload: &serde_json::Value) -> Option<tracing::Span> {
    let field = |name: &str| payload.get(name).and_then(serde_json::Value::as_str);
    let traceparent: TraceParent = field("traceparent")?.parse().ok()?;
    let span = tracing::info_span!(parent: None, "step.result",
        kind = field("kind").unwrap_or("unknown"), task_uuid = field("task_uuid").unwrap_or(""),
        step_uuid = field("step_uuid").unwrap_or(""),
        attempt = payload.get("attempt").and_then(serde_json::Value::as_u64).unwrap_or(0),
        correlation_id = field("correlation_id").unwrap_or(""));
    tasker_telemetry::propagation::continue_trace(&span, Some(traceparent));
    tasker_telemetry::propagation::link(batch, tasker_telemetry::propagation::traceparent(&span));
    Some(span)
}

/// The batch itself, in the caller's transaction; pointers go to `batch`.
async fn apply_batch(
    batch: &mut Batch<'_>,
    tx: &mut sqlx::PgConnection,
    messages: &[Delivery],
) -> Result<(), OrchestrationError> {
    let mut inputs: HashMap<TaskUuid, Vec<Input>> = HashMap::new();
    for message in messages {
        match serde_json::from_value::<OrchestrationMessage>(message.payload.clone()) {
            Ok(OrchestrationMessage::StepResult(p)) => {
                inputs
                    .entry(p.task_uuid)
                    .or_default()
                    .push(Input::Result(p));
            }
            Ok(OrchestrationMessage::RetryDue(p)) => {
                inputs
                    .entry(p.task_uuid)
                    .or_default()
                    .push(Input::RetryDue(p));
            }
            Err(err) => {
                tracing::warn!(receipt = %message.receipt, error = %err, "dropping unreadable orchestration message");
                batch.report.ignored += 1;
            }
        }
    }
    let mut task_uuids: Vec<TaskUuid> = inputs.keys().copied().collect();
    task_uuids.sort_unstable();

    // Lock and load.
    let tasks = task::lock_many(&mut *tx, &task_uuids).await?;
    let nodes = workflow_step_graph::graph_for_tasks(&mut *tx, &task_uuids).await?;
    for gone in task_uuids
        .iter()
        .filter(|t| !tasks.iter().any(|r| r.task_uuid == **t))
    {
        batch.report.ignored += inputs.get(gone).map_or(0, Vec::len);
    }

    // Evaluate each task.
    let rules = batch.shared.rules();
    let mut jitter = RandomJitter::default();
    let mut evaluations = Vec::with_capacity(tasks.len());
    for graph in TaskGraph::stored_many(&tasks, nodes) {
        let Some(task_row) = tasks.iter().find(|t| t.task_uuid == graph.task.task_uuid) else {
            continue;
        };
        let template = batch.shared.template(task_row.named_task_uuid).await?;
        let inputs = inputs
            .get(&task_row.task_uuid)
            .map_or(&[][..], Vec::as_slice);
        evaluations.push(evaluate(
            graph,
            &template,
            inputs,
            batch.now,
            &rules,
            &mut jitter,
        )?);
    }

    // Write.
    write(batch, tx, &tasks, &evaluations).await
}

//! Applies a batch of orchestration messages in one transaction, in phases
//! so that every hot write is one set-based statement for the whole batch:
//!
//! 0. take the messages from the queue inside the transaction
//!    ([`take_and_process`]), so they are gone exactly when the batch
//!    commits;
//! 1. lock the tasks concerned and load their step graphs;
//! 2. decide each message in memory — a current success completes its step,
//!    a current failure is retried or given up on, anything else (duplicate,
//!    stale, early) changes nothing;
//! 3. expand the outcomes of decision and batchable steps (new steps and
//!    edges; an outcome that cannot be applied fails its step), then
//!    complete all accepted successes at once (failures, rare, one by one);
//! 4. plan every task (pure), enqueue everything that became ready at once,
//!    and move every task along its path at once ([`super::advance`]);
//! 5. send the pointers in the same transaction.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_db::workflow_step_graph::{self, StepNode};
use tasker_db::{DbError, TransitionContext};
use tasker_messaging::{QueueTx, ReceivedMessage};
use tasker_types::backoff::{RandomJitter, RetryDecision};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt};
use tasker_types::outcome::{FlowControl, StepFailure, error_types};
use tasker_types::state::StepState;
use tasker_types::template::{FailureStrategy, StepType};

use super::advance::{advance, batch_config_of};
use super::batch::{Batch, BatchReport};
use super::expand;
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// What [`take_and_process`] took, and what became of it.
pub(crate) struct Taken {
    /// The messages taken (none when the queue was empty).
    pub(crate) messages: Vec<ReceivedMessage>,
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
    let mut messages = Vec::new();
    let result = async {
        let mut tx = shared.pool.begin().await?;
        let taking = {
            let mut unit = QueueTx::join(&mut tx);
            messages = shared
                .queue
                .take_many_in(
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
        if messages.len() == max {
            on_full();
        }
        let mut batch = Batch::new(shared, shared.ctx());
        apply_batch(&mut batch, &mut tx, &messages).await?;
        let (flushed, report) = batch.flush(&mut tx).await?;
        let staged = taking.and(flushed);
        tx.commit().await?;
        shared.queue.commit_staged(staged).await?;
        Ok(report)
    }
    .await;
    Taken { messages, result }
}

/// Applies `messages`, already read from `orchestration_step_results`, in
/// one transaction that also deletes them, committed before returning.
pub(crate) async fn process_batch(
    shared: &Shared,
    messages: &[ReceivedMessage],
) -> Result<BatchReport, OrchestrationError> {
    let mut tx = shared.pool.begin().await?;
    let mut batch = Batch::new(shared, shared.ctx());
    batch
        .out
        .delete(&QueueName::step_results(), messages.iter().map(|m| m.id));
    apply_batch(&mut batch, &mut tx, messages).await?;
    let (staged, report) = batch.flush(&mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    Ok(report)
}

/// The batch itself, in the caller's transaction; pointers go to `batch`.
async fn apply_batch(
    batch: &mut Batch<'_>,
    tx: &mut sqlx::PgConnection,
    messages: &[ReceivedMessage],
) -> Result<(), OrchestrationError> {
    let now = batch.now;

    let mut parsed: Vec<OrchestrationMessage> = Vec::with_capacity(messages.len());
    for message in messages {
        match serde_json::from_value::<OrchestrationMessage>(message.payload.clone()) {
            Ok(p) => parsed.push(p),
            Err(err) => {
                tracing::warn!(msg_id = message.id, error = %err, "dropping unreadable orchestration message");
                batch.report.ignored += 1;
            }
        }
    }
    let task_uuids: Vec<TaskUuid> = {
        let mut uuids: Vec<TaskUuid> = parsed.iter().map(|m| m.attempt().task_uuid).collect();
        uuids.sort_unstable();
        uuids.dedup();
        uuids
    };

    // Phase 1: lock and load.
    let tasks = task::lock_many(&mut *tx, &task_uuids).await?;
    let mut graph: HashMap<StepUuid, StepNode> =
        workflow_step_graph::graph_for_tasks(&mut *tx, &task_uuids)
            .await?
            .into_iter()
            .map(|node| (node.workflow_step_uuid, node))
            .collect();
    let live: HashMap<TaskUuid, &TaskRow> = tasks.iter().map(|t| (t.task_uuid, t)).collect();

    // Phase 2: decide.
    let mut successes: Vec<StepUuid> = Vec::new();
    let mut failures: Vec<StepUuid> = Vec::new();
    for message in &parsed {
        let pointer = message.attempt();
        let Some(node) = graph
            .get(&pointer.step_uuid)
            .filter(|_| live.contains_key(&pointer.task_uuid))
        else {
            batch.report.ignored += 1;
            continue;
        };
        let current = node.attempts == pointer.attempt;
        match (message, node.state) {
            (OrchestrationMessage::StepResult(_), StepState::EnqueuedForOrchestration)
                if current =>
            {
                successes.push(pointer.step_uuid);
            }
            (OrchestrationMessage::StepResult(_), StepState::EnqueuedAsErrorForOrchestration)
                if current =>
            {
                failures.push(pointer.step_uuid);
            }
            (OrchestrationMessage::RetryDue(_), StepState::WaitingForRetry) if current => {
                // The plan enqueues the step if it is due; if this message
                // came early, send another for the remaining time.
                if let Some(due) = node.next_retry_at.filter(|due| *due > now) {
                    batch.retry_due(pointer, due)?;
                }
                batch.report.applied += 1;
            }
            _ => {
                tracing::debug!(
                    task_uuid = %pointer.task_uuid, step_uuid = %pointer.step_uuid,
                    attempt = pointer.attempt, state = %node.state,
                    "ignoring duplicate or stale orchestration message"
                );
                metrics::counter!("tasker_step_results_total", "outcome" => "ignored").increment(1);
                batch.report.ignored += 1;
            }
        }
    }
    successes.sort_unstable();
    successes.dedup();
    failures.sort_unstable();
    failures.dedup();

    // Phase 3: expand outcomes, then apply results.
    let successes = expand_outcomes(batch, &mut *tx, &tasks, &mut graph, successes).await?;
    let completions: Vec<StepChange> = successes.iter().map(|s| StepChange::complete(*s)).collect();
    for step in workflow_step_change::apply(&mut *tx, &completions, &batch.ctx)
        .await?
        .into_iter()
        .map(|changed| changed.step)
    {
        if let Some(node) = graph.get_mut(&step) {
            node.state = StepState::Complete;
        }
        batch.report.applied += 1;
        metrics::counter!("tasker_step_results_total", "outcome" => "complete").increment(1);
    }
    for step in failures {
        let Some(node) = graph.get_mut(&step) else {
            continue;
        };
        let Some(task_row) = live.get(&node.task_uuid) else {
            continue;
        };
        if apply_failure(batch, &mut *tx, node, task_row.correlation_id).await? {
            batch.report.applied += 1;
            if node.state == StepState::Error {
                cancel_unstarted_siblings(batch, &mut *tx, task_row, &mut graph, step).await?;
            }
        }
    }

    // Phase 4: plan every task, then enqueue and move them all at once.
    advance(batch, &mut *tx, &tasks, &graph).await?;
    Ok(())
}

/// Expands the outcomes of the decision and batchable steps among
/// `successes` (one at a time, each seeing what the previous created) and
/// fails those whose outcome cannot be applied. Returns the successes to
/// complete.
async fn expand_outcomes(
    batch: &mut Batch<'_>,
    conn: &mut sqlx::PgConnection,
    tasks: &[TaskRow],
    graph: &mut HashMap<StepUuid, StepNode>,
    successes: Vec<StepUuid>,
) -> Result<Vec<StepUuid>, OrchestrationError> {
    let shared = batch.shared;
    let mut complete = Vec::with_capacity(successes.len());
    for step in successes {
        let Some(node) = graph.get(&step) else {
            continue;
        };
        let dynamic = matches!(node.step_type, StepType::Decision | StepType::Batchable);
        if !dynamic && node.flow_control.is_none() {
            complete.push(step);
            continue;
        }
        let Some(task_row) = tasks.iter().find(|t| t.task_uuid == node.task_uuid) else {
            continue;
        };
        let control: Option<FlowControl> = match &node.flow_control {
            None => None,
            Some(value) => match serde_json::from_value(value.clone()) {
                Ok(control) => Some(control),
                Err(err) => {
                    let message = format!("the step's outcome does not parse: {err}");
                    refuse(conn, graph, step, &message, &batch.ctx).await?;
                    batch.report.applied += 1;
                    continue;
                }
            },
        };
        let template = shared.template(task_row.named_task_uuid).await?;
        let limits = shared.expansion_limits();
        match expand::apply(
            conn,
            &template,
            graph,
            task_row.task_uuid,
            step,
            control.as_ref(),
            &limits,
            &batch.ctx,
        )
        .await?
        {
            Ok(created) => {
                batch.report.created += created;
                complete.push(step);
            }
            Err(err) => {
                refuse(conn, graph, step, &err.to_string(), &batch.ctx).await?;
                batch.report.applied += 1;
            }
        }
    }
    Ok(complete)
}

/// Fails a step whose success cannot be applied, saying why.
async fn refuse(
    conn: &mut sqlx::PgConnection,
    graph: &mut HashMap<StepUuid, StepNode>,
    step: StepUuid,
    message: &str,
    ctx: &TransitionContext,
) -> Result<(), OrchestrationError> {
    let refusal = StepChange::refuse_result(step, message);
    match workflow_step_change::apply_one(conn, refusal, ctx).await {
        Ok(changed) => {
            tracing::warn!(task_uuid = %changed.task, step_uuid = %step, error = message,
                "step outcome refused; the step failed permanently");
            metrics::counter!("tasker_step_results_total", "outcome" => "refused").increment(1);
            if let Some(node) = graph.get_mut(&step) {
                node.state = StepState::Error;
                node.last_error = Some(StepFailure::invalid_result(message));
            }
            Ok(())
        }
        Err(DbError::TransitionConflict { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// `fail_fast` (SPEC §4.7): a batch worker that failed for good cancels its
/// siblings that have not started; those already running finish.
async fn cancel_unstarted_siblings(
    batch: &Batch<'_>,
    conn: &mut sqlx::PgConnection,
    task_row: &TaskRow,
    graph: &mut HashMap<StepUuid, StepNode>,
    failed: StepUuid,
) -> Result<(), OrchestrationError> {
    let template = batch.shared.template(task_row.named_task_uuid).await?;
    let Some(node) = graph.get(&failed) else {
        return Ok(());
    };
    let fail_fast = batch_config_of(&template, node)
        .is_some_and(|c| c.failure_strategy == FailureStrategy::FailFast);
    if !fail_fast {
        return Ok(());
    }
    let cancels: Vec<StepChange> = graph
        .values()
        .filter(|n| {
            n.task_uuid == node.task_uuid
                && n.template_step == node.template_step
                && n.workflow_step_uuid != failed
                && matches!(
                    n.state,
                    StepState::Pending | StepState::Enqueued | StepState::WaitingForRetry
                )
        })
        .map(|n| {
            StepChange::cancel(n.workflow_step_uuid, n.state)
                .with_metadata(json!({ "reason": "fail_fast", "failed_batch": node.name }))
        })
        .collect();
    for changed in workflow_step_change::apply(conn, &cancels, &batch.ctx).await? {
        if let Some(n) = graph.get_mut(&changed.step) {
            n.state = changed.state;
        }
    }
    Ok(())
}

/// Retries or fails a step whose attempt failed, per its own policy.
/// Returns whether the step moved.
async fn apply_failure(
    batch: &mut Batch<'_>,
    conn: &mut sqlx::PgConnection,
    node: &mut StepNode,
    correlation_id: tasker_types::ids::CorrelationId,
) -> Result<bool, OrchestrationError> {
    let now = batch.now;
    // A failure recorded without an envelope is as unreadable as a broken
    // one: permanent, and said so.
    let failure = node
        .last_error
        .clone()
        .unwrap_or_else(|| StepFailure::from_stored(&serde_json::Value::Null));
    if failure.error_type == error_types::UNREADABLE_FAILURE {
        tracing::warn!(task_uuid = %node.task_uuid, step_uuid = %node.workflow_step_uuid,
            error = %failure.message, "a failure envelope could not be read; not retrying");
    }
    let (retryable, hint) = (
        failure.retryable,
        failure.retry_after_ms.map(Duration::from_millis),
    );
    let jitter = batch.shared.config.execution.backoff_jitter;
    let decision = node.retry.decide(
        node.attempts,
        retryable,
        hint,
        jitter,
        &mut RandomJitter::default(),
    );
    let step = node.workflow_step_uuid;
    let written = match decision {
        RetryDecision::RetryAfter(delay) => {
            let due = now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
            let written = workflow_step_change::apply_one(
                conn,
                StepChange::schedule_retry(step, due),
                &batch.ctx,
            )
            .await;
            if written.is_ok() {
                node.state = StepState::WaitingForRetry;
                node.next_retry_at = Some(due);
                let pointer = StepAttempt {
                    task_uuid: node.task_uuid,
                    step_uuid: step,
                    attempt: node.attempts,
                    correlation_id,
                };
                batch.retry_due(&pointer, due)?;
                metrics::counter!("tasker_step_results_total", "outcome" => "retry").increment(1);
                tracing::info!(task_uuid = %node.task_uuid, step_uuid = %step, attempt = node.attempts,
                    delay_ms = delay.as_millis() as u64, "step failed; retry scheduled");
            }
            written
        }
        RetryDecision::GiveUp(reason) => {
            let written =
                workflow_step_change::apply_one(conn, StepChange::fail(step), &batch.ctx).await;
            if written.is_ok() {
                node.state = StepState::Error;
                metrics::counter!("tasker_step_results_total", "outcome" => "error").increment(1);
                tracing::warn!(task_uuid = %node.task_uuid, step_uuid = %step, ?reason, "step failed permanently");
            }
            written
        }
    };
    match written {
        Ok(_) => Ok(true),
        Err(DbError::TransitionConflict { .. }) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

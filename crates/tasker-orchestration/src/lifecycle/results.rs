//! Applies a batch of orchestration messages in one transaction, in phases
//! so that every hot write is one set-based statement for the whole batch:
//!
//! 1. lock the tasks concerned and load their step graphs;
//! 2. decide each message in memory — a current success completes its step,
//!    a current failure is retried or given up on, anything else (duplicate,
//!    stale, early) changes nothing;
//! 3. complete all accepted successes at once (failures, rare, one by one);
//! 4. plan every task (pure), enqueue everything that became ready at once,
//!    and move every task along its path at once;
//! 5. send the pointers and delete the messages in the same transaction.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step_batch::{self, StepNode};
use tasker_db::{DbError, TransitionContext, workflow_step};
use tasker_messaging::ReceivedMessage;
use tasker_types::backoff::{RandomJitter, RetryDecision};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tasker_types::outcome::StepFailure;
use tasker_types::state::{StepState, TaskEvent};

use super::outgoing::{Outgoing, to_json};
use super::plan::{StepView, plan};
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// What a batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BatchReport {
    /// Results accepted (step completed, retried or failed).
    pub(crate) applied: usize,
    /// Duplicate, stale or unreadable messages dropped.
    pub(crate) ignored: usize,
    /// Steps enqueued.
    pub(crate) enqueued: usize,
    /// Tasks that reached a terminal state.
    pub(crate) finalized: usize,
    /// When retries scheduled by this batch fall due.
    pub(crate) retries_due: Vec<Duration>,
}

/// Processes `messages` read from `orchestration_step_results` in one
/// transaction, committed before returning.
pub(crate) async fn process_batch(
    shared: &Shared,
    messages: &[ReceivedMessage],
) -> Result<BatchReport, OrchestrationError> {
    let ctx = shared.ctx();
    let now = Utc::now();
    let mut report = BatchReport::default();
    let mut out = Outgoing::default();
    out.delete(&QueueName::step_results(), messages.iter().map(|m| m.id));

    let mut parsed: Vec<OrchestrationMessage> = Vec::with_capacity(messages.len());
    for message in messages {
        match serde_json::from_value::<OrchestrationMessage>(message.payload.clone()) {
            Ok(p) => parsed.push(p),
            Err(err) => {
                tracing::warn!(msg_id = message.id, error = %err, "dropping unreadable orchestration message");
                report.ignored += 1;
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
    let mut tx = shared.pool.begin().await?;
    let tasks = task::lock_many(&mut tx, &task_uuids).await?;
    let mut graph: HashMap<StepUuid, StepNode> =
        workflow_step_batch::graph_for_tasks(&mut tx, &task_uuids)
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
            report.ignored += 1;
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
                    send_retry_due(&mut out, &mut report, pointer, due, now)?;
                }
                report.applied += 1;
            }
            _ => {
                tracing::debug!(
                    task_uuid = %pointer.task_uuid, step_uuid = %pointer.step_uuid,
                    attempt = pointer.attempt, state = %node.state,
                    "ignoring duplicate or stale orchestration message"
                );
                metrics::counter!("tasker_step_results_total", "outcome" => "ignored").increment(1);
                report.ignored += 1;
            }
        }
    }
    successes.sort_unstable();
    successes.dedup();
    failures.sort_unstable();
    failures.dedup();

    // Phase 3: apply results.
    for step in workflow_step_batch::complete_many(&mut tx, &successes, &ctx).await? {
        if let Some(node) = graph.get_mut(&step) {
            node.state = StepState::Complete;
        }
        report.applied += 1;
        metrics::counter!("tasker_step_results_total", "outcome" => "complete").increment(1);
    }
    for step in failures {
        if let Some(node) = graph.get_mut(&step) {
            let correlation = live.get(&node.task_uuid).map(|t| t.correlation_id);
            if let Some(correlation_id) = correlation
                && apply_failure(
                    shared,
                    &mut tx,
                    node,
                    correlation_id,
                    &ctx,
                    now,
                    &mut out,
                    &mut report,
                )
                .await?
            {
                report.applied += 1;
            }
        }
    }

    // Phase 4: plan every task, then enqueue and move them all at once.
    let mut by_task: HashMap<TaskUuid, Vec<&StepNode>> = HashMap::new();
    for node in graph.values() {
        by_task.entry(node.task_uuid).or_default().push(node);
    }
    let mut to_enqueue: Vec<(StepUuid, StepState)> = Vec::new();
    let mut paths: Vec<(TaskUuid, tasker_types::state::TaskState, Vec<TaskEvent>)> = Vec::new();
    for task_row in &tasks {
        let nodes = by_task.remove(&task_row.task_uuid).unwrap_or_default();
        let index: HashMap<StepUuid, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.workflow_step_uuid, i))
            .collect();
        let views: Vec<StepView> = nodes
            .iter()
            .map(|n| StepView {
                state: n.state,
                attempts: n.attempts,
                retry: n.retry,
                next_retry_at: n.next_retry_at,
                parents: n
                    .parents
                    .iter()
                    .filter_map(|p| index.get(p).copied())
                    .collect(),
            })
            .collect();
        let planned = plan(task_row.state, &views, now);
        to_enqueue.extend(
            planned
                .ready
                .iter()
                .map(|&i| (nodes[i].workflow_step_uuid, nodes[i].state)),
        );
        if !planned.events.is_empty() {
            paths.push((task_row.task_uuid, task_row.state, planned.events));
        }
    }
    let enqueued = workflow_step_batch::enqueue_many(&mut tx, &to_enqueue, &ctx).await?;
    for step in &enqueued {
        let Some(node) = graph.get(step) else {
            continue;
        };
        let Some(task_row) = live.get(&node.task_uuid) else {
            continue;
        };
        let queue = QueueName::worker(&task_row.namespace)
            .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
        let pointer = StepMessage {
            task_uuid: task_row.task_uuid,
            step_uuid: *step,
            correlation_id: task_row.correlation_id,
        };
        out.send(&queue, to_json(&pointer)?);
    }
    report.enqueued += enqueued.len();
    metrics::counter!("tasker_steps_enqueued_total").increment(enqueued.len() as u64);
    for (task_uuid, state) in task::transition_paths_many(&mut tx, &paths, &ctx).await? {
        if state.is_terminal()
            && let Some(task_row) = live.get(&task_uuid)
        {
            report.finalized += 1;
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

    // Phase 5: pointers out, messages gone, all in this transaction.
    let staged = out.flush(shared.queue.as_ref(), &mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    Ok(report)
}

/// Retries or fails a step whose attempt failed, per its own policy.
/// Returns whether the step moved.
#[allow(clippy::too_many_arguments)] // one call site; the pieces of the batch it updates
async fn apply_failure(
    shared: &Shared,
    conn: &mut sqlx::PgConnection,
    node: &mut StepNode,
    correlation_id: tasker_types::ids::CorrelationId,
    ctx: &TransitionContext,
    now: DateTime<Utc>,
    out: &mut Outgoing,
    report: &mut BatchReport,
) -> Result<bool, OrchestrationError> {
    let failure = node
        .last_error
        .clone()
        .and_then(|e| serde_json::from_value::<StepFailure>(e).ok());
    let (retryable, hint) = failure.as_ref().map_or((true, None), |f| {
        (f.retryable, f.retry_after_ms.map(Duration::from_millis))
    });
    let jitter = shared.config.execution.backoff_jitter;
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
            let written = workflow_step::schedule_retry(conn, step, due, ctx).await;
            if written.is_ok() {
                node.state = StepState::WaitingForRetry;
                node.next_retry_at = Some(due);
                let pointer = StepAttempt {
                    task_uuid: node.task_uuid,
                    step_uuid: step,
                    attempt: node.attempts,
                    correlation_id,
                };
                send_retry_due(out, report, &pointer, due, now)?;
                metrics::counter!("tasker_step_results_total", "outcome" => "retry").increment(1);
                tracing::info!(task_uuid = %node.task_uuid, step_uuid = %step, attempt = node.attempts,
                    delay_ms = delay.as_millis() as u64, "step failed; retry scheduled");
            }
            written
        }
        RetryDecision::GiveUp(reason) => {
            let written = workflow_step::fail(conn, step, ctx).await;
            if written.is_ok() {
                node.state = StepState::Error;
                metrics::counter!("tasker_step_results_total", "outcome" => "error").increment(1);
                tracing::warn!(task_uuid = %node.task_uuid, step_uuid = %step, ?reason, "step failed permanently");
            }
            written
        }
    };
    match written {
        Ok(()) => Ok(true),
        Err(DbError::TransitionConflict { .. }) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Queues a delayed `retry_due` message and asks for this process's timer,
/// so the retry fires on time here and survives a crash via the message.
fn send_retry_due(
    out: &mut Outgoing,
    report: &mut BatchReport,
    pointer: &StepAttempt,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), OrchestrationError> {
    let delay = (due - now).to_std().unwrap_or(Duration::ZERO);
    let message = to_json(&OrchestrationMessage::RetryDue(*pointer))?;
    out.send_later(&QueueName::step_results(), message, delay);
    report.retries_due.push(delay);
    Ok(())
}

//! Applies a batch of orchestration messages in one transaction: lock the
//! tasks concerned, accept results (fenced by attempt), schedule retries or
//! give up, plan each task, enqueue what became ready, move the task, delete
//! the messages. A duplicate or stale message changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::{DbError, TransitionContext, workflow_step_edge};
use tasker_messaging::ReceivedMessage;
use tasker_types::backoff::{RandomJitter, RetryDecision};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt};
use tasker_types::outcome::StepFailure;
use tasker_types::state::StepState;

use super::outgoing::{Outgoing, ToEnqueue, enqueue_steps, to_json};
use super::plan::{StepView, Target, plan};
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
    let results_queue = QueueName::step_results();
    let ctx = shared.ctx();
    let mut report = BatchReport::default();
    let mut out = Outgoing::default();
    out.delete(&results_queue, messages.iter().map(|m| m.id));

    let mut by_task: BTreeMap<TaskUuid, Vec<OrchestrationMessage>> = BTreeMap::new();
    for message in messages {
        match serde_json::from_value::<OrchestrationMessage>(message.payload.clone()) {
            Ok(parsed) => by_task
                .entry(parsed.attempt().task_uuid)
                .or_default()
                .push(parsed),
            Err(err) => {
                tracing::warn!(msg_id = message.id, error = %err, "dropping unreadable orchestration message");
                report.ignored += 1;
            }
        }
    }

    let mut tx = shared.pool.begin().await?;
    let task_uuids: Vec<TaskUuid> = by_task.keys().copied().collect();
    let tasks = task::lock_many(&mut tx, &task_uuids).await?;
    let mut steps_by_task: HashMap<TaskUuid, Vec<StepRow>> = HashMap::new();
    for step in workflow_step::list_for_tasks(&mut *tx, &task_uuids).await? {
        steps_by_task.entry(step.task_uuid).or_default().push(step);
    }
    let mut parents: HashMap<StepUuid, Vec<StepUuid>> = HashMap::new();
    for (_, edge) in workflow_step_edge::list_for_tasks(&mut *tx, &task_uuids).await? {
        parents.entry(edge.to).or_default().push(edge.from);
    }

    for task_row in tasks {
        let messages = by_task.remove(&task_row.task_uuid).unwrap_or_default();
        let steps = steps_by_task
            .remove(&task_row.task_uuid)
            .unwrap_or_default();
        let mut work = TaskWork {
            shared,
            ctx: &ctx,
            task: &task_row,
            steps,
            report: &mut report,
            out: &mut out,
        };
        work.apply_messages(&mut tx, &messages).await?;
        work.advance(&mut tx, &parents).await?;
    }
    // Messages for tasks that no longer exist are dropped with the rest.
    report.ignored += by_task.values().map(Vec::len).sum::<usize>();

    let staged = out.flush(shared.queue.as_ref(), &mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    Ok(report)
}

/// One task's share of a batch.
struct TaskWork<'a> {
    shared: &'a Shared,
    ctx: &'a TransitionContext,
    task: &'a TaskRow,
    steps: Vec<StepRow>,
    report: &'a mut BatchReport,
    out: &'a mut Outgoing,
}

impl TaskWork<'_> {
    async fn apply_messages(
        &mut self,
        conn: &mut sqlx::PgConnection,
        messages: &[OrchestrationMessage],
    ) -> Result<(), OrchestrationError> {
        let now = Utc::now();
        for message in messages {
            let pointer = message.attempt();
            let Some(i) = self
                .steps
                .iter()
                .position(|s| s.workflow_step_uuid == pointer.step_uuid)
            else {
                self.report.ignored += 1;
                continue;
            };
            let (state, attempts, next_retry_at) = (
                self.steps[i].state,
                self.steps[i].attempts,
                self.steps[i].next_retry_at,
            );
            let current = attempts == pointer.attempt;
            let applied = match (message, state) {
                (OrchestrationMessage::StepResult(_), StepState::EnqueuedForOrchestration)
                    if current =>
                {
                    self.accept_success(conn, i).await?
                }
                (
                    OrchestrationMessage::StepResult(_),
                    StepState::EnqueuedAsErrorForOrchestration,
                ) if current => self.accept_failure(conn, i, now).await?,
                (OrchestrationMessage::RetryDue(_), StepState::WaitingForRetry) if current => {
                    // The plan enqueues the step if it is due; if this message
                    // came early, send another for the remaining time.
                    if let Some(due) = next_retry_at.filter(|due| *due > now) {
                        self.send_retry_due(pointer, due, now)?;
                    }
                    true
                }
                _ => false,
            };
            if applied {
                self.report.applied += 1;
            } else {
                tracing::debug!(
                    task_uuid = %pointer.task_uuid, step_uuid = %pointer.step_uuid,
                    attempt = pointer.attempt, %state,
                    "ignoring duplicate or stale orchestration message"
                );
                metrics::counter!("tasker_step_results_total", "outcome" => "ignored").increment(1);
                self.report.ignored += 1;
            }
        }
        Ok(())
    }

    async fn accept_success(
        &mut self,
        conn: &mut sqlx::PgConnection,
        i: usize,
    ) -> Result<bool, OrchestrationError> {
        let uuid = self.steps[i].workflow_step_uuid;
        match workflow_step::complete(conn, uuid, self.ctx).await {
            Ok(()) => {
                self.steps[i].state = StepState::Complete;
                metrics::counter!("tasker_step_results_total", "outcome" => "complete")
                    .increment(1);
                Ok(true)
            }
            Err(DbError::TransitionConflict { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn accept_failure(
        &mut self,
        conn: &mut sqlx::PgConnection,
        i: usize,
        now: DateTime<Utc>,
    ) -> Result<bool, OrchestrationError> {
        let step = &self.steps[i];
        let failure = step
            .last_error
            .clone()
            .and_then(|e| serde_json::from_value::<StepFailure>(e).ok());
        let (retryable, hint) = failure.as_ref().map_or((true, None), |f| {
            (f.retryable, f.retry_after_ms.map(Duration::from_millis))
        });
        let jitter = self.shared.config.execution.backoff_jitter;
        let decision = step.retry.decide(
            step.attempts,
            retryable,
            hint,
            jitter,
            &mut RandomJitter::default(),
        );
        let uuid = step.workflow_step_uuid;
        let result = match decision {
            RetryDecision::RetryAfter(delay) => {
                let due =
                    now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
                let written = workflow_step::schedule_retry(conn, uuid, due, self.ctx).await;
                if written.is_ok() {
                    metrics::counter!("tasker_step_results_total", "outcome" => "retry")
                        .increment(1);
                    self.steps[i].state = StepState::WaitingForRetry;
                    self.steps[i].next_retry_at = Some(due);
                    let pointer = StepAttempt {
                        task_uuid: self.task.task_uuid,
                        step_uuid: uuid,
                        attempt: self.steps[i].attempts,
                        correlation_id: self.task.correlation_id,
                    };
                    self.send_retry_due(&pointer, due, now)?;
                    tracing::info!(task_uuid = %pointer.task_uuid, step_uuid = %uuid, attempt = pointer.attempt,
                        delay_ms = delay.as_millis() as u64, "step failed; retry scheduled");
                }
                written
            }
            RetryDecision::GiveUp(reason) => {
                let written = workflow_step::fail(conn, uuid, self.ctx).await;
                if written.is_ok() {
                    metrics::counter!("tasker_step_results_total", "outcome" => "error")
                        .increment(1);
                    self.steps[i].state = StepState::Error;
                    tracing::warn!(task_uuid = %self.task.task_uuid, step_uuid = %uuid, ?reason, "step failed permanently");
                }
                written
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(DbError::TransitionConflict { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Queues a delayed `retry_due` message and arms this process's timer, so
    /// the retry fires on time here and survives a crash via the message.
    fn send_retry_due(
        &mut self,
        pointer: &StepAttempt,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), OrchestrationError> {
        let delay = (due - now).to_std().unwrap_or(Duration::ZERO);
        let message = to_json(&OrchestrationMessage::RetryDue(*pointer))?;
        self.out
            .send_later(&QueueName::step_results(), message, delay);
        self.report.retries_due.push(delay);
        Ok(())
    }

    /// Plans the task with its updated steps, enqueues what is ready and
    /// moves the task along its path.
    async fn advance(
        &mut self,
        conn: &mut sqlx::PgConnection,
        parents: &HashMap<StepUuid, Vec<StepUuid>>,
    ) -> Result<(), OrchestrationError> {
        let index: HashMap<StepUuid, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.workflow_step_uuid, i))
            .collect();
        let views: Vec<StepView> = self
            .steps
            .iter()
            .map(|s| StepView {
                state: s.state,
                attempts: s.attempts,
                retry: s.retry,
                next_retry_at: s.next_retry_at,
                parents: parents
                    .get(&s.workflow_step_uuid)
                    .map(|ps| ps.iter().filter_map(|p| index.get(p).copied()).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let planned = plan(self.task.state, &views, Utc::now());
        if !planned.ready.is_empty() {
            let worker_queue = QueueName::worker(&self.task.namespace)
                .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
            let ready: Vec<ToEnqueue> = planned
                .ready
                .iter()
                .map(|&i| ToEnqueue {
                    step: self.steps[i].workflow_step_uuid,
                    from: self.steps[i].state,
                })
                .collect();
            let moved = enqueue_steps(
                conn,
                self.task.task_uuid,
                self.task.correlation_id,
                &worker_queue,
                &ready,
                self.ctx,
                self.out,
            )
            .await?;
            self.report.enqueued += moved;
            metrics::counter!("tasker_steps_enqueued_total").increment(moved as u64);
        }
        if !planned.events.is_empty() {
            let state = task::transition_path(
                conn,
                self.task.task_uuid,
                self.task.state,
                &planned.events,
                self.ctx,
            )
            .await?;
            if state.is_terminal() {
                self.report.finalized += 1;
                let elapsed = (Utc::now() - self.task.created_at)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0;
                let labels = [
                    ("namespace", self.task.namespace.clone()),
                    ("state", state.as_str().to_owned()),
                ];
                metrics::counter!("tasker_tasks_finished_total", &labels).increment(1);
                metrics::histogram!("tasker_task_duration_seconds", &labels).record(elapsed);
                tracing::info!(task_uuid = %self.task.task_uuid, correlation_id = %self.task.correlation_id,
                    to_state = %state, "task finished");
            } else if let Target::WaitingForRetry(Some(due)) = planned.target {
                tracing::debug!(task_uuid = %self.task.task_uuid, %due, "task waiting for a retry");
            }
        }
        Ok(())
    }
}

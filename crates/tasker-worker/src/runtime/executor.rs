//! Runs one message: claim the step (compare-and-set), load its context, run
//! the handler under its timeout, cancellation and a panic guard, and hand
//! the outcome to the completer. Writes nothing but the claim.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tasker_db::execution_context::{self, ExecutionContext};
use tasker_db::{DbError, workflow_step};
use tasker_messaging::{QueueTx, ReceivedMessage};
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tasker_types::outcome::{StepOutcome, error_types};
use tasker_types::state::StepState;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::shared::{InFlightEntry, WorkerShared};
use crate::error::WorkerError;
use crate::handler::{StepContext, StepHandler, to_outcome};

/// A finished attempt on its way to the completer.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) step: StepUuid,
    pub(crate) task: TaskUuid,
    pub(crate) correlation_id: CorrelationId,
    pub(crate) attempt: u32,
    pub(crate) queue: QueueName,
    pub(crate) msg_id: i64,
    pub(crate) outcome: StepOutcome,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
}

/// Handles one message; the permit returns when it is done.
pub(crate) async fn execute(
    shared: Arc<WorkerShared>,
    queue: QueueName,
    message: ReceivedMessage,
    completions: mpsc::Sender<Completion>,
    permit: OwnedSemaphorePermit,
) {
    let result = run(&shared, &queue, &message, &completions).await;
    if let Err(err) = result {
        tracing::warn!(msg_id = message.id, %queue, error = %err, "step execution failed before a result");
    }
    drop(permit);
    shared.capacity_freed.notify_one();
}

async fn run(
    shared: &Arc<WorkerShared>,
    queue: &QueueName,
    message: &ReceivedMessage,
    completions: &mpsc::Sender<Completion>,
) -> Result<(), WorkerError> {
    let pointer = match serde_json::from_value::<StepMessage>(message.payload.clone()) {
        Ok(pointer) => pointer,
        Err(err) => {
            tracing::warn!(msg_id = message.id, error = %err, "dropping unreadable step message");
            tasker_messaging::delete_now(shared.queue.as_ref(), queue, &[message.id]).await?;
            return Ok(());
        }
    };
    let Some(claim) = claim(shared, queue, message, &pointer).await? else {
        return Ok(());
    };
    let span = tracing::info_span!(
        "step", task_uuid = %pointer.task_uuid, step_uuid = %pointer.step_uuid,
        correlation_id = %pointer.correlation_id, attempt = claim.attempt
    );
    async move {
        let token = CancellationToken::new();
        shared.in_flight.insert(
            pointer.step_uuid,
            InFlightEntry {
                task: pointer.task_uuid,
                attempt: claim.attempt,
                queue: queue.clone(),
                msg_id: message.id,
                token: token.clone(),
            },
        );
        let started_at = Utc::now();
        let loaded = match load(shared, pointer.step_uuid).await {
            Ok(loaded) => loaded,
            Err(err) => {
                // Stop renewing: the lease expires and the step is re-claimed.
                shared.in_flight.remove(pointer.step_uuid, claim.attempt);
                return Err(err);
            }
        };
        let Some(outcome) = attempt(shared, &loaded, claim.attempt, token).await else {
            // Abandoned at hard shutdown: keep the lease untouched so it
            // expires and another worker re-claims the step.
            shared.in_flight.remove(pointer.step_uuid, claim.attempt);
            return Ok(());
        };
        let completion = Completion {
            step: pointer.step_uuid,
            task: pointer.task_uuid,
            correlation_id: loaded.correlation_id,
            attempt: claim.attempt,
            queue: queue.clone(),
            msg_id: message.id,
            outcome,
            started_at,
            finished_at: Utc::now(),
        };
        if completions.send(completion).await.is_err() {
            shared.in_flight.remove(pointer.step_uuid, claim.attempt);
        }
        Ok(())
    }
    .instrument(span)
    .await
}

async fn load(shared: &WorkerShared, step: StepUuid) -> Result<ExecutionContext, WorkerError> {
    let mut conn = shared.pool.acquire().await?;
    Ok(execution_context::load(&mut conn, step).await?)
}

struct Claimed {
    attempt: u32,
}

/// Claims the step the message points at, or settles the message when there
/// is nothing to run (a duplicate, a finished or cancelled step).
async fn claim(
    shared: &WorkerShared,
    queue: &QueueName,
    message: &ReceivedMessage,
    pointer: &StepMessage,
) -> Result<Option<Claimed>, WorkerError> {
    let lease = shared.config.worker.lease;
    let ctx = shared.ctx();
    let mut tx = shared.pool.begin().await?;
    let Some(step) = workflow_step::get(&mut *tx, pointer.step_uuid).await? else {
        return settle(shared, tx, queue, message.id, None).await;
    };
    let lease_expired = step.lease_expires_at.is_some_and(|at| at < Utc::now());
    let claimed = match step.state {
        StepState::Enqueued => {
            workflow_step::start(
                &mut tx,
                step.workflow_step_uuid,
                &shared.worker_id,
                lease,
                &ctx,
            )
            .await
        }
        StepState::InProgress if lease_expired && step.attempts < step.retry.max_attempts => {
            tracing::info!(step_uuid = %step.workflow_step_uuid, previous = ?step.claimed_by,
                attempt = step.attempts, "re-claiming a step whose lease expired");
            workflow_step::reclaim(
                &mut tx,
                step.workflow_step_uuid,
                &shared.worker_id,
                lease,
                &ctx,
            )
            .await
        }
        StepState::InProgress if lease_expired => {
            // The worker died on the last attempt: record that as the failure.
            let error = json!({
                "error_type": error_types::LEASE_EXPIRED,
                "message": format!("worker {} stopped renewing its lease on the last attempt",
                    step.claimed_by.as_deref().unwrap_or("unknown")),
                "retryable": false,
            });
            let recorded = workflow_step::record_lease_expiry(
                &mut tx,
                step.workflow_step_uuid,
                step.attempts,
                &error,
                &ctx,
            )
            .await;
            let result = match recorded {
                Ok(task) => Some(StepAttempt {
                    task_uuid: task,
                    step_uuid: step.workflow_step_uuid,
                    attempt: step.attempts,
                    correlation_id: pointer.correlation_id,
                }),
                Err(DbError::TransitionConflict { .. }) => None,
                Err(err) => return Err(err.into()),
            };
            return settle(shared, tx, queue, message.id, result).await;
        }
        // Someone else holds a live lease: leave the message; it returns
        // when that lease would have expired.
        StepState::InProgress => return Ok(None),
        // Anything else: a duplicate or a step that moved on.
        _ => return settle(shared, tx, queue, message.id, None).await,
    };
    match claimed {
        Ok(claim) => {
            tx.commit().await?;
            Ok(Some(Claimed {
                attempt: claim.attempt,
            }))
        }
        Err(DbError::TransitionConflict { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Deletes a message with nothing left to run, and tells orchestration about
/// `result` if there is one, in `tx`.
async fn settle(
    shared: &WorkerShared,
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    queue: &QueueName,
    msg_id: i64,
    result: Option<StepAttempt>,
) -> Result<Option<Claimed>, WorkerError> {
    let mut unit = QueueTx::join(&mut tx);
    shared
        .queue
        .delete_many(&mut unit, queue, &[msg_id])
        .await?;
    if let Some(pointer) = result {
        let message = serde_json::to_value(OrchestrationMessage::StepResult(pointer))
            .map_err(|e| WorkerError::Db(DbError::Corrupt(e.to_string())))?;
        shared
            .queue
            .send_many(
                &mut unit,
                &QueueName::step_results(),
                &[message],
                Duration::ZERO,
            )
            .await?;
    }
    let staged = unit.into_staged();
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
    Ok(None)
}

/// Runs the handler; `None` when the worker is shutting down hard.
async fn attempt(
    shared: &WorkerShared,
    loaded: &ExecutionContext,
    attempt: u32,
    token: CancellationToken,
) -> Option<StepOutcome> {
    let step = &loaded.step;
    let Some(handler) = shared.registry.get(&step.callable) else {
        return Some(StepOutcome::permanent(
            error_types::HANDLER_NOT_FOUND,
            format!(
                "worker {} has no handler for `{}`",
                shared.worker_id, step.callable
            ),
        ));
    };
    let timeout = step
        .timeout_seconds
        .map_or(shared.config.execution.default_timeout, |s| {
            Duration::from_secs(u64::from(s))
        });
    let ctx = build_context(loaded, attempt).with_cancellation(token.clone());
    let outcome = guarded(handler, ctx, timeout, &token, &shared.hard_stop).await?;
    Some(check_result(shared, loaded, outcome).await)
}

fn build_context(loaded: &ExecutionContext, attempt: u32) -> StepContext {
    let step = &loaded.step;
    let mut ctx = StepContext::new(
        loaded.task_uuid,
        step.workflow_step_uuid,
        loaded.namespace.clone(),
        loaded.task_name.clone(),
        loaded.task_version.clone(),
        loaded.context.clone(),
        step.name.clone(),
        step.template_step.clone(),
        attempt,
        step.retry.max_attempts,
        step.initialization.clone(),
        loaded.correlation_id,
    );
    ctx.inputs = step.inputs.clone();
    ctx.checkpoint = step.checkpoint.clone();
    for dependency in &loaded.dependencies {
        if dependency.direct {
            ctx.direct_parents.push(dependency.name.clone());
        }
        ctx.dependency_results.insert(
            dependency.name.clone(),
            dependency.results.clone().unwrap_or(Value::Null),
        );
    }
    ctx
}

/// Runs `handler` in a task of its own, so a panic or an overrun can be
/// contained: a panic becomes a permanent failure, an overrun a retryable
/// `timeout`, cancellation a `cancelled` failure (rejected later by the
/// fence, since the step or its lease moved on). `None` at hard stop.
async fn guarded(
    handler: Arc<dyn StepHandler>,
    ctx: StepContext,
    timeout: Duration,
    token: &CancellationToken,
    hard_stop: &CancellationToken,
) -> Option<StepOutcome> {
    let mut running = tokio::spawn(async move { handler.call(ctx).await });
    let outcome = tokio::select! {
        joined = &mut running => match joined {
            Ok(result) => to_outcome(result),
            Err(err) if err.is_panic() => {
                let panic = err.into_panic();
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".to_owned());
                tracing::error!(panic = %text, "handler panicked");
                StepOutcome::permanent(error_types::PANIC, format!("handler panicked: {text}"))
            }
            Err(_) => StepOutcome::retryable("cancelled", "handler task was cancelled"),
        },
        () = tokio::time::sleep(timeout) => {
            running.abort();
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "handler timed out");
            StepOutcome::retryable(error_types::TIMEOUT, format!("handler exceeded its timeout of {} ms", timeout.as_millis()))
        }
        () = token.cancelled() => {
            running.abort();
            StepOutcome::retryable("cancelled", "the task was cancelled or this attempt lost its lease")
        }
        () = hard_stop.cancelled() => {
            running.abort();
            return None;
        }
    };
    Some(outcome)
}

/// Holds a success to the step's `result_schema`, when it has one.
async fn check_result(
    shared: &WorkerShared,
    loaded: &ExecutionContext,
    outcome: StepOutcome,
) -> StepOutcome {
    let StepOutcome::Success { result, .. } = &outcome else {
        return outcome;
    };
    let schema = match shared
        .result_schema(loaded.named_task_uuid, &loaded.step.template_step)
        .await
    {
        Ok(schema) => schema,
        Err(err) => {
            tracing::warn!(error = %err, "cannot load result_schema; result accepted unchecked");
            None
        }
    };
    let Some(schema) = schema else { return outcome };
    let violations = schema.violations(result);
    if violations.is_empty() {
        return outcome;
    }
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    StepOutcome::permanent(
        error_types::INVALID_RESULT,
        format!(
            "result does not match the step's result_schema: {}",
            listed.join("; ")
        ),
    )
}

//! Runs one claimed step: the handler under its timeout, cancellation and a
//! panic guard, then hands the outcome to the completer. Writes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tasker_db::execution_context::ExecutionContext;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::messages::QueueName;
use tasker_types::outcome::{StepOutcome, error_types};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::claimer::Claimed;
use super::shared::{InFlightEntry, WorkerShared};
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

/// Runs one claimed step; the permit returns when its outcome is handed on.
pub(crate) async fn execute(
    shared: Arc<WorkerShared>,
    claimed: Claimed,
    completions: mpsc::Sender<Completion>,
    permit: OwnedSemaphorePermit,
) {
    let step = claimed.context.step.workflow_step_uuid;
    let span = tracing::info_span!(
        "step", task_uuid = %claimed.context.task_uuid, step_uuid = %step,
        correlation_id = %claimed.context.correlation_id, attempt = claimed.attempt
    );
    async {
        let token = CancellationToken::new();
        shared.in_flight.insert(
            step,
            InFlightEntry {
                task: claimed.context.task_uuid,
                attempt: claimed.attempt,
                queue: claimed.queue.clone(),
                msg_id: claimed.msg_id,
                token: token.clone(),
            },
        );
        let started_at = Utc::now();
        let Some(outcome) = attempt(&shared, &claimed.context, claimed.attempt, token).await else {
            // Abandoned at hard shutdown: keep the lease untouched so it
            // expires and another worker re-claims the step.
            shared.in_flight.remove(step, claimed.attempt);
            return;
        };
        let completion = Completion {
            step,
            task: claimed.context.task_uuid,
            correlation_id: claimed.context.correlation_id,
            attempt: claimed.attempt,
            queue: claimed.queue,
            msg_id: claimed.msg_id,
            outcome,
            started_at,
            finished_at: Utc::now(),
        };
        if completions.send(completion).await.is_err() {
            shared.in_flight.remove(step, claimed.attempt);
        }
    }
    .instrument(span)
    .await;
    drop(permit);
    shared.capacity_freed.notify_one();
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
    let mut ctx = build_context(loaded, attempt)
        .with_cancellation(token.clone())
        .with_checkpoint_store(shared.pool.clone());
    if step.step_type == tasker_types::template::StepType::Batchable {
        ctx.batch_config = shared
            .step_template(loaded.named_task_uuid, &step.template_step)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.batch_config.clone());
    }
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
    ctx.checkpoint = step.checkpoint.as_ref().and_then(|c| {
        serde_json::from_value(c.clone())
            .inspect_err(
                |e| tracing::warn!(error = %e, "ignoring a checkpoint that does not parse"),
            )
            .ok()
    });
    for (name, error) in &loaded.failed_parents {
        ctx.failed_parents.insert(name.clone(), error.clone());
    }
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

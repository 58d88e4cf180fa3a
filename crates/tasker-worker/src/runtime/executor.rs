//! Runs one claimed step: the handler under its timeout, cancellation and a
//! panic guard, then hands the outcome to the completer. Writes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tasker_db::execution_context::ExecutionContext;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::outcome::{StepOutcome, error_types};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::claimer::Claimed;
use super::event_plan::PlannedEvent;
use super::shared::{InFlightEntry, WorkerShared};
use crate::attempt::AttemptControl;
use crate::context::{StepContext, StepContextData};
use crate::handler::{HandlerResult, StepHandler, to_outcome};

/// A finished attempt on its way to the completer.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) step: StepUuid,
    pub(crate) task: TaskUuid,
    pub(crate) correlation_id: CorrelationId,
    pub(crate) attempt: u32,
    pub(crate) outcome: StepOutcome,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    /// Domain events to publish if the result is accepted.
    pub(crate) events: Vec<PlannedEvent>,
    /// The attempt's `step.run` span (see [`Claimed::span`]).
    pub(crate) span: tracing::Span,
    /// The task's namespace and template name, for metrics.
    pub(crate) namespace: String,
    pub(crate) template: String,
    /// When the step was claimed (see [`Claimed::claimed_at`]).
    pub(crate) claimed_at: std::time::Instant,
}

/// Runs one claimed step. The permit returns when its outcome is handed on
/// and its handler has really stopped: a handler that overran its timeout
/// on a thread the runtime cannot stop (a foreign-language one) keeps its
/// slot until it returns, so the worker never claims more than it can run.
pub(crate) async fn execute(
    shared: Arc<WorkerShared>,
    claimed: Claimed,
    completions: mpsc::Sender<Completion>,
    permit: OwnedSemaphorePermit,
) {
    let step = claimed.context.step.workflow_step_uuid;
    let span = claimed.span.clone();
    async {
        let token = CancellationToken::new();
        shared.in_flight.insert(
            step,
            InFlightEntry {
                task: claimed.context.task_uuid,
                attempt: claimed.attempt,
                token: token.clone(),
            },
        );
        let control = Arc::new(AttemptControl::default());
        let started_at = Utc::now();
        let callable = claimed.context.step.callable.as_str();
        let handling =
            tracing::info_span!("step.handler", callable, outcome = tracing::field::Empty);
        let clock = std::time::Instant::now();
        let (outcome, straggler) = attempt(
            &shared,
            &claimed.context,
            claimed.attempt,
            token,
            control.clone(),
        )
        .instrument(handling.clone())
        .await;
        let result = outcome_label(outcome.as_ref());
        handling.record("outcome", result);
        drop(handling);
        metrics::histogram!("tasker_handler_duration_seconds",
            "callable" => callable.to_owned(), "outcome" => result)
        .record(clock.elapsed().as_secs_f64());
        match outcome {
            Some(outcome) => {
                let events =
                    super::event_plan::plan(&shared, &claimed.context, claimed.attempt, &outcome)
                        .await;
                let completion = Completion {
                    step,
                    task: claimed.context.task_uuid,
                    correlation_id: claimed.context.correlation_id,
                    attempt: claimed.attempt,
                    outcome,
                    started_at,
                    finished_at: Utc::now(),
                    events,
                    span: claimed.span.clone(),
                    namespace: claimed.context.namespace.clone(),
                    template: claimed.context.task_name.clone(),
                    claimed_at: claimed.claimed_at,
                };
                if completions.send(completion).await.is_err() {
                    shared.in_flight.remove(step, claimed.attempt);
                }
                tasker_telemetry::metrics::channel_saturation(
                    "worker_completions",
                    completions.capacity(),
                    completions.max_capacity(),
                );
            }
            // Abandoned (hard shutdown, or given back by a foreign runtime):
            // keep the lease untouched so it expires and another worker
            // re-claims the step.
            None => shared.in_flight.remove(step, claimed.attempt),
        }
        wait_until_stopped(&shared, straggler, &control).await;
    }
    .instrument(span)
    .await;
    drop(permit);
    shared.capacity_freed.notify_one();
}

/// The `outcome` label of handler metrics and spans.
fn outcome_label(outcome: Option<&StepOutcome>) -> &'static str {
    match outcome {
        None => "abandoned",
        Some(StepOutcome::Success { .. }) => "success",
        Some(StepOutcome::Failure { error }) if error.error_type == error_types::TIMEOUT => {
            "timeout"
        }
        Some(StepOutcome::Failure { error }) if error.error_type == "cancelled" => "cancelled",
        Some(StepOutcome::Failure { .. }) => "failure",
    }
}

/// Waits, bounded by hard stop, for an ended attempt's handler to be gone:
/// the aborted task to unwind, then any foreign handler still running.
async fn wait_until_stopped(
    shared: &WorkerShared,
    straggler: Option<JoinHandle<HandlerResult>>,
    control: &AttemptControl,
) {
    let gone = async {
        if let Some(task) = straggler {
            let _ = task.await;
        }
        if let Some(done) = control.take_linger() {
            tracing::debug!("attempt over; waiting for its foreign handler to return");
            let _ = done.await;
        }
    };
    tokio::select! {
        () = gone => {}
        () = shared.hard_stop.cancelled() => {}
    }
}

/// Runs the handler. The outcome is `None` when the attempt was abandoned;
/// the handle is the handler's task when it was told to stop (timeout,
/// cancellation, abandonment) and may not have unwound yet.
async fn attempt(
    shared: &WorkerShared,
    loaded: &ExecutionContext,
    attempt: u32,
    token: CancellationToken,
    control: Arc<AttemptControl>,
) -> (Option<StepOutcome>, Option<JoinHandle<HandlerResult>>) {
    let step = &loaded.step;
    let Some(handler) = shared.registry.get(&step.callable) else {
        let outcome = StepOutcome::permanent(
            error_types::HANDLER_NOT_FOUND,
            format!(
                "worker {} has no handler for `{}`",
                shared.worker_id, step.callable
            ),
        );
        return (Some(outcome), None);
    };
    let timeout = step
        .timeout_seconds
        .map_or(shared.config.execution.default_timeout, |s| {
            Duration::from_secs(u64::from(s))
        });
    let mut data = context_data(loaded, attempt);
    if step.step_type == tasker_types::template::StepType::Batchable {
        data.batch_config = shared
            .step_template(loaded.named_task_uuid, &step.template_step)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.batch_config.clone());
    }
    let ctx = StepContext::new(data)
        .with_cancellation(token.clone())
        .with_checkpoint_store(shared.pool.clone())
        .with_control(control.clone());
    let (outcome, straggler) =
        guarded(handler, ctx, timeout, &token, &control, &shared.hard_stop).await;
    match outcome {
        Some(outcome) => (Some(check_result(shared, loaded, outcome).await), straggler),
        None => (None, straggler),
    }
}

fn context_data(loaded: &ExecutionContext, attempt: u32) -> StepContextData {
    let step = &loaded.step;
    let mut data = StepContextData {
        task_uuid: loaded.task_uuid,
        step_uuid: step.workflow_step_uuid,
        namespace: loaded.namespace.clone(),
        task_name: loaded.task_name.clone(),
        task_version: loaded.task_version.clone(),
        context: loaded.context.clone(),
        step_name: step.name.clone(),
        template_step: step.template_step.clone(),
        attempt,
        max_attempts: step.retry.max_attempts,
        initialization: step.initialization.clone(),
        correlation_id: loaded.correlation_id,
        ..StepContextData::default()
    };
    data.set_inputs(step.inputs.clone());
    data.checkpoint = step.checkpoint.as_ref().and_then(|c| {
        serde_json::from_value(c.clone())
            .inspect_err(
                |e| tracing::warn!(error = %e, "ignoring a checkpoint that does not parse"),
            )
            .ok()
    });
    for (name, error) in &loaded.failed_parents {
        data.failed_parents.insert(name.clone(), error.clone());
    }
    for dependency in &loaded.dependencies {
        if dependency.direct {
            data.direct_parents.push(dependency.name.clone());
        }
        data.dependency_results.insert(
            dependency.name.clone(),
            dependency.results.clone().unwrap_or(Value::Null),
        );
    }
    data
}

/// Runs `handler` in a task of its own, so a panic or an overrun can be
/// contained: a panic becomes a permanent failure, an overrun a retryable
/// `timeout`, cancellation a `cancelled` failure (rejected later by the
/// fence, since the step or its lease moved on). An attempt that ends early
/// flips the handler's cancel flag before its task is aborted, so a handler
/// the runtime cannot stop is told. The outcome is `None` at hard stop or
/// when the attempt is abandoned.
async fn guarded(
    handler: Arc<dyn StepHandler>,
    ctx: StepContext,
    timeout: Duration,
    token: &CancellationToken,
    control: &AttemptControl,
    hard_stop: &CancellationToken,
) -> (Option<StepOutcome>, Option<JoinHandle<HandlerResult>>) {
    let mut running = tokio::spawn(async move { handler.call(ctx).await });
    let ended = |running: JoinHandle<HandlerResult>| {
        token.cancel();
        running.abort();
        Some(running)
    };
    tokio::select! {
        joined = &mut running => {
            // Giving a foreign step back drops its reply channel after the
            // abandon fires, so the handler may end (without an outcome)
            // in the same instant and select may pick this branch: an
            // abandoned attempt records nothing either way.
            if control.is_abandoned() {
                return (None, None);
            }
            let outcome = match joined {
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
            };
            (Some(outcome), None)
        }
        () = tokio::time::sleep(timeout) => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "handler timed out");
            let outcome = StepOutcome::retryable(
                error_types::TIMEOUT,
                format!("handler exceeded its timeout of {} ms", timeout.as_millis()),
            );
            (Some(outcome), ended(running))
        }
        () = token.cancelled() => {
            let outcome = StepOutcome::retryable(
                "cancelled",
                "the task was cancelled or this attempt lost its lease",
            );
            (Some(outcome), ended(running))
        }
        () = control.abandoned() => (None, ended(running)),
        () = hard_stop.cancelled() => (None, ended(running)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its own attempt back and fails in the same instant, as a
    /// foreign step given back does (its reply channel drops right after).
    struct GiveBackAndFail;

    #[async_trait::async_trait]
    impl StepHandler for GiveBackAndFail {
        async fn call(&self, ctx: StepContext) -> HandlerResult {
            if let Some(control) = ctx.control() {
                control.abandon();
            }
            Err(crate::handler::HandlerError::retryable(
                "the foreign runtime dropped the step without an outcome",
            ))
        }
    }

    #[tokio::test]
    async fn an_abandoned_attempt_records_nothing_even_when_its_handler_ends_at_once() {
        for _ in 0..200 {
            let control = Arc::new(AttemptControl::default());
            let ctx = StepContext::new(StepContextData::default()).with_control(control.clone());
            let (token, hard_stop) = (CancellationToken::new(), CancellationToken::new());
            let (outcome, _) = guarded(
                Arc::new(GiveBackAndFail),
                ctx,
                Duration::from_secs(5),
                &token,
                &control,
                &hard_stop,
            )
            .await;
            assert!(outcome.is_none(), "recorded {outcome:?}");
        }
    }
}

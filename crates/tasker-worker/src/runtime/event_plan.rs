//! Decides which domain events an attempt publishes (SPEC §4.9), as the
//! attempt ends: its step's declarations that fire for how it ended, each
//! payload held to its declared schema. The completer then writes the
//! durable ones with the result and hands the fast ones to subscribers,
//! for attempts whose result was accepted.

use chrono::Utc;
use tasker_db::execution_context::ExecutionContext;
use tasker_types::domain_event::{AttemptEnd, DomainEvent, firing};
use tasker_types::messages::QueueName;
use tasker_types::outcome::StepOutcome;
use tasker_types::template::DeliveryMode;

use super::shared::WorkerShared;
use crate::events::EventCounters;

/// An event to publish once its attempt's result is recorded.
#[derive(Debug)]
pub(crate) struct PlannedEvent {
    /// Send it to `queue` with the result.
    pub(crate) durable: bool,
    /// Hand it to in-process subscribers after the commit.
    pub(crate) fast: bool,
    /// `<namespace>_domain_events`.
    pub(crate) queue: QueueName,
    pub(crate) event: DomainEvent,
}

/// The events attempt `attempt` of `loaded`'s step publishes with `outcome`.
/// Never fails: what cannot be published is logged and counted.
pub(crate) async fn plan(
    shared: &WorkerShared,
    loaded: &ExecutionContext,
    attempt: u32,
    outcome: &StepOutcome,
) -> Vec<PlannedEvent> {
    let step = &loaded.step;
    let definition = match shared
        .step_template(loaded.named_task_uuid, &step.template_step)
        .await
    {
        Ok(Some(definition)) => definition,
        Ok(None) => return Vec::new(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot load the step's event declarations; publishing none");
            return Vec::new();
        }
    };
    if definition.publishes_events.is_empty() {
        return Vec::new();
    }
    let Ok(queue) = QueueName::domain_events(&loaded.namespace) else {
        return Vec::new();
    };
    let end = AttemptEnd::of(outcome, &step.retry, attempt);
    let payload = match outcome {
        StepOutcome::Success { result, .. } => result.clone(),
        StepOutcome::Failure { error } => error.to_stored(),
    };
    let counters = &shared.events.counters;
    let mut planned = Vec::new();
    for declared in firing(&definition.publishes_events, end) {
        if declared.schema.is_some() {
            let schema = shared
                .event_schema(loaded.named_task_uuid, &step.template_step, declared)
                .await;
            let violations = schema.map(|s| s.violations(&payload)).unwrap_or_default();
            if !violations.is_empty() {
                let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
                tracing::warn!(event = %declared.name, violations = %listed.join("; "),
                    "domain event dropped: its payload does not match the declared schema");
                EventCounters::add(&counters.dropped_schema, 1);
                continue;
            }
        }
        let (durable, fast) = match declared.delivery_mode {
            DeliveryMode::Durable => (true, false),
            DeliveryMode::Fast => (false, true),
            DeliveryMode::Broadcast => (true, true),
        };
        planned.push(PlannedEvent {
            durable,
            fast,
            queue: queue.clone(),
            event: DomainEvent {
                event_id: uuid::Uuid::now_v7(),
                name: declared.name.clone(),
                namespace: loaded.namespace.clone(),
                task_name: loaded.task_name.clone(),
                task_uuid: loaded.task_uuid,
                step_uuid: step.workflow_step_uuid,
                step_name: step.name.clone(),
                attempt,
                correlation_id: loaded.correlation_id,
                outcome: end,
                payload: payload.clone(),
                published_at: Utc::now(),
            },
        });
    }
    planned
}

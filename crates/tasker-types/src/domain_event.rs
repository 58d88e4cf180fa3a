//! Domain events (SPEC §4.9): which of a step's declared events an attempt
//! fires, and the event itself. Pure: the worker decides with these, then
//! sends (durable) and hands to in-process subscribers (fast).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::backoff::RetryPolicy;
use crate::ids::{CorrelationId, StepUuid, TaskUuid};
use crate::outcome::StepOutcome;
use crate::template::{EventCondition, EventDeclaration};

/// How an attempt ended, as its events see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptEnd {
    /// The handler succeeded.
    Success,
    /// It failed, and another attempt follows.
    RetryableFailure,
    /// It failed for good.
    PermanentFailure,
}

impl AttemptEnd {
    /// How attempt `attempt` (1-based) with `outcome` ends under the step's
    /// `retry` policy — the rule orchestration applies to decide a retry.
    pub fn of(outcome: &StepOutcome, retry: &RetryPolicy, attempt: u32) -> Self {
        match outcome {
            StepOutcome::Success { .. } => AttemptEnd::Success,
            StepOutcome::Failure { error } => {
                if retry.give_up_reason(attempt, error.retryable).is_some() {
                    AttemptEnd::PermanentFailure
                } else {
                    AttemptEnd::RetryableFailure
                }
            }
        }
    }
}

impl EventCondition {
    /// Whether an event with this condition fires when an attempt ends so.
    pub fn fires_on(self, end: AttemptEnd) -> bool {
        match self {
            EventCondition::Always => true,
            EventCondition::Success => end == AttemptEnd::Success,
            EventCondition::Failure => end != AttemptEnd::Success,
            EventCondition::RetryableFailure => end == AttemptEnd::RetryableFailure,
            EventCondition::PermanentFailure => end == AttemptEnd::PermanentFailure,
        }
    }
}

/// The declared events an attempt that ended so fires, in declaration order.
pub fn firing(
    declared: &[EventDeclaration],
    end: AttemptEnd,
) -> impl Iterator<Item = &EventDeclaration> {
    declared.iter().filter(move |e| e.condition.fires_on(end))
}

/// One published domain event: the message on `<namespace>_domain_events`
/// and what in-process subscribers receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Unique per publication (UUID v7: sortable by time). Consumers
    /// deduplicate on it: durable delivery is at least once.
    pub event_id: Uuid,
    /// The declared name, e.g. `order.shipped`.
    pub name: String,
    /// The task's namespace.
    pub namespace: String,
    /// The task's template name.
    pub task_name: String,
    /// The task.
    pub task_uuid: TaskUuid,
    /// The step that published it.
    pub step_uuid: StepUuid,
    /// The step's name.
    pub step_name: String,
    /// The attempt that fired it.
    pub attempt: u32,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// How the attempt ended.
    pub outcome: AttemptEnd,
    /// The step's result on success, its error envelope on failure.
    pub payload: Value,
    /// When the worker published it.
    pub published_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::outcome::StepOutcome;
    use crate::template::DeliveryMode;

    fn declared(name: &str, condition: EventCondition) -> EventDeclaration {
        EventDeclaration {
            name: name.to_owned(),
            condition,
            schema: None,
            delivery_mode: DeliveryMode::Durable,
        }
    }

    #[test]
    fn each_condition_fires_on_exactly_its_endings() {
        use AttemptEnd::*;
        use EventCondition as C;
        let table = [
            (C::Success, [true, false, false]),
            (C::Failure, [false, true, true]),
            (C::RetryableFailure, [false, true, false]),
            (C::PermanentFailure, [false, false, true]),
            (C::Always, [true, true, true]),
        ];
        for (condition, expected) in table {
            let got = [Success, RetryableFailure, PermanentFailure].map(|e| condition.fires_on(e));
            assert_eq!(got, expected, "{condition:?}");
        }
    }

    #[test]
    fn a_failure_is_permanent_exactly_when_orchestration_gives_up() {
        let retry = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let retryable = StepOutcome::retryable("boom", "try again");
        let permanent = StepOutcome::permanent("bad", "never");
        assert_eq!(
            AttemptEnd::of(&retryable, &retry, 1),
            AttemptEnd::RetryableFailure
        );
        assert_eq!(
            AttemptEnd::of(&retryable, &retry, 3),
            AttemptEnd::PermanentFailure
        );
        assert_eq!(
            AttemptEnd::of(&permanent, &retry, 1),
            AttemptEnd::PermanentFailure
        );
        let no_retries = RetryPolicy {
            retryable: false,
            ..retry
        };
        assert_eq!(
            AttemptEnd::of(&retryable, &no_retries, 1),
            AttemptEnd::PermanentFailure
        );
        let success = StepOutcome::Success {
            result: json!(1),
            control: None,
        };
        assert_eq!(AttemptEnd::of(&success, &retry, 3), AttemptEnd::Success);
    }

    #[test]
    fn firing_keeps_declaration_order() {
        let events = [
            declared("a.done", EventCondition::Success),
            declared("a.failed", EventCondition::Failure),
            declared("a.seen", EventCondition::Always),
        ];
        let names: Vec<&str> = firing(&events, AttemptEnd::Success)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["a.done", "a.seen"]);
        let names: Vec<&str> = firing(&events, AttemptEnd::PermanentFailure)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["a.failed", "a.seen"]);
    }
}

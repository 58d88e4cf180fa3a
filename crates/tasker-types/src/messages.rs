//! Queue names and the pointer messages that travel on them (SPEC §4.2, §6).
//! A message carries ids only: the database holds the state, and a consumer
//! reloads it, so a duplicate or late message changes nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CorrelationId, StepUuid, TaskUuid};
use crate::names::{is_valid_namespace, is_valid_pool};
use crate::trace::TraceParent;

/// A validated queue name (`[a-z0-9_]`, at most 47 characters, PGMQ's limit).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

/// A name that cannot be a queue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid queue name (1 to 47 characters from a-z, 0-9 and _)")]
pub struct InvalidQueueName(pub String);

impl QueueName {
    /// Longest queue name PGMQ accepts.
    pub const MAX_LEN: usize = 47;

    /// Step results from workers to orchestration.
    pub const STEP_RESULTS: &'static str = "orchestration_step_results";
    /// New-task requests to orchestration.
    pub const TASK_REQUESTS: &'static str = "orchestration_task_requests";
    /// Tasks that orchestration should try to finalize.
    pub const TASK_FINALIZATIONS: &'static str = "orchestration_task_finalizations";

    /// Validates `name`.
    ///
    /// # Errors
    /// [`InvalidQueueName`] when the name breaks the rule.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidQueueName> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidQueueName(name))
        }
    }

    /// `worker_<namespace>_queue`: where a namespace's ready steps wait for workers.
    ///
    /// # Errors
    /// [`InvalidQueueName`] when `namespace` is not a valid namespace.
    pub fn worker(namespace: &str) -> Result<Self, InvalidQueueName> {
        if !is_valid_namespace(namespace) {
            return Err(InvalidQueueName(format!("worker_{namespace}_queue")));
        }
        Self::new(format!("worker_{namespace}_queue"))
    }

    /// The queue of one worker pool of a namespace: the default pool's is
    /// [`QueueName::worker`], a named pool's `worker_<namespace>__<pool>`
    /// (the double underscore keeps `("a_b", None)`, `("a", Some("b"))` and
    /// `("a_b", Some("c"))` apart; see [`crate::names::is_valid_pool`]).
    ///
    /// # Errors
    /// [`InvalidQueueName`] when `namespace` or `pool` breaks its rule, or
    /// the name would be longer than [`QueueName::MAX_LEN`].
    pub fn worker_pool(namespace: &str, pool: Option<&str>) -> Result<Self, InvalidQueueName> {
        let Some(pool) = pool else {
            return Self::worker(namespace);
        };
        let name = format!("worker_{namespace}__{pool}");
        if !is_valid_namespace(namespace) || !is_valid_pool(pool) {
            return Err(InvalidQueueName(name));
        }
        Self::new(name)
    }

    /// `<namespace>_domain_events`: durable domain events (SPEC §4.9).
    ///
    /// # Errors
    /// [`InvalidQueueName`] when `namespace` is not a valid namespace.
    pub fn domain_events(namespace: &str) -> Result<Self, InvalidQueueName> {
        if !is_valid_namespace(namespace) {
            return Err(InvalidQueueName(format!("{namespace}_domain_events")));
        }
        Self::new(format!("{namespace}_domain_events"))
    }

    /// The orchestration step-results queue.
    pub fn step_results() -> Self {
        Self(Self::STEP_RESULTS.to_owned())
    }

    /// The orchestration task-requests queue.
    pub fn task_requests() -> Self {
        Self(Self::TASK_REQUESTS.to_owned())
    }

    /// The orchestration task-finalizations queue.
    pub fn task_finalizations() -> Self {
        Self(Self::TASK_FINALIZATIONS.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for QueueName {
    type Error = InvalidQueueName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<QueueName> for String {
    fn from(name: QueueName) -> Self {
        name.0
    }
}

/// On `worker_<namespace>_queue`: a step is ready to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    /// The step's task.
    pub task_uuid: TaskUuid,
    /// The step to run.
    pub step_uuid: StepUuid,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// The trace the message belongs to (W3C `traceparent`), so spans on
    /// the other side join it; absent when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

/// Points at one attempt of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepAttempt {
    /// The step's task.
    pub task_uuid: TaskUuid,
    /// The step.
    pub step_uuid: StepUuid,
    /// The attempt concerned; orchestration ignores attempts that are no
    /// longer current.
    pub attempt: u32,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// The trace the message belongs to (W3C `traceparent`), so spans on
    /// the other side join it; absent when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

/// On `orchestration_step_results`: something about a step needs
/// orchestration's attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrchestrationMessage {
    /// A worker stored an attempt's result (success or failure).
    StepResult(StepAttempt),
    /// A step's retry backoff has elapsed (sent as a delayed message when
    /// the retry was scheduled).
    RetryDue(StepAttempt),
}

impl OrchestrationMessage {
    /// The step attempt the message points at.
    pub const fn attempt(&self) -> &StepAttempt {
        match self {
            OrchestrationMessage::StepResult(a) | OrchestrationMessage::RetryDue(a) => a,
        }
    }
}

/// On `orchestration_task_requests` and `orchestration_task_finalizations`:
/// a task needs orchestration's attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// The task.
    pub task_uuid: TaskUuid,
    /// The task's correlation id.
    pub correlation_id: CorrelationId,
    /// The trace the message belongs to (W3C `traceparent`), so spans on
    /// the other side join it; absent when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_queues_are_named_after_their_namespace() {
        assert_eq!(
            QueueName::worker("payments").unwrap().as_str(),
            "worker_payments_queue"
        );
        assert_eq!(
            QueueName::domain_events("payments").unwrap().as_str(),
            "payments_domain_events"
        );
        let longest = "n".repeat(29);
        assert!(QueueName::worker(&longest).unwrap().as_str().len() <= QueueName::MAX_LEN);
        assert!(QueueName::worker("Bad-Name").is_err());
        assert!(QueueName::new("x".repeat(48)).is_err());
        assert!(QueueName::new("a;drop table").is_err());
    }

    #[test]
    fn pool_queues_never_collide_with_each_other_or_default_queues() {
        assert_eq!(
            QueueName::worker_pool("payments", None).unwrap(),
            QueueName::worker("payments").unwrap()
        );
        assert_eq!(
            QueueName::worker_pool("payments", Some("python"))
                .unwrap()
                .as_str(),
            "worker_payments__python"
        );
        // Every (namespace, pool) pair over a small alphabet maps to its own queue.
        let words = [
            "a", "b", "a_b", "b_a", "a_", "_a", "a__b", "queue", "a_queue", "q",
        ];
        let mut seen = std::collections::HashMap::new();
        for namespace in words {
            for pool in std::iter::once(None).chain(words.iter().map(|w| Some(*w))) {
                if let Ok(queue) = QueueName::worker_pool(namespace, pool) {
                    let other = seen.insert(queue.clone(), (namespace, pool));
                    assert!(
                        other.is_none(),
                        "{queue}: {other:?} and {:?}",
                        (namespace, pool)
                    );
                }
            }
        }
        assert!(QueueName::worker_pool("payments", Some("queue")).is_err());
        assert!(QueueName::worker_pool("payments", Some("x".repeat(31).as_str())).is_err());
    }

    #[test]
    fn queue_names_validate_when_deserialized() {
        let ok: QueueName = serde_json::from_str("\"orchestration_step_results\"").unwrap();
        assert_eq!(ok, QueueName::step_results());
        assert!(serde_json::from_str::<QueueName>("\"Nope\"").is_err());
    }

    #[test]
    fn orchestration_messages_carry_their_kind() {
        let attempt = StepAttempt {
            task_uuid: TaskUuid::new(),
            step_uuid: StepUuid::new(),
            attempt: 2,
            correlation_id: CorrelationId::new(),
            traceparent: None,
        };
        let json = serde_json::to_value(OrchestrationMessage::RetryDue(attempt)).unwrap();
        assert_eq!(json["kind"], "retry_due");
        assert_eq!(json["attempt"], 2);
        let back: OrchestrationMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back.attempt(), &attempt);
    }

    #[test]
    fn messages_are_small_pointers() {
        let msg = StepMessage {
            task_uuid: TaskUuid::new(),
            step_uuid: StepUuid::new(),
            correlation_id: CorrelationId::new(),
            traceparent: None,
        };
        let json = serde_json::to_value(msg).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 3);
        assert_eq!(serde_json::from_value::<StepMessage>(json).unwrap(), msg);
        let traced = StepMessage {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .ok(),
            ..msg
        };
        let json = serde_json::to_value(traced).unwrap();
        assert_eq!(
            json["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(serde_json::from_value::<StepMessage>(json).unwrap(), traced);
    }
}

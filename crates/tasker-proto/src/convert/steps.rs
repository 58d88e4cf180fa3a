//! Steps: the step view, readiness, audit trail, and the repair request.

use tasker_types::api::{
    AttemptView, StepActionKind, StepActionRequest, StepAudit, StepView, TransitionView,
};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::readiness::Readiness;

use super::json;
use super::names::parse_name;
use super::time::{optional_timestamp, timestamp};
use crate::v1;

impl From<Readiness> for v1::Readiness {
    fn from(readiness: Readiness) -> Self {
        let (remaining, until) = match readiness {
            Readiness::WaitingForParents { remaining } => {
                (Some(u64::try_from(remaining).unwrap_or(u64::MAX)), None)
            }
            Readiness::BackingOff { until } => (None, Some(timestamp(until))),
            Readiness::Ready | Readiness::NotWaiting | Readiness::RetriesExhausted => (None, None),
        };
        Self {
            // Readiness is internally tagged by `status`; its name is the tag.
            status: status_of(&readiness),
            remaining,
            until,
        }
    }
}

/// The `status` tag REST writes for `readiness`.
fn status_of(readiness: &Readiness) -> String {
    serde_json::to_value(readiness)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

impl From<StepView> for v1::StepView {
    fn from(view: StepView) -> Self {
        Self {
            workflow_step_uuid: view.workflow_step_uuid.to_string(),
            task_uuid: view.task_uuid.to_string(),
            name: view.name,
            template_step: view.template_step,
            step_type: view.step_type.as_str().to_owned(),
            callable: view.callable,
            state: view.state.as_str().to_owned(),
            attempts: view.attempts,
            max_attempts: view.max_attempts,
            retryable: view.retryable,
            dependencies: view.dependencies,
            readiness: Some(view.readiness.into()),
            results_json: json::optional_text(view.results.as_ref()),
            last_error_json: json::optional_text(view.last_error.as_ref()),
            inputs_json: json::optional_text(view.inputs.as_ref()),
            checkpoint_json: json::optional_text(view.checkpoint.as_ref()),
            next_retry_at: optional_timestamp(view.next_retry_at),
            lease_expires_at: optional_timestamp(view.lease_expires_at),
            claimed_by: view.claimed_by,
            created_at: Some(timestamp(view.created_at)),
            updated_at: Some(timestamp(view.updated_at)),
            completed_at: optional_timestamp(view.completed_at),
        }
    }
}

impl From<Vec<StepView>> for v1::StepList {
    fn from(steps: Vec<StepView>) -> Self {
        Self {
            steps: steps.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<AttemptView> for v1::AttemptView {
    fn from(attempt: AttemptView) -> Self {
        Self {
            attempt: attempt.attempt,
            outcome: attempt.outcome,
            accepted: attempt.accepted,
            result_json: json::optional_text(attempt.result.as_ref()),
            error_json: json::optional_text(attempt.error.as_ref()),
            worker_id: attempt.worker_id,
            actor: attempt.actor,
            reason: attempt.reason,
            started_at: optional_timestamp(attempt.started_at),
            finished_at: Some(timestamp(attempt.finished_at)),
            duration_ms: attempt.duration_ms,
        }
    }
}

impl From<TransitionView> for v1::TransitionView {
    fn from(transition: TransitionView) -> Self {
        Self {
            from_state: transition.from_state,
            to_state: transition.to_state,
            event: transition.event,
            attempt: transition.attempt,
            processor_id: transition.processor_id,
            metadata_json: json::text(&transition.metadata),
            created_at: Some(timestamp(transition.created_at)),
        }
    }
}

impl From<StepAudit> for v1::StepAudit {
    fn from(audit: StepAudit) -> Self {
        Self {
            step: Some(audit.step.into()),
            attempts: audit.attempts.into_iter().map(Into::into).collect(),
            transitions: audit.transitions.into_iter().map(Into::into).collect(),
        }
    }
}

/// The action part of the request; the adapter reads `task_uuid` and
/// `step_uuid` itself (they are the REST path, not the body).
impl TryFrom<v1::ActOnStepRequest> for StepActionRequest {
    type Error = String;

    fn try_from(request: v1::ActOnStepRequest) -> Result<Self, String> {
        Ok(Self {
            action: parse_name::<StepActionKind>("action", "step action", &request.action)?,
            actor: request.actor,
            reason: request.reason,
            inputs: json::parse_optional("inputs_json", request.inputs_json.as_deref())?,
            result: json::parse_optional("result_json", request.result_json.as_deref())?,
        })
    }
}

impl v1::ActOnStepRequest {
    /// The request for `action` on step `step` of task `task`.
    pub fn new(task: TaskUuid, step: StepUuid, action: StepActionRequest) -> Self {
        Self {
            task_uuid: task.to_string(),
            step_uuid: step.to_string(),
            action: action.action.as_str().to_owned(),
            actor: action.actor,
            reason: action.reason,
            inputs_json: action.inputs.as_ref().map(json::text),
            result_json: action.result.as_ref().map(json::text),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::{Value, json};
    use tasker_types::state::StepState;
    use tasker_types::template::StepType;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn step() -> StepView {
        StepView {
            workflow_step_uuid: StepUuid::new(),
            task_uuid: TaskUuid::new(),
            name: "fetch".into(),
            template_step: "fetch".into(),
            step_type: StepType::BatchWorker,
            callable: "demo::Fetch".into(),
            state: StepState::WaitingForRetry,
            attempts: 1,
            max_attempts: 3,
            retryable: true,
            dependencies: vec!["start".into()],
            readiness: Readiness::BackingOff { until: at(100) },
            results: None,
            last_error: Some(json!({"message": "boom"})),
            inputs: Some(Value::Null),
            checkpoint: Some(json!({"cursor": 5})),
            next_retry_at: Some(at(100)),
            lease_expires_at: None,
            claimed_by: None,
            created_at: at(1),
            updated_at: at(2),
            completed_at: None,
        }
    }

    #[test]
    fn step_views_carry_every_field() {
        let view = step();
        let message = v1::StepView::from(view.clone());
        assert_eq!(
            message.workflow_step_uuid,
            view.workflow_step_uuid.to_string()
        );
        assert_eq!(message.step_type, "batch_worker");
        assert_eq!(message.state, "waiting_for_retry");
        assert_eq!(message.dependencies, vec!["start".to_owned()]);
        assert_eq!(message.results_json, None);
        assert_eq!(
            message.last_error_json.as_deref(),
            Some(r#"{"message":"boom"}"#)
        );
        assert_eq!(message.inputs_json, None, "a JSON null is sent unset");
        assert_eq!(message.checkpoint_json.as_deref(), Some(r#"{"cursor":5}"#));
        assert_eq!(message.next_retry_at, Some(timestamp(at(100))));
        let readiness = message.readiness.unwrap();
        assert_eq!(readiness.status, "backing_off");
        assert_eq!(readiness.until, Some(timestamp(at(100))));
    }

    #[test]
    fn readiness_tags_are_the_rest_tags() {
        let waiting = v1::Readiness::from(Readiness::WaitingForParents { remaining: 2 });
        assert_eq!(
            (waiting.status.as_str(), waiting.remaining),
            ("waiting_for_parents", Some(2))
        );
        for (readiness, name) in [
            (Readiness::Ready, "ready"),
            (Readiness::NotWaiting, "not_waiting"),
            (Readiness::RetriesExhausted, "retries_exhausted"),
        ] {
            assert_eq!(v1::Readiness::from(readiness).status, name);
        }
    }

    #[test]
    fn audits_keep_attempts_and_transitions_in_order() {
        let audit = StepAudit {
            step: step(),
            attempts: vec![AttemptView {
                attempt: 1,
                outcome: "failure".into(),
                accepted: true,
                result: None,
                error: Some(json!({"retryable": true})),
                worker_id: Some("w1".into()),
                actor: None,
                reason: None,
                started_at: Some(at(3)),
                finished_at: at(4),
                duration_ms: Some(1000),
            }],
            transitions: vec![
                TransitionView {
                    from_state: None,
                    to_state: "pending".into(),
                    event: "initialize".into(),
                    attempt: Some(0),
                    processor_id: Some("o1".into()),
                    metadata: json!({}),
                    created_at: at(1),
                },
                TransitionView {
                    from_state: Some("pending".into()),
                    to_state: "enqueued".into(),
                    event: "enqueue".into(),
                    attempt: None,
                    processor_id: None,
                    metadata: json!({"queue": "q"}),
                    created_at: at(2),
                },
            ],
        };
        let message = v1::StepAudit::from(audit);
        assert_eq!(
            message.attempts[0].error_json.as_deref(),
            Some(r#"{"retryable":true}"#)
        );
        assert_eq!(message.attempts[0].duration_ms, Some(1000));
        assert_eq!(
            message.transitions[1].from_state.as_deref(),
            Some("pending")
        );
        assert_eq!(message.transitions[1].metadata_json, r#"{"queue":"q"}"#);
        assert_eq!(message.transitions[0].metadata_json, "{}");
    }

    #[test]
    fn step_actions_round_trip_and_name_bad_fields() {
        let mut action =
            StepActionRequest::new(StepActionKind::CompleteManually, "ops", "fixed by hand");
        action.result = Some(json!({"total": 3}));
        action.inputs = Some(json!([1, 2]));
        let (task, step) = (TaskUuid::new(), StepUuid::new());
        let message = v1::ActOnStepRequest::new(task, step, action.clone());
        assert_eq!(message.task_uuid, task.to_string());
        assert_eq!(message.step_uuid, step.to_string());
        assert_eq!(
            StepActionRequest::try_from(message.clone()).unwrap(),
            action
        );

        let bad_action = v1::ActOnStepRequest {
            action: "explode".into(),
            ..message.clone()
        };
        assert_eq!(
            StepActionRequest::try_from(bad_action).unwrap_err(),
            "`action`: unknown step action `explode`"
        );
        let bad_result = v1::ActOnStepRequest {
            result_json: Some("nope".into()),
            ..message
        };
        assert!(
            StepActionRequest::try_from(bad_result)
                .unwrap_err()
                .starts_with("`result_json`: not JSON: ")
        );
    }
}

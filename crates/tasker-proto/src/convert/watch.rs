//! `WatchTask` events: one committed state change of a task or a step.

use tasker_types::api::TransitionEvent;

use super::names::{parse_optional_uuid, parse_uuid};
use super::time::{instant, timestamp};
use crate::v1;

impl From<TransitionEvent> for v1::TransitionEvent {
    fn from(event: TransitionEvent) -> Self {
        Self {
            task_uuid: event.task_uuid.to_string(),
            workflow_step_uuid: event.workflow_step_uuid.map(|s| s.to_string()),
            step_name: event.step_name,
            from_state: event.from_state,
            to_state: event.to_state,
            event: event.event,
            attempt: event.attempt,
            processor_id: event.processor_id,
            created_at: Some(timestamp(event.created_at)),
        }
    }
}

/// For clients reading the stream: the event as tasker-types has it.
impl TryFrom<v1::TransitionEvent> for TransitionEvent {
    type Error = String;

    fn try_from(event: v1::TransitionEvent) -> Result<Self, String> {
        let created_at = event
            .created_at
            .as_ref()
            .ok_or_else(|| "`created_at`: missing".to_owned())
            .and_then(|at| instant("created_at", at))?;
        Ok(Self {
            task_uuid: parse_uuid("task_uuid", &event.task_uuid)?,
            workflow_step_uuid: parse_optional_uuid(
                "workflow_step_uuid",
                event.workflow_step_uuid.as_deref(),
            )?,
            step_name: event.step_name,
            from_state: event.from_state,
            to_state: event.to_state,
            event: event.event,
            attempt: event.attempt,
            processor_id: event.processor_id,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use tasker_types::ids::{StepUuid, TaskUuid};

    use super::*;

    #[test]
    fn step_and_task_events_differ_by_the_step_fields() {
        let at = DateTime::from_timestamp(5, 0).unwrap();
        let task = TaskUuid::new();
        let step = StepUuid::new();
        let step_event = v1::TransitionEvent::from(TransitionEvent {
            task_uuid: task,
            workflow_step_uuid: Some(step),
            step_name: Some("fetch".into()),
            from_state: Some("enqueued".into()),
            to_state: "in_progress".into(),
            event: "start".into(),
            attempt: Some(1),
            processor_id: Some("worker-1".into()),
            created_at: at,
        });
        assert_eq!(step_event.task_uuid, task.to_string());
        assert_eq!(step_event.workflow_step_uuid, Some(step.to_string()));
        assert_eq!(step_event.step_name.as_deref(), Some("fetch"));
        assert_eq!(step_event.attempt, Some(1));
        assert_eq!(step_event.created_at, Some(timestamp(at)));

        let task_event = v1::TransitionEvent::from(TransitionEvent {
            task_uuid: task,
            workflow_step_uuid: None,
            step_name: None,
            from_state: Some("evaluating_results".into()),
            to_state: "complete".into(),
            event: "complete".into(),
            attempt: None,
            processor_id: None,
            created_at: at,
        });
        assert_eq!(
            (task_event.workflow_step_uuid, task_event.step_name),
            (None, None)
        );
        assert_eq!(task_event.to_state, "complete");
    }

    #[test]
    fn events_read_back_as_they_were_sent_and_bad_fields_are_named() {
        let sent = TransitionEvent {
            task_uuid: TaskUuid::new(),
            workflow_step_uuid: Some(StepUuid::new()),
            step_name: Some("fetch".into()),
            from_state: Some("enqueued".into()),
            to_state: "in_progress".into(),
            event: "start".into(),
            attempt: Some(2),
            processor_id: None,
            created_at: DateTime::from_timestamp(7, 500).unwrap(),
        };
        let wire = v1::TransitionEvent::from(sent.clone());
        assert_eq!(TransitionEvent::try_from(wire.clone()).unwrap(), sent);
        let bad = v1::TransitionEvent {
            task_uuid: "nope".into(),
            ..wire.clone()
        };
        assert_eq!(
            TransitionEvent::try_from(bad).unwrap_err(),
            "`task_uuid`: not a UUID"
        );
        let undated = v1::TransitionEvent {
            created_at: None,
            ..wire
        };
        assert!(
            TransitionEvent::try_from(undated)
                .unwrap_err()
                .contains("created_at")
        );
    }
}

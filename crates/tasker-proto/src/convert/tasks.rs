//! Tasks: the task view and list, and the create and list requests.

use serde_json::{Map, Value};
use tasker_types::api::{StepCounts, TaskList, TaskListQuery, TaskRequest, TaskView};

use super::json;
use super::names::{name_of, parse_optional_name, parse_optional_uuid};
use super::time::{optional_instant, optional_timestamp, timestamp};
use crate::v1;

impl From<StepCounts> for v1::StepCounts {
    fn from(counts: StepCounts) -> Self {
        Self {
            total: counts.total,
            pending: counts.pending,
            in_progress: counts.in_progress,
            complete: counts.complete,
            error: counts.error,
            cancelled: counts.cancelled,
        }
    }
}

impl From<TaskView> for v1::TaskView {
    fn from(view: TaskView) -> Self {
        Self {
            task_uuid: view.task_uuid.to_string(),
            namespace: view.namespace,
            name: view.name,
            version: view.version,
            state: view.state.as_str().to_owned(),
            execution_status: name_of(&view.execution_status),
            context_json: json::text(&view.context),
            correlation_id: view.correlation_id.to_string(),
            priority: view.priority,
            tags: view.tags,
            initiator: view.initiator,
            source_system: view.source_system,
            reason: view.reason,
            created_at: Some(timestamp(view.created_at)),
            updated_at: Some(timestamp(view.updated_at)),
            completed_at: optional_timestamp(view.completed_at),
            step_counts: Some(view.step_counts.into()),
            steps: view.steps.map(v1::StepList::from),
        }
    }
}

impl From<TaskList> for v1::TaskList {
    fn from(list: TaskList) -> Self {
        Self {
            tasks: list.tasks.into_iter().map(Into::into).collect(),
            next_cursor: list.next_cursor.map(|c| c.to_string()),
        }
    }
}

impl TryFrom<v1::CreateTaskRequest> for TaskRequest {
    type Error = String;

    fn try_from(request: v1::CreateTaskRequest) -> Result<Self, String> {
        // REST defaults an absent context to `{}`; an empty string is
        // proto3's "absent". Whether it must be an object is the service's
        // rule, not ours.
        let context = if request.context_json.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            json::parse("context_json", &request.context_json)?
        };
        Ok(Self {
            namespace: request.namespace,
            name: request.name,
            version: request.version,
            context,
            initiator: request.initiator,
            source_system: request.source_system,
            reason: request.reason,
            tags: request.tags,
            priority: request.priority,
            correlation_id: parse_optional_uuid(
                "correlation_id",
                request.correlation_id.as_deref(),
            )?,
            idempotency_key: request.idempotency_key,
        })
    }
}

impl From<TaskRequest> for v1::CreateTaskRequest {
    fn from(request: TaskRequest) -> Self {
        Self {
            namespace: request.namespace,
            name: request.name,
            version: request.version,
            context_json: json::text(&request.context),
            initiator: request.initiator,
            source_system: request.source_system,
            reason: request.reason,
            tags: request.tags,
            priority: request.priority,
            correlation_id: request.correlation_id.map(|c| c.to_string()),
            idempotency_key: request.idempotency_key,
        }
    }
}

impl TryFrom<v1::ListTasksRequest> for TaskListQuery {
    type Error = String;

    fn try_from(request: v1::ListTasksRequest) -> Result<Self, String> {
        Ok(Self {
            namespace: request.namespace,
            name: request.name,
            state: parse_optional_name("state", "task state", request.state.as_deref())?,
            since: optional_instant("since", request.since.as_ref())?,
            before: parse_optional_uuid("before", request.before.as_deref())?,
            limit: request.limit,
            include: request.include,
        })
    }
}

impl From<TaskListQuery> for v1::ListTasksRequest {
    fn from(query: TaskListQuery) -> Self {
        Self {
            namespace: query.namespace,
            name: query.name,
            state: query.state.map(|s| s.as_str().to_owned()),
            since: optional_timestamp(query.since),
            before: query.before.map(|b| b.to_string()),
            limit: query.limit,
            include: query.include,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use tasker_types::api::ExecutionStatus;
    use tasker_types::ids::{CorrelationId, TaskUuid};
    use tasker_types::state::TaskState;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 250_000).unwrap()
    }

    #[test]
    fn task_requests_round_trip() {
        let request = TaskRequest {
            version: Some("1.0.0".into()),
            initiator: Some("ops".into()),
            source_system: Some("billing".into()),
            reason: Some("month end".into()),
            tags: vec!["a".into(), "b".into()],
            priority: -3,
            correlation_id: Some(CorrelationId::new()),
            idempotency_key: Some("k-1".into()),
            ..TaskRequest::new("ns", "t", json!({"n": 18_446_744_073_709_551_615_u64}))
        };
        let message = v1::CreateTaskRequest::from(request.clone());
        assert_eq!(TaskRequest::try_from(message).unwrap(), request);
    }

    #[test]
    fn an_empty_context_is_an_empty_object_and_bad_fields_are_named() {
        let message = v1::CreateTaskRequest {
            namespace: "ns".into(),
            name: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            TaskRequest::try_from(message.clone()).unwrap().context,
            json!({})
        );
        let bad_json = v1::CreateTaskRequest {
            context_json: "{".into(),
            ..message.clone()
        };
        assert!(
            TaskRequest::try_from(bad_json)
                .unwrap_err()
                .starts_with("`context_json`: not JSON: ")
        );
        let bad_id = v1::CreateTaskRequest {
            correlation_id: Some("x".into()),
            ..message
        };
        assert_eq!(
            TaskRequest::try_from(bad_id).unwrap_err(),
            "`correlation_id`: not a UUID"
        );
    }

    #[test]
    fn list_queries_round_trip_and_refuse_unknown_states() {
        let query = TaskListQuery {
            namespace: Some("ns".into()),
            name: Some("t".into()),
            state: Some(TaskState::Complete),
            since: Some(at(1_767_225_600)),
            before: Some(TaskUuid::new()),
            limit: Some(10),
            include: Some("steps".into()),
        };
        let message = v1::ListTasksRequest::from(query.clone());
        assert_eq!(TaskListQuery::try_from(message).unwrap(), query);
        assert_eq!(
            TaskListQuery::try_from(v1::ListTasksRequest::default()).unwrap(),
            TaskListQuery::default()
        );
        let bad = v1::ListTasksRequest {
            state: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(
            TaskListQuery::try_from(bad).unwrap_err(),
            "`state`: unknown task state `x`"
        );
    }

    #[test]
    fn task_views_carry_every_field() {
        let view = TaskView {
            task_uuid: TaskUuid::new(),
            namespace: "ns".into(),
            name: "t".into(),
            version: "1.0.0".into(),
            state: TaskState::StepsInProcess,
            execution_status: ExecutionStatus::Processing,
            context: json!({"value": 6}),
            correlation_id: CorrelationId::new(),
            priority: 2,
            tags: vec!["x".into()],
            initiator: None,
            source_system: Some("cli".into()),
            reason: None,
            created_at: at(10),
            updated_at: at(20),
            completed_at: None,
            step_counts: StepCounts {
                total: 4,
                pending: 1,
                in_progress: 2,
                complete: 1,
                error: 0,
                cancelled: 0,
            },
            steps: None,
        };
        let message = v1::TaskView::from(view.clone());
        assert_eq!(message.task_uuid, view.task_uuid.to_string());
        assert_eq!(message.state, "steps_in_process");
        assert_eq!(message.execution_status, "processing");
        assert_eq!(
            json::parse("context_json", &message.context_json).unwrap(),
            view.context
        );
        assert_eq!(message.correlation_id, view.correlation_id.to_string());
        assert_eq!(message.created_at, Some(timestamp(view.created_at)));
        assert_eq!(message.completed_at, None);
        assert_eq!(message.step_counts.unwrap().in_progress, 2);
        assert_eq!(message.source_system.as_deref(), Some("cli"));
        // Absent steps stay absent; present but empty stays present.
        assert_eq!(message.steps, None);
        let with_steps = v1::TaskView::from(TaskView {
            steps: Some(Vec::new()),
            ..view
        });
        assert_eq!(with_steps.steps, Some(v1::StepList::default()));
    }
}

//! Request and response types shared by the REST API, the client, the CLI
//! and the engine (SPEC §8.1). Field names are snake_case and stable:
//! additions are fine, renames are breaking changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{CorrelationId, StepUuid, TaskUuid};
use crate::readiness::Readiness;
use crate::state::{StepState, TaskState};
use crate::template::StepType;

/// A request to run a template (`POST /v1/tasks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version; the highest registered one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The task's context, checked against the template's `input_schema`.
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: Value,
    /// Who asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Which system asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Higher runs first where there is a choice.
    #[serde(default)]
    pub priority: i32,
    /// A correlation id to reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// Identifies duplicate requests (SPEC §4.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl TaskRequest {
    /// A request for the highest version of `namespace/name` with `context`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            version: None,
            context,
            initiator: None,
            source_system: None,
            reason: None,
            tags: Vec::new(),
            priority: 0,
            correlation_id: None,
            idempotency_key: None,
        }
    }

    /// Checks what the types cannot express: text lengths, tags, and that
    /// `context` is an object. The message names the field and why.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("initiator", &self.initiator),
            ("source_system", &self.source_system),
            ("reason", &self.reason),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
                return Err(format!("`{field}` must be at most 255 characters"));
            }
        }
        if self.tags.len() > 32
            || self
                .tags
                .iter()
                .any(|t| t.is_empty() || t.chars().count() > 64)
        {
            return Err("`tags` takes at most 32 tags of 1 to 64 characters".into());
        }
        if !self.context.is_object() {
            return Err("`context` must be a JSON object".into());
        }
        Ok(())
    }
}

/// What a task is doing, in one word (SPEC §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Some steps can run now.
    HasReadySteps,
    /// Steps are queued or running.
    Processing,
    /// Nothing can run until something else changes.
    WaitingForDependencies,
    /// A step failed permanently.
    BlockedByFailures,
    /// Every step is done; the task is about to complete.
    AllComplete,
    /// Terminal: complete.
    Complete,
    /// Terminal: error.
    Error,
    /// Terminal: cancelled.
    Cancelled,
    /// Terminal: resolved by hand.
    ResolvedManually,
}

/// How many steps of a task are in each broad state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepCounts {
    /// All steps created so far.
    pub total: u32,
    /// Not started, or waiting for a retry.
    pub pending: u32,
    /// Queued, running, or with a result not yet applied.
    pub in_progress: u32,
    /// Complete or resolved by hand.
    pub complete: u32,
    /// Failed permanently.
    pub error: u32,
    /// Cancelled.
    pub cancelled: u32,
}

impl StepCounts {
    /// Counts `states`.
    pub fn of(states: impl IntoIterator<Item = StepState>) -> Self {
        let mut counts = StepCounts::default();
        for state in states {
            counts.total += 1;
            match state {
                StepState::Pending | StepState::WaitingForRetry => counts.pending += 1,
                s if s.is_in_flight() => counts.in_progress += 1,
                StepState::Complete | StepState::ResolvedManually => counts.complete += 1,
                StepState::Error => counts.error += 1,
                _ => counts.cancelled += 1,
            }
        }
        counts
    }
}

/// A task as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskView {
    /// The task.
    pub task_uuid: TaskUuid,
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Task state (SPEC §3).
    pub state: TaskState,
    /// What it is doing.
    pub execution_status: ExecutionStatus,
    /// The task's context.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: Value,
    /// Follows the task through logs and messages.
    pub correlation_id: CorrelationId,
    /// Priority.
    pub priority: i32,
    /// Labels.
    pub tags: Vec<String>,
    /// Who asked.
    pub initiator: Option<String>,
    /// Which system asked.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
    /// Steps by broad state.
    pub step_counts: StepCounts,
    /// The steps (on `GET /v1/tasks/{uuid}` or with `?include=steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

/// A step as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepView {
    /// The step.
    pub workflow_step_uuid: StepUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// Name in the task.
    pub name: String,
    /// The template step it was made from.
    pub template_step: String,
    /// Its role.
    pub step_type: StepType,
    /// The handler.
    pub callable: String,
    /// State (SPEC §3).
    pub state: StepState,
    /// Attempts so far.
    pub attempts: u32,
    /// The most it will get.
    pub max_attempts: u32,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Names of its parents in this task.
    pub dependencies: Vec<String>,
    /// Whether it may run now, and if not why.
    pub readiness: Readiness,
    /// Its result.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub results: Option<Value>,
    /// Its last failure.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_error: Option<Value>,
    /// Extra inputs: a batch worker's cursor, or inputs an operator edited.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub inputs: Option<Value>,
    /// A batch worker's last checkpoint (cursor, items processed, partial results).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub checkpoint: Option<Value>,
    /// When its retry is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When the running attempt's lease ends.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker running it.
    pub claimed_by: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What an operator does to a step (`PATCH …/workflow_steps/{step_uuid}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepActionKind {
    /// Run a failed step again, with a fresh attempt budget (optionally with
    /// edited `inputs`).
    ResetForRetry,
    /// Declare the step done without a result; dependents proceed.
    ResolveManually,
    /// Declare the step done with `result`, which dependents receive.
    CompleteManually,
}

impl StepActionKind {
    /// The action's name, as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepActionKind::ResetForRetry => "reset_for_retry",
            StepActionKind::ResolveManually => "resolve_manually",
            StepActionKind::CompleteManually => "complete_manually",
        }
    }
}

/// An operator's action on a step, audited with who and why (SPEC §4.10).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepActionRequest {
    /// What to do.
    pub action: StepActionKind,
    /// Who does it, when auth is off. With auth on, the authenticated
    /// subject is recorded as the actor and this is kept only as a note.
    #[serde(default)]
    pub actor: String,
    /// Why (recorded in the audit trail).
    pub reason: String,
    /// `reset_for_retry` only: inputs that replace the step's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub inputs: Option<Value>,
    /// `complete_manually` only (required there): the step's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
}

impl StepActionRequest {
    /// An action by `actor` for `reason`, with no inputs or result.
    pub fn new(
        action: StepActionKind,
        actor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            action,
            actor: actor.into(),
            reason: reason.into(),
            inputs: None,
            result: None,
        }
    }
}

/// Filters and paging of `GET /v1/tasks`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this template name.
    pub name: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks created at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub before: Option<TaskUuid>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `steps` to include each task's steps.
    pub include: Option<String>,
}

/// A page of tasks, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskList {
    /// The tasks.
    pub tasks: Vec<TaskView>,
    /// Pass as `before` to get the next (older) page; absent on the last.
    pub next_cursor: Option<TaskUuid>,
}

/// One attempt of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    /// Attempt number.
    pub attempt: u32,
    /// `success`, `failure` or `manual`.
    pub outcome: String,
    /// Whether its report was accepted (false for a superseded attempt).
    pub accepted: bool,
    /// Its result.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Its error.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub error: Option<Value>,
    /// The worker that ran it.
    pub worker_id: Option<String>,
    /// The operator who acted (manual outcomes).
    pub actor: Option<String>,
    /// Why (manual outcomes).
    pub reason: Option<String>,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub finished_at: DateTime<Utc>,
    /// Duration, when both ends are known.
    pub duration_ms: Option<i64>,
}

/// One recorded state change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransitionView {
    /// Before (absent for the first).
    pub from_state: Option<String>,
    /// After.
    pub to_state: String,
    /// The event.
    pub event: String,
    /// The attempt after the change (steps).
    pub attempt: Option<u32>,
    /// Who made it.
    pub processor_id: Option<String>,
    /// Details.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One state change of a watched task or of one of its steps, as
/// `WatchTask` delivers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransitionEvent {
    /// The task.
    pub task_uuid: TaskUuid,
    /// The step, for a step's change; absent for the task's own.
    pub workflow_step_uuid: Option<StepUuid>,
    /// The step's name, for a step's change.
    pub step_name: Option<String>,
    /// Before (absent for the first).
    pub from_state: Option<String>,
    /// After.
    pub to_state: String,
    /// The event.
    pub event: String,
    /// The step's attempt after the change (steps).
    pub attempt: Option<u32>,
    /// Who made it.
    pub processor_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A step's history (`GET …/workflow_steps/{step_uuid}/audit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepAudit {
    /// The step now.
    pub step: StepView,
    /// Every finished attempt.
    pub attempts: Vec<AttemptView>,
    /// Every state change.
    pub transitions: Vec<TransitionView>,
}

/// A registered template, in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSummary {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: Option<String>,
    /// Number of step definitions.
    pub step_count: usize,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// A registered template in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateDetail {
    /// Summary fields.
    #[serde(flatten)]
    pub summary: TemplateSummary,
    /// SHA-256 of the canonical template.
    pub content_hash: String,
    /// The template, defaults filled in.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub template: Value,
}

/// The outcome of registering a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateRegistration {
    /// `created`, or `unchanged` when identical content was registered already.
    pub status: String,
    /// The template.
    pub template: TemplateSummary,
}

/// One problem with a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateIssue {
    /// The step concerned.
    pub step: Option<String>,
    /// The field concerned.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The outcome of `POST /v1/templates/validate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationReport {
    /// Whether the template is valid.
    pub valid: bool,
    /// Every problem found (empty when valid).
    pub errors: Vec<TemplateIssue>,
    /// Its namespace, name, version and step count, when valid.
    pub template: Option<TemplateSummary>,
}

/// The body of every error response (SPEC §8.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `duplicate_task`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Structured context (a failing field, the existing task, …).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

/// Overall health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// Checks by name (only on `/health/ready` and `/health/detailed`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, HealthCheck>,
    /// Server version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// Queue depths (only on `/health/detailed`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, u64>,
}

/// One health check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCheck {
    /// `ok` or `failing`.
    pub status: String,
    /// Details when failing.
    pub message: Option<String>,
    /// How long the check took.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_counts_group_states_the_way_the_api_documents() {
        use StepState::*;
        let counts = StepCounts::of([
            Pending,
            WaitingForRetry,
            Enqueued,
            InProgress,
            Complete,
            ResolvedManually,
            Error,
            Cancelled,
        ]);
        assert_eq!(
            counts,
            StepCounts {
                total: 8,
                pending: 2,
                in_progress: 2,
                complete: 2,
                error: 1,
                cancelled: 1
            }
        );
    }

    #[test]
    fn task_requests_reject_unknown_fields_and_default_the_context() {
        let request: TaskRequest =
            serde_json::from_str(r#"{"namespace": "n", "name": "t"}"#).unwrap();
        assert_eq!(request.context, serde_json::json!({}));
        assert!(
            serde_json::from_str::<TaskRequest>(r#"{"namespace": "n", "name": "t", "contxt": {}}"#)
                .is_err()
        );
    }
}

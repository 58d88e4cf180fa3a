//! Builds the API's task and step views from rows (pure).

use std::collections::HashMap;

use chrono::Utc;
use tasker_db::task::TaskRow;
use tasker_db::workflow_step::StepRow;
use tasker_db::workflow_step_edge::Edge;
use tasker_types::api::{ExecutionStatus, StepCounts, StepView, TaskView};
use tasker_types::ids::StepUuid;
use tasker_types::readiness::{self, Readiness, ReadinessInput};
use tasker_types::state::{StepState, TaskState};

/// A task's view; `steps` are included when `with_steps`.
pub fn task_view(task: &TaskRow, steps: &[StepRow], edges: &[Edge], with_steps: bool) -> TaskView {
    let step_views: Vec<StepView> = steps.iter().map(|s| step_view(s, steps, edges)).collect();
    TaskView {
        task_uuid: task.task_uuid,
        namespace: task.namespace.clone(),
        name: task.name.clone(),
        version: task.version.clone(),
        state: task.state,
        execution_status: execution_status(task.state, &step_views),
        context: task.context.clone(),
        correlation_id: task.correlation_id,
        priority: task.priority,
        tags: task.tags.clone(),
        initiator: task.initiator.clone(),
        source_system: task.source_system.clone(),
        reason: task.reason.clone(),
        created_at: task.created_at,
        updated_at: task.updated_at,
        completed_at: task.completed_at,
        step_counts: StepCounts::of(steps.iter().map(|s| s.state)),
        steps: with_steps.then_some(step_views),
    }
}

/// A step's view, with its parents' names and its readiness now.
pub fn step_view(step: &StepRow, all: &[StepRow], edges: &[Edge]) -> StepView {
    let by_uuid: HashMap<StepUuid, &StepRow> =
        all.iter().map(|s| (s.workflow_step_uuid, s)).collect();
    let parents: Vec<&StepRow> = edges
        .iter()
        .filter(|e| e.to == step.workflow_step_uuid)
        .filter_map(|e| by_uuid.get(&e.from).copied())
        .collect();
    let readiness = readiness::evaluate(
        &ReadinessInput {
            state: step.state,
            attempts: step.attempts,
            max_attempts: step.retry.max_attempts,
            retryable: step.retry.retryable,
            next_retry_at: step.next_retry_at,
            parents_total: parents.len(),
            parents_satisfied: parents
                .iter()
                .filter(|p| p.state.satisfies_dependency())
                .count(),
        },
        Utc::now(),
    );
    let mut dependencies: Vec<String> = parents.iter().map(|p| p.name.clone()).collect();
    dependencies.sort();
    StepView {
        workflow_step_uuid: step.workflow_step_uuid,
        task_uuid: step.task_uuid,
        name: step.name.clone(),
        template_step: step.template_step.clone(),
        step_type: step.step_type,
        callable: step.callable.clone(),
        state: step.state,
        attempts: step.attempts,
        max_attempts: step.retry.max_attempts,
        retryable: step.retry.retryable,
        dependencies,
        readiness,
        results: step.results.clone(),
        last_error: step.last_error.clone(),
        inputs: step.inputs.clone(),
        checkpoint: step.checkpoint.clone(),
        next_retry_at: step.next_retry_at,
        lease_expires_at: step.lease_expires_at,
        claimed_by: step.claimed_by.clone(),
        created_at: step.created_at,
        updated_at: step.updated_at,
        completed_at: step.completed_at,
    }
}

/// What a task is doing, from its state and its steps' readiness.
pub fn execution_status(state: TaskState, steps: &[StepView]) -> ExecutionStatus {
    match state {
        TaskState::Complete => ExecutionStatus::Complete,
        TaskState::Error => ExecutionStatus::Error,
        TaskState::Cancelled => ExecutionStatus::Cancelled,
        TaskState::ResolvedManually => ExecutionStatus::ResolvedManually,
        _ if steps.iter().any(|s| s.state == StepState::Error) => {
            ExecutionStatus::BlockedByFailures
        }
        _ if steps.iter().all(|s| s.state.satisfies_dependency()) => ExecutionStatus::AllComplete,
        _ if steps.iter().any(|s| s.readiness == Readiness::Ready) => {
            ExecutionStatus::HasReadySteps
        }
        _ if steps.iter().any(|s| s.state.is_in_flight()) => ExecutionStatus::Processing,
        _ => ExecutionStatus::WaitingForDependencies,
    }
}

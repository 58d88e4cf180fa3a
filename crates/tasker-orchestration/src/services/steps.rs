//! Step operations: list, get, audit, and an operator's repairs.

use tasker_db::{result_audit, task, workflow_step, workflow_step_edge, workflow_step_transition};
use tasker_types::api::{AttemptView, StepActionRequest, StepAudit, StepView, TransitionView};
use tasker_types::ids::{StepUuid, TaskUuid};

use super::views::step_view;
use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::error::OrchestrationError;
use crate::services::error::ServiceError;

/// Every step of a task.
///
/// # Errors
/// Forbidden without `steps:read`; not found.
pub async fn list(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
) -> Result<Vec<StepView>, ServiceError> {
    principal.require(Permission::StepsRead)?;
    all(orchestrator, task).await
}

async fn all(orchestrator: &Orchestrator, task: TaskUuid) -> Result<Vec<StepView>, ServiceError> {
    let pool = orchestrator.pool();
    task::get(pool, task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    let steps = workflow_step::list_for_task(pool, task).await?;
    let edges = workflow_step_edge::list_for_task(pool, task).await?;
    Ok(steps.iter().map(|s| step_view(s, &steps, &edges)).collect())
}

/// One step of a task.
///
/// # Errors
/// Forbidden without `steps:read`; the task or step not found.
pub async fn get(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
    step: StepUuid,
) -> Result<StepView, ServiceError> {
    principal.require(Permission::StepsRead)?;
    one(orchestrator, task, step).await
}

async fn one(
    orchestrator: &Orchestrator,
    task: TaskUuid,
    step: StepUuid,
) -> Result<StepView, ServiceError> {
    all(orchestrator, task)
        .await?
        .into_iter()
        .find(|s| s.workflow_step_uuid == step)
        .ok_or_else(|| OrchestrationError::StepNotFound { task, step }.into())
}

/// A step's attempts and transitions.
///
/// # Errors
/// Forbidden without `steps:read`; the task or step not found.
pub async fn audit(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
    step: StepUuid,
) -> Result<StepAudit, ServiceError> {
    principal.require(Permission::StepsRead)?;
    let view = one(orchestrator, task, step).await?;
    let pool = orchestrator.pool();
    let attempts = result_audit::list_for_step(pool, step)
        .await?
        .into_iter()
        .map(|a| AttemptView {
            attempt: a.attempt,
            outcome: match a.outcome {
                result_audit::AuditOutcome::Success => "success",
                result_audit::AuditOutcome::Failure => "failure",
                result_audit::AuditOutcome::Manual => "manual",
            }
            .to_owned(),
            accepted: a.accepted,
            duration_ms: a.started_at.map(|s| (a.finished_at - s).num_milliseconds()),
            result: a.result,
            error: a.error,
            worker_id: a.worker_id,
            actor: a.actor,
            reason: a.reason,
            started_at: a.started_at,
            finished_at: a.finished_at,
        })
        .collect();
    let transitions = workflow_step_transition::list(pool, step)
        .await?
        .into_iter()
        .map(|t| TransitionView {
            from_state: t.from_state.map(|s| s.as_str().to_owned()),
            to_state: t.to_state.as_str().to_owned(),
            event: t.event,
            attempt: Some(t.attempt),
            processor_id: t.processor_id,
            metadata: t.metadata,
            created_at: t.created_at,
        })
        .collect();
    Ok(StepAudit {
        step: view,
        attempts,
        transitions,
    })
}

/// Applies an operator's action to a step (SPEC §4.10) and returns the step
/// as it now is. The actor recorded is the authenticated caller; the
/// request's `actor` counts only when auth is off (see [`Principal::actor`]).
///
/// # Errors
/// Forbidden without `steps:resolve`; the task or step not found; invalid
/// for a malformed request; conflict when the step's state does not allow
/// it or the task has finished.
pub async fn act(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
    step: StepUuid,
    request: &StepActionRequest,
) -> Result<StepView, ServiceError> {
    principal.require(Permission::StepsResolve)?;
    let actor = principal.actor(Some(&request.actor)).unwrap_or("");
    orchestrator
        .act_on_step_as(task, step, request, actor)
        .await?;
    one(orchestrator, task, step).await
}

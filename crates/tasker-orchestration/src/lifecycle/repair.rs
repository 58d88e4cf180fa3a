//! Operator repairs of a step (SPEC §4.10): reset it for another run
//! (optionally with new inputs), resolve it without a result, or complete
//! it with a result its dependents receive. Each is audited with who and
//! why, and the task resumes from there — all in one transaction that also
//! re-plans the task exactly as a step result would.

use serde_json::json;
use tasker_db::task::{self, TaskRow};
use tasker_types::api::{StepActionKind, StepActionRequest};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::TaskState;

use super::evaluate::{Input, Repair};
use super::task_operation::apply_to_task;
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// Longest `actor` and `reason` accepted.
const MAX_AUDIT_TEXT: usize = 1000;

/// Applies `request` to `step` of `task`. Returns the task as it now is.
pub(crate) async fn act_on_step(
    shared: &Shared,
    task_uuid: TaskUuid,
    step: StepUuid,
    request: &StepActionRequest,
    actor: &str,
) -> Result<TaskRow, OrchestrationError> {
    check(request, actor)?;
    let action = request.action;
    let mut metadata = json!({
        "action": action.as_str(),
        "actor": actor,
        "reason": request.reason,
    });
    // A name the caller typed that is not who they authenticated as is
    // kept, but only as a note: it never becomes the actor.
    let note = request.actor.trim();
    if !note.is_empty() && note != actor {
        metadata["actor_note"] = json!(note);
    }
    let ctx = shared.ctx().with_metadata(metadata);
    let repair = Repair {
        step,
        action,
        inputs: request.inputs.clone(),
        result: request.result.clone(),
        actor: actor.to_owned(),
        reason: request.reason.clone(),
    };
    // A failed task can be repaired (it reopens); another finished one cannot.
    let repairable = |state: TaskState| !state.is_terminal() || state == TaskState::Error;
    let input = Input::Repair(repair);
    let (_, report) = apply_to_task(shared, task_uuid, &ctx, &input, repairable).await?;
    metrics::counter!("tasker_operator_actions_total", "action" => action.as_str()).increment(1);
    tracing::info!(%task_uuid, step_uuid = %step, action = action.as_str(), actor = %actor,
        reason = %request.reason, enqueued = report.enqueued, "operator acted on a step");
    task::get(&shared.pool, task_uuid)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task_uuid))
}

/// Checks the fields each action takes.
fn check(request: &StepActionRequest, actor: &str) -> Result<(), OrchestrationError> {
    let bad = |m: &str| Err(OrchestrationError::BadRequest(m.to_owned()));
    if request.actor.chars().count() > MAX_AUDIT_TEXT {
        return bad(&format!(
            "`actor` must be at most {MAX_AUDIT_TEXT} characters"
        ));
    }
    for (field, value) in [("actor", actor), ("reason", request.reason.as_str())] {
        if value.trim().is_empty() {
            return bad(&format!(
                "`{field}` is required: every repair records who and why"
            ));
        }
        if value.chars().count() > MAX_AUDIT_TEXT {
            return bad(&format!(
                "`{field}` must be at most {MAX_AUDIT_TEXT} characters"
            ));
        }
    }
    match request.action {
        StepActionKind::CompleteManually if request.result.is_none() => {
            bad("`complete_manually` needs `result`: what the step's dependents receive")
        }
        StepActionKind::ResetForRetry | StepActionKind::ResolveManually
            if request.result.is_some() =>
        {
            bad("only `complete_manually` takes `result`")
        }
        StepActionKind::ResolveManually | StepActionKind::CompleteManually
            if request.inputs.is_some() =>
        {
            bad("only `reset_for_retry` takes `inputs`")
        }
        StepActionKind::ResetForRetry
            if request.inputs.as_ref().is_some_and(|i| !i.is_object()) =>
        {
            bad("`inputs` must be a JSON object")
        }
        _ => Ok(()),
    }
}

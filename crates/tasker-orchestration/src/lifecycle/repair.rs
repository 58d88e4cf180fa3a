//! Operator repairs of a step (SPEC §4.10): reset it for another run
//! (optionally with new inputs), resolve it without a result, or complete
//! it with a result its dependents receive. Each is audited with who and
//! why, and the task resumes from there — all in one transaction that also
//! re-plans the task exactly as a step result would.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::json;
use tasker_db::DbError;
use tasker_db::result_audit::{self, AuditEntry, AuditOutcome};
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_db::workflow_step_graph::{self, StepNode};
use tasker_types::api::{StepActionKind, StepActionRequest};
use tasker_types::expansion::outcome_for_manual_completion;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::{StepState, TaskEvent, TaskState};

use super::advance::advance;
use super::batch::Batch;
use super::expand;
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
    let mut tx = shared.pool.begin().await?;
    let mut locked = task::lock_many(&mut tx, &[task_uuid]).await?;
    let Some(mut task_row) = locked.pop() else {
        return Err(OrchestrationError::TaskNotFound(task_uuid));
    };
    if task_row.state.is_terminal() && task_row.state != TaskState::Error {
        return Err(OrchestrationError::AlreadyFinished {
            task: task_uuid,
            state: task_row.state,
        });
    }
    let mut graph: HashMap<StepUuid, StepNode> =
        workflow_step_graph::graph_for_tasks(&mut tx, &[task_uuid])
            .await?
            .into_iter()
            .map(|n| (n.workflow_step_uuid, n))
            .collect();
    let Some(node) = graph.get(&step).cloned() else {
        return Err(OrchestrationError::StepNotFound {
            task: task_uuid,
            step,
        });
    };
    let refused = |message: &str| OrchestrationError::StepActionRefused {
        step,
        action: action.as_str(),
        state: node.state,
        message: message.to_owned(),
    };
    let template = shared.template(task_row.named_task_uuid).await?;
    // A reset step gets its template's attempt budget again.
    let budget = template
        .step(&node.template_step)
        .map_or(node.retry.max_attempts, |d| d.retry.max_attempts)
        .max(1);
    let change = match action {
        StepActionKind::ResetForRetry => {
            if node.state != StepState::Error {
                return Err(refused("only a failed step (state `error`) can be reset"));
            }
            StepChange::reset_for_retry(step, request.inputs.clone(), budget)
        }
        StepActionKind::ResolveManually => {
            if node.state.is_terminal() && node.state != StepState::Error {
                return Err(refused("the step has already finished"));
            }
            StepChange::resolve_manually(step, node.state)
        }
        StepActionKind::CompleteManually => {
            if node.state.is_terminal() && node.state != StepState::Error {
                return Err(refused("the step has already finished"));
            }
            let result = request.result.clone().unwrap_or_default();
            StepChange::complete_manually(step, node.state, result)
        }
    };
    match workflow_step_change::apply_one(&mut tx, change, &ctx).await {
        Ok(_) => {}
        Err(DbError::TransitionConflict { .. }) => {
            return Err(refused(
                "the step changed while the action was applied; look again",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    result_audit::insert_many(
        &mut tx,
        &[AuditEntry {
            step_uuid: step,
            task_uuid,
            attempt: node.attempts,
            outcome: AuditOutcome::Manual,
            accepted: true,
            result: request.result.clone(),
            error: None,
            worker_id: None,
            actor: Some(actor.to_owned()),
            reason: Some(format!("{}: {}", action.as_str(), request.reason)),
            started_at: None,
            finished_at: Utc::now(),
        }],
    )
    .await?;
    if let Some(n) = graph.get_mut(&step) {
        n.state = match action {
            StepActionKind::ResetForRetry => StepState::Pending,
            StepActionKind::ResolveManually => StepState::ResolvedManually,
            StepActionKind::CompleteManually => StepState::Complete,
        };
        if action == StepActionKind::ResetForRetry {
            n.retry.max_attempts = n.attempts + budget;
        }
    }
    // A decision or batch finished by hand creates nothing, but what
    // converges after it still runs.
    if action != StepActionKind::ResetForRetry
        && let Some(control) = outcome_for_manual_completion(node.step_type)
    {
        let limits = shared.expansion_limits();
        if let Err(err) = expand::apply(
            &mut tx,
            &template,
            &mut graph,
            task_uuid,
            step,
            Some(&control),
            &limits,
            &ctx,
        )
        .await?
        {
            return Err(refused(&err.to_string()));
        }
    }
    if task_row.state == TaskState::Error {
        let state = task::transition(
            &mut tx,
            task_uuid,
            TaskState::Error,
            TaskEvent::Reopen,
            &ctx,
        )
        .await?;
        task_row = TaskRow { state, ..task_row };
    }
    let mut batch = Batch::new(shared, ctx);
    advance(&mut batch, &mut tx, std::slice::from_ref(&task_row), &graph).await?;
    let (staged, report) = batch.flush(&mut tx).await?;
    tx.commit().await?;
    shared.queue.commit_staged(staged).await?;
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

//! The one writer of evaluations: turns the [`Evaluation`]s of a batch of
//! tasks into set-based statements in the caller's transaction — new steps
//! and edges, then each wave of step changes as one statement, audit
//! records, every task's path as one statement (a cancel also told to the
//! workers) — and queues the pointers
//! that follow on the batch. Then it reports, counts and logs what was done.
//!
//! An evaluation is written whole or not at all: a change whose fence no
//! longer holds (a worker claimed a step that was to be cancelled, a
//! sweeper moved one) means the evaluation was made on a graph that is no
//! longer true, and the writer fails with [`DbError::TransitionConflict`]
//! so that the caller rolls back and evaluates again.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use tasker_db::DbError;
use tasker_db::result_audit;
use tasker_db::task::{self, TaskRow};
use tasker_db::workflow_step;
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_db::workflow_step_edge;
use tasker_types::ids::TaskUuid;
use tasker_types::messages::StepMessage;
use tasker_types::state::{TaskEvent, TaskState};

use super::batch::Batch;
use super::evaluate::{Evaluation, Outcome};
use super::outgoing::to_json;
use crate::error::OrchestrationError;

/// How many times a batch is evaluated again after a conflict before its
/// transaction gives up (each retry follows a concurrent change, so a
/// second conflict is already rare).
pub(crate) const MAX_EVALUATIONS: usize = 5;

/// Whether `err` means "evaluate again".
pub(crate) fn is_conflict(err: &OrchestrationError) -> bool {
    matches!(
        err,
        OrchestrationError::Db(DbError::TransitionConflict { .. })
    )
}

/// Runs `attempt` (one transaction: lock and load, evaluate, write,
/// commit) again while it ends in a conflict, at most
/// [`MAX_EVALUATIONS`] times in all.
pub(crate) async fn evaluating_again_on_conflict<T, F, Fut>(
    mut attempt: F,
) -> Result<T, OrchestrationError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OrchestrationError>>,
{
    let mut result = attempt().await;
    for _ in 1..MAX_EVALUATIONS {
        match &result {
            Err(err) if is_conflict(err) => {
                metrics::counter!("tasker_orchestration_conflicts_total").increment(1);
                result = attempt().await;
            }
            _ => break,
        }
    }
    result
}

/// Writes `evaluations` (one per task of `tasks`) in `conn`'s transaction
/// and queues their pointers on `batch`.
///
/// # Errors
/// [`DbError::TransitionConflict`] when a change's fence failed (roll back
/// and evaluate again); [`OrchestrationError`] on database failure.
pub(crate) async fn write(
    batch: &mut Batch<'_>,
    conn: &mut PgConnection,
    tasks: &[TaskRow],
    evaluations: &[Evaluation],
) -> Result<(), OrchestrationError> {
    let ctx = batch.ctx.clone();
    for ev in evaluations {
        let (born, steps, edges) = ev.graph.to_insert();
        if steps.is_empty() && edges.is_empty() {
            continue;
        }
        let task_uuid = ev.graph.task.task_uuid;
        workflow_step::insert_many_born(&mut *conn, task_uuid, steps, &born, &ctx).await?;
        workflow_step_edge::insert_many(&mut *conn, task_uuid, edges).await?;
    }
    let waves = evaluations
        .iter()
        .map(|ev| ev.waves.len())
        .max()
        .unwrap_or(0);
    for wave in 0..waves {
        let changes: Vec<StepChange> = evaluations
            .iter()
            .filter_map(|ev| ev.waves.get(wave))
            .flatten()
            .cloned()
            .collect();
        let written: HashSet<_> = workflow_step_change::apply(&mut *conn, &changes, &ctx)
            .await?
            .into_iter()
            .map(|changed| changed.step)
            .collect();
        if let Some(missed) = changes.iter().find(|c| !written.contains(&c.step)) {
            return Err(conflict(
                "step",
                missed.step.as_uuid(),
                missed.from.as_str(),
            ));
        }
    }
    let audit: Vec<_> = evaluations.iter().flat_map(|ev| ev.audit.clone()).collect();
    result_audit::insert_many(&mut *conn, &audit).await?;
    let paths: Vec<(TaskUuid, TaskState, Vec<_>)> = evaluations
        .iter()
        .filter(|ev| !ev.path.is_empty())
        .map(|ev| {
            (
                ev.graph.task.task_uuid,
                ev.graph.task.state,
                ev.path.clone(),
            )
        })
        .collect();
    let moved: HashMap<TaskUuid, TaskState> = task::transition_paths_many(&mut *conn, &paths, &ctx)
        .await?
        .into_iter()
        .collect();
    if let Some((task, from, _)) = paths.iter().find(|(t, ..)| !moved.contains_key(t)) {
        return Err(conflict("task", task.as_uuid(), from.as_str()));
    }
    // Workers running a cancelled task's handlers are told on commit.
    for (task, _, events) in &paths {
        if events.contains(&TaskEvent::Cancel) {
            task::announce_cancellation(&mut *conn, *task).await?;
        }
    }
    for ev in evaluations {
        queue_pointers(batch, ev)?;
    }
    report(batch, tasks, evaluations, &moved);
    Ok(())
}

fn conflict(entity: &'static str, uuid: uuid::Uuid, state: &'static str) -> OrchestrationError {
    DbError::TransitionConflict {
        entity,
        uuid,
        expected_state: state,
        expected_attempt: None,
    }
    .into()
}

/// Queues `ev`'s step pointers and retry reminders on `batch`.
pub(crate) fn queue_pointers(
    batch: &mut Batch<'_>,
    ev: &Evaluation,
) -> Result<(), OrchestrationError> {
    let task = ev.graph.task;
    for (queue, step) in &ev.sends {
        let pointer = StepMessage {
            task_uuid: task.task_uuid,
            step_uuid: *step,
            correlation_id: task.correlation_id,
            traceparent: task.traceparent,
        };
        batch.out.send(queue, to_json(&pointer)?);
    }
    for (pointer, due) in &ev.reminders {
        batch.retry_due(pointer, *due)?;
    }
    Ok(())
}

/// Counts what the written evaluations did, and says so in metrics and logs.
fn report(
    batch: &mut Batch<'_>,
    tasks: &[TaskRow],
    evaluations: &[Evaluation],
    moved: &HashMap<TaskUuid, TaskState>,
) {
    let now = batch.now;
    let report = &mut batch.report;
    for ev in evaluations {
        let task_uuid = ev.graph.task.task_uuid;
        report.enqueued += ev.sends.len();
        metrics::counter!("tasker_steps_enqueued_total").increment(ev.sends.len() as u64);
        for outcome in &ev.outcomes {
            let counted = match outcome {
                Outcome::Completed(_) => Some("complete"),
                Outcome::Refused { step, message } => {
                    tracing::warn!(%task_uuid, step_uuid = %step, error = %message,
                        "step outcome refused; the step failed permanently");
                    Some("refused")
                }
                Outcome::RetryScheduled {
                    step,
                    attempt,
                    delay,
                } => {
                    tracing::info!(%task_uuid, step_uuid = %step, attempt,
                        delay_ms = delay.as_millis() as u64, "step failed; retry scheduled");
                    Some("retry")
                }
                Outcome::Failed {
                    step,
                    reason,
                    unreadable,
                } => {
                    if let Some(error) = unreadable {
                        tracing::warn!(%task_uuid, step_uuid = %step, %error,
                            "a failure envelope could not be read; not retrying");
                    }
                    tracing::warn!(%task_uuid, step_uuid = %step, ?reason, "step failed permanently");
                    Some("error")
                }
                Outcome::Reminded(_) => {
                    report.applied += 1;
                    None
                }
                Outcome::Ignored { pointer, state } => {
                    tracing::debug!(%task_uuid, step_uuid = %pointer.step_uuid,
                        attempt = pointer.attempt, ?state,
                        "ignoring duplicate or stale orchestration message");
                    report.ignored += 1;
                    Some("ignored")
                }
                Outcome::Expanded {
                    name,
                    created,
                    edges,
                    ..
                } => {
                    tracing::info!(%task_uuid, step = %name, created, edges,
                        "outcome expanded the workflow");
                    report.created += created;
                    None
                }
                Outcome::Cancelled { steps } => {
                    report.cancelled += steps;
                    None
                }
                Outcome::Repaired { .. } => None,
            };
            if let Some(outcome) = counted {
                if outcome != "ignored" {
                    report.applied += 1;
                }
                metrics::counter!("tasker_step_results_total", "outcome" => outcome).increment(1);
            }
        }
    }
    for task_row in tasks {
        let Some(state) = moved.get(&task_row.task_uuid).filter(|s| s.is_terminal()) else {
            continue;
        };
        report.finalized += 1;
        let elapsed = (now - task_row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
        let labels = [
            ("namespace", task_row.namespace.clone()),
            ("template", task_row.name.clone()),
            ("state", state.as_str().to_owned()),
        ];
        metrics::counter!("tasker_tasks_finished_total", &labels).increment(1);
        metrics::histogram!("tasker_task_duration_seconds", &labels).record(elapsed);
        tracing::info!(task_uuid = %task_row.task_uuid, correlation_id = %task_row.correlation_id,
            to_state = %state, "task finished");
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;

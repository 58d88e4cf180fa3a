//! The staleness detector (SPEC §4.10): finds tasks that made no progress
//! for longer than their thresholds, and for each — after re-checking it
//! under its lock, so a task that moved in the meantime is left alone —
//! records one DLQ entry with a snapshot, fails its stuck steps with
//! `staleness_timeout` (a late result is then fenced out) and moves the task
//! to `error`, where an operator can repair it. One orchestrator sweeps at
//! a time: a sweep runs only while it holds a transaction-scoped advisory
//! lock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tasker_db::dlq::{self, NewDlqEntry};
use tasker_db::task::{self, TaskRow};
use tasker_db::task_staleness::{self, StaleTask, StaleThresholds};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_types::dlq::DlqReason;
use tasker_types::ids::TaskUuid;
use tasker_types::state::{StepState, TaskEvent, TaskState};
use tokio_util::sync::CancellationToken;

use crate::error::OrchestrationError;
use crate::shared::Shared;

/// An arbitrary, fixed advisory-lock key: whoever holds it sweeps.
const SWEEP_LOCK_KEY: i64 = 0x7461_736B_6572_0003;

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StalenessReport {
    /// Whether this orchestrator held the sweep lock (another one sweeps otherwise).
    pub leader: bool,
    /// Tasks found past a threshold.
    pub candidates: usize,
    /// Tasks moved to `error`, each with its DLQ entry.
    pub failed: Vec<TaskUuid>,
}

/// Sweeps every `check_interval` until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = shared.config.staleness.check_interval;
    super::every(&shared.breakers.database, interval, shutdown, || async {
        let swept = sweep(&shared, Utc::now()).await;
        shared.breakers.database.record(&swept);
        match swept {
            Ok(report) if !report.failed.is_empty() => {
                tracing::warn!(stale = report.failed.len(), "stale tasks sent to the DLQ");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "staleness sweep failed"),
        }
    })
    .await;
}

fn thresholds(shared: &Shared) -> StaleThresholds {
    let c = &shared.config.staleness;
    StaleThresholds {
        waiting_for_dependencies: c.max_waiting_for_dependencies_minutes,
        waiting_for_retry: c.max_waiting_for_retry_minutes,
        steps_in_process: c.max_steps_in_process_minutes,
        max_duration: c.max_duration_minutes,
    }
}

/// One sweep at instant `now` (tests pass a future instant instead of waiting).
pub(crate) async fn sweep(
    shared: &Shared,
    now: DateTime<Utc>,
) -> Result<StalenessReport, OrchestrationError> {
    let mut report = StalenessReport::default();
    // Held until this transaction ends, i.e. for the whole sweep.
    let mut leader = shared.pool.begin().await?;
    if !super::lead(&mut leader, SWEEP_LOCK_KEY).await? {
        return Ok(report);
    }
    report.leader = true;
    let limits = thresholds(shared);
    let limit = u32::try_from(shared.config.staleness.batch_size.get()).unwrap_or(u32::MAX);
    let candidates = task_staleness::find(&shared.pool, &limits, now, None, limit).await?;
    report.candidates = candidates.len();
    for candidate in candidates {
        match act(shared, &limits, candidate.task_uuid, now).await {
            Ok(true) => report.failed.push(candidate.task_uuid),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(task_uuid = %candidate.task_uuid, error = %err, "acting on a stale task failed");
            }
        }
    }
    leader.commit().await?;
    Ok(report)
}

/// Re-checks `task` under its lock and, if it is still stale, sends it to
/// the DLQ. Returns whether it acted.
async fn act(
    shared: &Shared,
    limits: &StaleThresholds,
    task_uuid: TaskUuid,
    now: DateTime<Utc>,
) -> Result<bool, OrchestrationError> {
    let mut tx = shared.pool.begin().await?;
    // A task a result writer holds is making progress: leave it.
    let Some(task_row) = task::lock_if_free(&mut tx, task_uuid).await? else {
        return Ok(false);
    };
    let Some(stale) = task_staleness::find(&mut *tx, limits, now, Some(task_uuid), 1)
        .await?
        .pop()
    else {
        return Ok(false);
    };
    let steps = workflow_step::list_for_task(&mut *tx, task_uuid).await?;
    let stuck: Vec<&StepRow> = steps
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                StepState::Enqueued | StepState::InProgress | StepState::WaitingForRetry
            )
        })
        .collect();
    let reason = if !stuck.is_empty() && stuck.iter().all(|s| s.state == StepState::Enqueued) {
        DlqReason::WorkerUnavailable
    } else {
        DlqReason::StalenessTimeout
    };
    let idle_minutes = (now - stale.last_activity).num_minutes();
    let message = if stale.too_old(now) {
        format!(
            "the task is older than its limit of {} minutes",
            stale.duration_minutes
        )
    } else {
        format!(
            "no progress for {idle_minutes} minutes in `{}` (limit {} minutes)",
            stale.state, stale.state_minutes
        )
    };
    let entry = NewDlqEntry {
        task_uuid,
        reason,
        original_state: task_row.state.as_str().to_owned(),
        snapshot: snapshot(&task_row, &steps, &stale, now, &message),
    };
    let Some(entry_uuid) = dlq::insert_open(&mut tx, &entry).await? else {
        // Already under investigation: do not fail it again behind the operator's back.
        return Ok(false);
    };
    let ctx = shared.ctx().with_metadata(json!({
        "reason": reason.as_str(),
        "dlq_entry_uuid": entry_uuid,
        "detail": message,
    }));
    // A step that moved since it was read is left as it is.
    let expiries: Vec<StepChange> = stuck
        .iter()
        .map(|s| StepChange::expire(s.workflow_step_uuid, s.state, &message))
        .collect();
    workflow_step_change::apply(&mut tx, &expiries, &ctx).await?;
    let path: &[TaskEvent] = match task_row.state {
        TaskState::BlockedByFailures => &[TaskEvent::Fail],
        _ => &[TaskEvent::EvaluateResults, TaskEvent::Fail],
    };
    task::transition_path(&mut tx, task_uuid, task_row.state, path, &ctx).await?;
    tx.commit().await?;
    metrics::counter!("tasker_stale_tasks_total", "reason" => reason.as_str()).increment(1);
    tracing::warn!(%task_uuid, correlation_id = %task_row.correlation_id, reason = reason.as_str(),
        %entry_uuid, detail = %message, "stale task sent to the DLQ");
    Ok(true)
}

fn snapshot(
    task_row: &TaskRow,
    steps: &[StepRow],
    stale: &StaleTask,
    now: DateTime<Utc>,
    message: &str,
) -> Value {
    json!({
        "detected_at": now,
        "detail": message,
        "last_activity": stale.last_activity,
        "threshold_minutes": if stale.too_old(now) { stale.duration_minutes } else { stale.state_minutes },
        "task": {
            "task_uuid": task_row.task_uuid,
            "namespace": task_row.namespace,
            "name": task_row.name,
            "version": task_row.version,
            "state": task_row.state,
            "context": task_row.context,
            "correlation_id": task_row.correlation_id,
            "created_at": task_row.created_at,
        },
        "steps": steps.iter().map(|s| json!({
            "workflow_step_uuid": s.workflow_step_uuid,
            "name": s.name,
            "state": s.state,
            "attempts": s.attempts,
            "max_attempts": s.retry.max_attempts,
            "claimed_by": s.claimed_by,
            "lease_expires_at": s.lease_expires_at,
            "next_retry_at": s.next_retry_at,
            "last_error": s.last_error,
            "updated_at": s.updated_at,
        })).collect::<Vec<_>>(),
    })
}

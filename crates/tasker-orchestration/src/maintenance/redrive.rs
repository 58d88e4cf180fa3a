//! The re-drive sweep (ADR 010): re-sends the pointer of every step that
//! has waited longer than `redrive.after` for the message that should move
//! it — `enqueued` and unclaimed, awaiting orchestration, `in_progress`
//! past its lease, `waiting_for_retry` past due — so that a pointer lost
//! with a broker, deleted by hand, or never sent (a process died between
//! its commit and a staged send) cannot strand a step. Steps are stamped
//! in the transaction that sends their pointers, so a step is re-driven at
//! most once per `after`, and a rolled-back sweep sends nothing. One
//! orchestrator sweeps at a time (transaction-scoped advisory lock).
//!
//! The leader also relays outbox rows older than `redrive.outbox_after`:
//! sends a process committed but died before making (ADR 011). They are
//! relayed long before their steps would count as lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tasker_db::step_redrive::{self, DueStep, RedriveKind};
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tokio_util::sync::CancellationToken;

use crate::error::OrchestrationError;
use crate::lifecycle::outgoing::{Outgoing, to_json};
use crate::shared::Shared;

/// An arbitrary, fixed advisory-lock key: whoever holds it re-drives.
const SWEEP_LOCK_KEY: i64 = 0x7461_736B_6572_0004;

/// What one sweep re-drove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Whether this orchestrator held the sweep lock (another one sweeps otherwise).
    pub leader: bool,
    /// Steps re-driven, by kind (`dispatch`, `lease_expired`, `result`, `retry`).
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Outbox rows relayed (left behind by processes that died).
    pub outbox_relayed: usize,
}

impl RedriveReport {
    /// Steps re-driven in all.
    pub fn total(&self) -> usize {
        self.by_kind.values().sum()
    }
}

/// Sweeps every `check_interval` until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = shared.config.redrive.check_interval;
    super::every(&shared.breakers.database, interval, shutdown, || async {
        let swept = sweep(&shared, Utc::now()).await;
        shared.breakers.database.record(&swept);
        match swept {
            Ok(report) if report.total() > 0 || report.outbox_relayed > 0 => {
                tracing::warn!(redriven = ?report.by_kind, outbox_relayed = report.outbox_relayed,
                    "re-sent lost step pointers");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "re-drive sweep failed"),
        }
    })
    .await;
}

/// One sweep at instant `now` (tests pass a future instant instead of waiting).
pub(crate) async fn sweep(
    shared: &Shared,
    now: DateTime<Utc>,
) -> Result<RedriveReport, OrchestrationError> {
    let mut report = RedriveReport::default();
    let mut tx = shared.pool.begin().await?;
    if !super::lead(&mut tx, SWEEP_LOCK_KEY).await? {
        return Ok(report);
    }
    report.leader = true;
    let config = shared.config.redrive;
    let after = TimeDelta::from_std(config.after).unwrap_or(TimeDelta::MAX);
    let limit = u32::try_from(config.batch_size.get()).unwrap_or(u32::MAX);
    let due = step_redrive::mark_due(&mut tx, now, after, limit).await?;
    let mut out = Outgoing::default();
    for step in &due {
        let (queue, message) = pointer(shared, step).await?;
        out.send(&queue, message);
        *report.by_kind.entry(step.kind.as_str()).or_default() += 1;
    }
    let staged = out.flush(shared.queue.as_ref(), &mut tx).await?;
    tx.commit().await?;
    tasker_messaging::settle_after_commit(shared.queue.as_ref(), staged).await;
    for (kind, count) in &report.by_kind {
        metrics::counter!("tasker_redriven_steps_total", "kind" => *kind).increment(*count as u64);
    }
    report.outbox_relayed = tasker_messaging::relay_outbox(
        shared.queue.as_ref(),
        &shared.pool,
        config.outbox_after,
        config.batch_size.get(),
    )
    .await?;
    metrics::counter!("tasker_outbox_relayed_total").increment(report.outbox_relayed as u64);
    Ok(report)
}

/// The queue and message `step` is waiting for.
async fn pointer(
    shared: &Shared,
    step: &DueStep,
) -> Result<(QueueName, serde_json::Value), OrchestrationError> {
    let attempt = StepAttempt {
        task_uuid: step.task_uuid,
        step_uuid: step.step_uuid,
        attempt: step.attempt,
        correlation_id: step.correlation_id,
        traceparent: step.traceparent,
    };
    Ok(match step.kind {
        RedriveKind::Dispatch | RedriveKind::LeaseExpired => {
            let template = shared.template(step.named_task_uuid).await?;
            let queue = template
                .step_queue(&step.template_step)
                .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
            let message = StepMessage {
                task_uuid: step.task_uuid,
                step_uuid: step.step_uuid,
                correlation_id: step.correlation_id,
                traceparent: step.traceparent,
            };
            (queue, to_json(&message)?)
        }
        RedriveKind::Result => (
            QueueName::step_results(),
            to_json(&OrchestrationMessage::StepResult(attempt))?,
        ),
        RedriveKind::Retry => (
            QueueName::step_results(),
            to_json(&OrchestrationMessage::RetryDue(attempt))?,
        ),
    })
}

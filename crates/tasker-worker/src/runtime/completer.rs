//! Writes finished attempts in batches: one transaction stores each result
//! (fenced by its attempt), records the audit row, sends the result pointer
//! to orchestration, and sends the attempt's durable domain events; after
//! the commit its fast events go to in-process subscribers. A stale
//! attempt's result is rejected, and its events with it.

use std::sync::Arc;
use std::time::Duration;

use std::collections::{BTreeMap, HashSet};

use tasker_db::DbError;
use tasker_db::result_audit::{self, AuditEntry, AuditOutcome};
use tasker_db::workflow_step_change::{self, Changed, StepChange};
use tasker_messaging::QueueTx;
use tasker_types::breaker::Outage;
use tasker_types::ids::StepUuid;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt};
use tasker_types::outcome::StepOutcome;
use tasker_types::reconnect::ReconnectBackoff;
use tokio::sync::mpsc;

use super::event_plan::PlannedEvent;
use super::executor::Completion;
use super::shared::WorkerShared;
use crate::error::WorkerError;
use crate::events::EventCounters;

/// Attempts at writing one batch that fails for a reason other than an
/// outage, before its steps are left to lease expiry.
const WRITE_TRIES: u32 = 5;

/// While PostgreSQL does not answer, a batch is retried for this many
/// leases: a result written late is still accepted while its attempt is
/// current (nobody re-claims while the database is down), so a restart
/// costs no handler a second run; later, fencing rejects it.
const OUTAGE_PATIENCE_LEASES: u32 = 4;

/// Runs until every sender is gone, writing what arrives.
pub(crate) async fn run(shared: Arc<WorkerShared>, mut receiver: mpsc::Receiver<Completion>) {
    let config = &shared.config.worker;
    let max = config.completion_batch_size.get();
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        // Take what is already waiting — outcomes that finish while a batch
        // is being written form the next one, so batches grow with load and
        // a lone outcome is written at once. A flush interval above zero
        // additionally waits that long for companions.
        let deadline = tokio::time::Instant::now() + config.completion_flush_interval;
        while batch.len() < max {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty)
                    if config.completion_flush_interval.is_zero() =>
                {
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(next)) => batch.push(next),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        // `step.complete` lasts from the batch's start to its commit.
        let completing: Vec<tracing::Span> = batch
            .iter()
            .map(
                |c| tracing::info_span!(parent: &c.span, "step.complete", batch_size = batch.len()),
            )
            .collect();
        let accepted = write_with_retries(&shared, &batch).await;
        drop(completing);
        report(&batch, accepted.as_deref());
        for completion in &batch {
            shared.in_flight.remove(completion.step, completion.attempt);
        }
    }
}

/// Metrics for a written batch (`accepted` is `None` when it was not
/// written at all).
fn report(batch: &[Completion], accepted: Option<&[bool]>) {
    let Some(accepted) = accepted else { return };
    for (c, taken) in batch.iter().zip(accepted) {
        if !taken {
            metrics::counter!("tasker_worker_stale_results_total").increment(1);
            continue;
        }
        let outcome = match c.outcome {
            StepOutcome::Success { .. } => "success",
            StepOutcome::Failure { .. } => "failure",
        };
        let seconds = c.claimed_at.elapsed().as_secs_f64();
        metrics::histogram!("tasker_step_duration_seconds", "namespace" => c.namespace.clone(),
            "template" => c.template.clone(), "outcome" => outcome)
        .record(seconds);
    }
}

/// Writes `batch`, retrying through outages; `None` when it gave up.
async fn write_with_retries(shared: &WorkerShared, batch: &[Completion]) -> Option<Vec<bool>> {
    let patience = shared.config.worker.lease * OUTAGE_PATIENCE_LEASES;
    let started = tokio::time::Instant::now();
    let mut backoff = ReconnectBackoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut failures = 0;
    let breaker = &shared.breakers.database;
    loop {
        // While the breaker is open PostgreSQL is known to be down: hold
        // the results (the bounded completion channel holds the executors
        // back) until its probe closes it.
        if let Err(wait) = breaker.admit() {
            if started.elapsed() >= patience {
                break;
            }
            tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
            continue;
        }
        let written = write(shared, batch).await;
        breaker.record(&written);
        let err = match written {
            Ok(accepted) => return Some(accepted),
            Err(err) => err,
        };
        let outage = err.is_outage();
        failures += u32::from(!outage);
        if (outage && started.elapsed() >= patience) || failures >= WRITE_TRIES {
            tracing::error!(error = %err, batch_size = batch.len(), "giving up on writing step results");
            break;
        }
        let delay = backoff.next_delay();
        tracing::warn!(error = %err, batch_size = batch.len(), outage,
            retry_in_ms = delay.as_millis() as u64, "writing step results failed; retrying");
        tokio::time::sleep(delay).await;
    }
    tracing::error!(
        batch_size = batch.len(),
        "step results not written; their leases will expire and the steps run again"
    );
    None
}

/// Writes `batch` in one transaction; returns which completions were
/// accepted.
async fn write(shared: &WorkerShared, batch: &[Completion]) -> Result<Vec<bool>, WorkerError> {
    let ctx = shared.ctx();
    let corrupt = |e: serde_json::Error| WorkerError::Db(DbError::Corrupt(e.to_string()));
    let mut changes = Vec::with_capacity(batch.len());
    let mut recorded = Vec::with_capacity(batch.len());
    for c in batch {
        match &c.outcome {
            StepOutcome::Success { result, control } => {
                changes.push(StepChange::record_success(
                    c.step,
                    c.attempt,
                    result.clone(),
                    control.clone(),
                ));
                recorded.push((AuditOutcome::Success, Some(result.clone()), None));
            }
            StepOutcome::Failure { error } => {
                changes.push(StepChange::record_failure(c.step, c.attempt, error.clone()));
                recorded.push((AuditOutcome::Failure, None, Some(error.to_stored())));
            }
        }
    }
    let unavailable = ensure_event_queues(shared, batch).await;
    let mut tx = shared.pool.begin().await?;
    let applied = workflow_step_change::apply(&mut tx, &changes, &ctx).await?;
    let accepted = acceptance(batch, &applied);
    let mut pointers = Vec::with_capacity(batch.len());
    let mut audit = Vec::with_capacity(batch.len());
    for ((c, (outcome, result, error)), taken) in batch.iter().zip(recorded).zip(&accepted) {
        let taken = *taken;
        if taken {
            let pointer = OrchestrationMessage::StepResult(StepAttempt {
                task_uuid: c.task,
                step_uuid: c.step,
                attempt: c.attempt,
                correlation_id: c.correlation_id,
                // Orchestration's `step.result` span continues this step's.
                traceparent: tasker_telemetry::propagation::traceparent(&c.span),
            });
            pointers.push(serde_json::to_value(pointer).map_err(corrupt)?);
        } else {
            tracing::warn!(task_uuid = %c.task, step_uuid = %c.step, attempt = c.attempt,
                "result rejected: this attempt is no longer current (lease re-claimed or task cancelled)");
        }
        audit.push(AuditEntry {
            step_uuid: c.step,
            task_uuid: c.task,
            attempt: c.attempt,
            outcome,
            accepted: taken,
            result,
            error,
            worker_id: Some(shared.worker_id.clone()),
            actor: None,
            reason: None,
            started_at: Some(c.started_at),
            finished_at: c.finished_at,
        });
    }
    result_audit::insert_many(&mut tx, &audit).await?;
    let mut unit = QueueTx::join(&mut tx);
    if !pointers.is_empty() {
        shared
            .queue
            .send_many(
                &mut unit,
                &QueueName::step_results(),
                &pointers,
                Duration::ZERO,
            )
            .await?;
    }
    let published = events_of_accepted(batch, &accepted);
    let mut durable: BTreeMap<&QueueName, Vec<serde_json::Value>> = BTreeMap::new();
    let mut dropped = 0;
    for planned in published.iter().filter(|p| p.durable) {
        if unavailable.contains(&planned.queue) {
            dropped += 1;
            continue;
        }
        durable
            .entry(&planned.queue)
            .or_default()
            .push(serde_json::to_value(&planned.event).map_err(corrupt)?);
    }
    for (queue, events) in &durable {
        shared
            .queue
            .send_many(&mut unit, queue, events, Duration::ZERO)
            .await?;
    }
    let staged = unit.into_staged();
    tx.commit().await?;
    tasker_messaging::settle_after_commit(shared.queue.as_ref(), staged).await;
    let counters = &shared.events.counters;
    EventCounters::add(
        &counters.published_durable,
        durable.values().map(Vec::len).sum(),
    );
    EventCounters::add(&counters.dropped_unavailable, dropped);
    for planned in published.into_iter().filter(|p| p.fast) {
        shared.events.publish(planned.event.clone());
    }
    tracing::debug!(batch_size = batch.len(), "step results written");
    Ok(accepted)
}

/// For each completion of `batch`, whether its change is among `applied`.
/// By step *and* attempt: a batch may hold a stale attempt's outcome beside
/// the current one's for the same step (outcomes that queued while a write
/// waited out an outage, the lease ran out and the step was re-claimed),
/// and only the attempt that was applied is accepted.
fn acceptance(batch: &[Completion], applied: &[Changed]) -> Vec<bool> {
    let applied: HashSet<(StepUuid, u32)> = applied.iter().map(|c| (c.step, c.attempt)).collect();
    batch
        .iter()
        .map(|c| applied.contains(&(c.step, c.attempt)))
        .collect()
}

/// The planned events of the attempts whose results were accepted, in
/// batch order.
fn events_of_accepted<'b>(batch: &'b [Completion], accepted: &[bool]) -> Vec<&'b PlannedEvent> {
    batch
        .iter()
        .zip(accepted)
        .filter(|(_, taken)| **taken)
        .flat_map(|(c, _)| &c.events)
        .collect()
}

/// Makes sure every durable event queue the batch needs exists, outside
/// the result transaction. Returns those that could not be created: their
/// events are dropped (and counted), never the results.
async fn ensure_event_queues(shared: &WorkerShared, batch: &[Completion]) -> HashSet<QueueName> {
    let needed: HashSet<&QueueName> = batch
        .iter()
        .flat_map(|c| &c.events)
        .filter(|p| p.durable)
        .map(|p| &p.queue)
        .collect();
    let mut unavailable = HashSet::new();
    for queue in needed {
        let known = shared
            .event_queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(queue);
        if known {
            continue;
        }
        match shared.queue.ensure_queue(queue).await {
            Ok(()) => {
                shared
                    .event_queues
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(queue.clone());
            }
            Err(err) => {
                tracing::warn!(queue = %queue, error = %err, "cannot create the domain event queue; its events are dropped");
                unavailable.insert(queue.clone());
            }
        }
    }
    unavailable
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use tasker_types::ids::{CorrelationId, TaskUuid};
    use tasker_types::state::StepState;

    use super::*;

    fn completion(step: StepUuid, attempt: u32) -> Completion {
        Completion {
            step,
            task: TaskUuid::new(),
            correlation_id: CorrelationId::new(),
            attempt,
            outcome: StepOutcome::Success {
                result: json!({}),
                control: None,
            },
            started_at: Utc::now(),
            finished_at: Utc::now(),
            events: Vec::new(),
            span: tracing::Span::none(),
            namespace: "ns".into(),
            template: "t".into(),
            claimed_at: std::time::Instant::now(),
        }
    }

    #[test]
    fn a_stale_attempt_beside_the_current_one_in_a_batch_is_not_accepted() {
        let (step, other) = (StepUuid::new(), StepUuid::new());
        let batch = [
            completion(step, 1),
            completion(step, 2),
            completion(other, 1),
        ];
        let applied = [Changed {
            step,
            task: batch[1].task,
            state: StepState::EnqueuedForOrchestration,
            attempt: 2,
            lease_expires_at: None,
        }];
        assert_eq!(acceptance(&batch, &applied), [false, true, false]);
    }
}

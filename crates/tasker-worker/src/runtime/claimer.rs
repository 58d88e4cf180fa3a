//! Claims a batch of steps in one transaction: take the messages (they are
//! gone when the claim commits, and back at once if it rolls back), claim
//! every step still `enqueued` with one compare-and-set statement, re-claim
//! steps whose worker died, fail those whose worker died on the last
//! attempt, and load every claimed step's context — then commit, so the
//! handlers run on claims that are durable.
//!
//! The message is acknowledged at claim time because the database lease is
//! the real lease: if this worker dies mid-step, its lease runs out and the
//! re-drive sweep sends the step's pointer again (ADR 010). Messages that
//! need no run (duplicates, finished, cancelled or live-leased steps) are
//! simply consumed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use tasker_db::DbError;
use tasker_db::execution_context::{self, ExecutionContext};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_messaging::QueueTx;
use tasker_types::ids::StepUuid;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tasker_types::state::StepState;

use super::shared::WorkerShared;
use crate::error::WorkerError;

/// A step this worker now holds, ready to run.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) attempt: u32,
    pub(crate) context: ExecutionContext,
    /// `step.run`: opened when the claim began, in the trace the step's
    /// pointer carried; closed by the completer once the result is stored.
    pub(crate) span: tracing::Span,
    /// When the claim committed (`tasker_step_duration_seconds` starts here).
    pub(crate) claimed_at: std::time::Instant,
}

/// Claims up to `max` steps from `queue`.
pub(crate) async fn claim_batch(
    shared: &WorkerShared,
    queue: &QueueName,
    max: usize,
) -> Result<Vec<Claimed>, WorkerError> {
    let ctx = shared.ctx();
    let lease = shared.config.worker.lease;
    let mut tx = shared.pool.begin().await?;
    let (messages, taking) = {
        let mut unit = QueueTx::join(&mut tx);
        let taken = shared.queue.take_in(&mut unit, queue, max, lease).await?;
        (taken, unit.into_staged())
    };
    if messages.is_empty() {
        tx.commit().await?;
        tasker_messaging::settle_after_commit(shared.queue.as_ref(), taking).await;
        return Ok(Vec::new());
    }

    // Two messages for one step in one batch: one is enough.
    let mut first_message: HashMap<StepUuid, StepMessage> = HashMap::new();
    for message in &messages {
        match serde_json::from_value::<StepMessage>(message.payload.clone()) {
            Ok(pointer) => {
                first_message.entry(pointer.step_uuid).or_insert(pointer);
            }
            Err(err) => {
                tracing::warn!(receipt = %message.receipt, error = %err, "dropping unreadable step message");
            }
        }
    }
    // One `step.run` span per step, joining the trace its pointer carries,
    // with a `step.claim` child that lasts until the claim commits.
    let mut runs: HashMap<StepUuid, tracing::Span> = HashMap::with_capacity(first_message.len());
    let mut claiming = Vec::with_capacity(first_message.len());
    for (step, pointer) in &first_message {
        let run = tracing::info_span!("step.run", task_uuid = %pointer.task_uuid,
            step_uuid = %step, correlation_id = %pointer.correlation_id,
            step_name = tracing::field::Empty, namespace = tracing::field::Empty,
            attempt = tracing::field::Empty, claimed = tracing::field::Empty);
        tasker_telemetry::propagation::continue_trace(&run, pointer.traceparent);
        claiming.push(tracing::info_span!(parent: &run, "step.claim", %queue));
        runs.insert(*step, run);
    }
    let claims: Vec<StepChange> = first_message
        .keys()
        .map(|step| StepChange::claim(*step, &shared.worker_id, lease))
        .collect();
    let mut claimed: Vec<StepRow> =
        workflow_step_change::apply_returning_rows(&mut tx, &claims, &ctx).await?;
    let claimed_now: HashSet<StepUuid> = claimed.iter().map(|s| s.workflow_step_uuid).collect();

    let mut results: Vec<StepAttempt> = Vec::new();
    for (step, pointer) in &first_message {
        if claimed_now.contains(step) {
            continue;
        }
        match settle(shared, &mut tx, *step, pointer).await? {
            Leftover::Run(row) => claimed.push(*row),
            Leftover::Failed(attempt) => results.push(attempt),
            Leftover::Nothing => {}
        }
    }

    let contexts = execution_context::load_many(&mut tx, claimed).await?;
    {
        let mut unit = QueueTx::join(&mut tx);
        if !results.is_empty() {
            let pointers = results
                .into_iter()
                .map(|a| serde_json::to_value(OrchestrationMessage::StepResult(a)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| WorkerError::Db(DbError::Corrupt(e.to_string())))?;
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
        let staged = unit.into_staged();
        tx.commit().await?;
        tasker_messaging::settle_after_commit(shared.queue.as_ref(), taking.and(staged)).await;
    }
    drop(claiming);
    let claimed_at = std::time::Instant::now();
    let conflicts = first_message.len().saturating_sub(contexts.len());
    metrics::counter!("tasker_worker_claim_conflicts_total").increment(conflicts as u64);
    let claimed: Vec<Claimed> = contexts
        .into_iter()
        .map(|context| {
            let span = runs
                .remove(&context.step.workflow_step_uuid)
                .unwrap_or_else(tracing::Span::none);
            span.record("claimed", true);
            span.record("step_name", context.step.name.as_str());
            span.record("namespace", context.namespace.as_str());
            span.record("attempt", context.step.attempts);
            metrics::counter!("tasker_worker_steps_claimed_total", "namespace" => context.namespace.clone())
                .increment(1);
            Claimed {
                attempt: context.step.attempts,
                context,
                span,
                claimed_at,
            }
        })
        .collect();
    // Pointers that ran nothing (a duplicate, a finished or live-leased
    // step) end their span here.
    for span in runs.into_values() {
        span.record("claimed", false);
    }
    Ok(claimed)
}

/// What became of a message whose step was not claimable.
enum Leftover {
    /// Re-claimed (its worker died): run it.
    Run(Box<StepRow>),
    /// Its worker died on the last attempt: recorded as a failure.
    Failed(StepAttempt),
    /// Nothing to run: the step finished, was cancelled, or another worker
    /// holds a live lease on it (if that worker dies, re-drive sends the
    /// step again when its lease runs out).
    Nothing,
}

async fn settle(
    shared: &WorkerShared,
    conn: &mut sqlx::PgConnection,
    step: StepUuid,
    pointer: &StepMessage,
) -> Result<Leftover, WorkerError> {
    let ctx = shared.ctx();
    let Some(row) = workflow_step::get(&mut *conn, step).await? else {
        return Ok(Leftover::Nothing);
    };
    let expired = row.lease_expires_at.is_some_and(|at| at < Utc::now());
    match row.state {
        StepState::InProgress if expired && row.attempts < row.retry.max_attempts => {
            tracing::info!(step_uuid = %step, previous = ?row.claimed_by, attempt = row.attempts,
                "re-claiming a step whose lease expired");
            let reclaim = StepChange::reclaim(step, &shared.worker_id, shared.config.worker.lease);
            let mut rows =
                workflow_step_change::apply_returning_rows(conn, &[reclaim], &ctx).await?;
            Ok(rows
                .pop()
                .map_or(Leftover::Nothing, |r| Leftover::Run(Box::new(r))))
        }
        StepState::InProgress if expired => {
            let expiry = StepChange::lease_expired_on_last_attempt(
                step,
                row.attempts,
                row.claimed_by.as_deref(),
            );
            match workflow_step_change::apply_one(conn, expiry, &ctx).await {
                Ok(changed) => Ok(Leftover::Failed(StepAttempt {
                    task_uuid: changed.task,
                    step_uuid: step,
                    attempt: row.attempts,
                    correlation_id: pointer.correlation_id,
                    traceparent: pointer.traceparent,
                })),
                Err(DbError::TransitionConflict { .. }) => Ok(Leftover::Nothing),
                Err(err) => Err(err.into()),
            }
        }
        _ => Ok(Leftover::Nothing),
    }
}

//! Claims a batch of steps in one transaction: read messages under the
//! lease, claim every step still `enqueued` with one compare-and-set
//! statement, settle the messages that need no run (duplicates, finished or
//! cancelled steps), re-claim steps whose worker died, and load every
//! claimed step's context — then commit, so the handlers run on claims that
//! are durable.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use tasker_db::DbError;
use tasker_db::execution_context::{self, ExecutionContext};
use tasker_db::workflow_step::{self, StepRow};
use tasker_db::workflow_step_change::{self, StepChange};
use tasker_messaging::{MessageId, QueueTx};
use tasker_types::ids::StepUuid;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt, StepMessage};
use tasker_types::state::StepState;

use super::shared::WorkerShared;
use crate::error::WorkerError;

/// A step this worker now holds, ready to run.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) queue: QueueName,
    pub(crate) msg_id: MessageId,
    pub(crate) attempt: u32,
    pub(crate) context: ExecutionContext,
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
    let messages = {
        let mut unit = QueueTx::join(&mut tx);
        let read = shared
            .queue
            .read_many_in(&mut unit, queue, max, lease)
            .await?;
        drop(unit.into_staged());
        read
    };
    if messages.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }

    let mut delete: Vec<MessageId> = Vec::new();
    let mut first_message: HashMap<StepUuid, (MessageId, StepMessage)> = HashMap::new();
    for message in &messages {
        match serde_json::from_value::<StepMessage>(message.payload.clone()) {
            Ok(pointer) => match first_message.entry(pointer.step_uuid) {
                // Two messages for one step in one batch: one is enough.
                std::collections::hash_map::Entry::Occupied(_) => delete.push(message.id),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((message.id, pointer));
                }
            },
            Err(err) => {
                tracing::warn!(msg_id = message.id, error = %err, "dropping unreadable step message");
                delete.push(message.id);
            }
        }
    }
    let claims: Vec<StepChange> = first_message
        .keys()
        .map(|step| StepChange::claim(*step, &shared.worker_id, lease))
        .collect();
    let mut claimed: Vec<StepRow> =
        workflow_step_change::apply_returning_rows(&mut tx, &claims, &ctx).await?;
    let claimed_now: HashSet<StepUuid> = claimed.iter().map(|s| s.workflow_step_uuid).collect();

    let mut results: Vec<StepAttempt> = Vec::new();
    for (step, (msg_id, pointer)) in &first_message {
        if claimed_now.contains(step) {
            continue;
        }
        match settle(shared, &mut tx, *step, pointer).await? {
            Leftover::Run(row) => claimed.push(*row),
            Leftover::Delete => delete.push(*msg_id),
            Leftover::Failed(attempt) => {
                results.push(attempt);
                delete.push(*msg_id);
            }
            Leftover::Leave => {}
        }
    }

    let contexts = execution_context::load_many(&mut tx, claimed).await?;
    {
        let mut unit = QueueTx::join(&mut tx);
        if !delete.is_empty() {
            shared.queue.delete_many(&mut unit, queue, &delete).await?;
        }
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
        shared.queue.commit_staged(staged).await?;
    }
    Ok(contexts
        .into_iter()
        .filter_map(|context| {
            let (msg_id, _) = first_message.get(&context.step.workflow_step_uuid)?;
            Some(Claimed {
                queue: queue.clone(),
                msg_id: *msg_id,
                attempt: context.step.attempts,
                context,
            })
        })
        .collect())
}

/// What to do with a message whose step was not claimable.
enum Leftover {
    /// Re-claimed (its worker died): run it.
    Run(Box<StepRow>),
    /// Nothing to run: delete the message.
    Delete,
    /// Its worker died on the last attempt: recorded as a failure.
    Failed(StepAttempt),
    /// Another worker holds a live lease: leave the message to reappear.
    Leave,
}

async fn settle(
    shared: &WorkerShared,
    conn: &mut sqlx::PgConnection,
    step: StepUuid,
    pointer: &StepMessage,
) -> Result<Leftover, WorkerError> {
    let ctx = shared.ctx();
    let Some(row) = workflow_step::get(&mut *conn, step).await? else {
        return Ok(Leftover::Delete);
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
                .map_or(Leftover::Leave, |r| Leftover::Run(Box::new(r))))
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
                })),
                Err(DbError::TransitionConflict { .. }) => Ok(Leftover::Leave),
                Err(err) => Err(err.into()),
            }
        }
        StepState::InProgress | StepState::Enqueued => Ok(Leftover::Leave),
        _ => Ok(Leftover::Delete),
    }
}

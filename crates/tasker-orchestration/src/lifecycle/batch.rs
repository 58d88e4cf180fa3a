//! What one orchestration transaction carries from phase to phase: the
//! shared state it reads, who it writes as, the instant it decides at, the
//! pointers it will send and what it did — one value instead of five
//! arguments on every function that takes part.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tasker_db::TransitionContext;
use tasker_messaging::Staged;
use tasker_types::messages::{OrchestrationMessage, QueueName, StepAttempt};

use super::outgoing::{Outgoing, to_json};
use crate::error::OrchestrationError;
use crate::shared::Shared;

/// What a batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BatchReport {
    /// Results accepted (step completed, retried or failed).
    pub(crate) applied: usize,
    /// Duplicate, stale or unreadable messages dropped.
    pub(crate) ignored: usize,
    /// Steps enqueued.
    pub(crate) enqueued: usize,
    /// Steps created by decision and batch outcomes.
    pub(crate) created: usize,
    /// Tasks that reached a terminal state.
    pub(crate) finalized: usize,
    /// Steps cancelled with their task.
    pub(crate) cancelled: usize,
    /// When retries scheduled by this batch fall due.
    pub(crate) retries_due: Vec<Duration>,
}

/// One orchestration transaction in the making.
pub(crate) struct Batch<'s> {
    /// Configuration, templates, the queue.
    pub(crate) shared: &'s Shared,
    /// Who writes, recorded on every transition.
    pub(crate) ctx: TransitionContext,
    /// The instant every decision of the batch is made at.
    pub(crate) now: DateTime<Utc>,
    /// Pointers to send (and messages to delete) in the transaction.
    pub(crate) out: Outgoing,
    /// What the batch did.
    pub(crate) report: BatchReport,
}

impl<'s> Batch<'s> {
    /// A batch writing as `ctx`, deciding at this instant.
    pub(crate) fn new(shared: &'s Shared, ctx: TransitionContext) -> Self {
        Self {
            shared,
            ctx,
            now: Utc::now(),
            out: Outgoing::default(),
            report: BatchReport::default(),
        }
    }

    /// Queues a delayed `retry_due` message and asks for this process's
    /// timer, so the retry fires on time here and survives a crash via the
    /// message.
    pub(crate) fn retry_due(
        &mut self,
        pointer: &StepAttempt,
        due: DateTime<Utc>,
    ) -> Result<(), OrchestrationError> {
        let delay = (due - self.now).to_std().unwrap_or(Duration::ZERO);
        let message = to_json(&OrchestrationMessage::RetryDue(*pointer))?;
        self.out
            .send_later(&QueueName::step_results(), message, delay);
        self.report.retries_due.push(delay);
        Ok(())
    }

    /// Writes the collected pointers into `conn`'s transaction (or stages
    /// them); the caller commits, then hands the staged part to
    /// `commit_staged`.
    pub(crate) async fn flush(
        self,
        conn: &mut PgConnection,
    ) -> Result<(Staged, BatchReport), OrchestrationError> {
        let staged = self.out.flush(self.shared.queue.as_ref(), conn).await?;
        Ok((staged, self.report))
    }
}

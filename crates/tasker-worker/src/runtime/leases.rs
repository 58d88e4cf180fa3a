//! Keeps the leases of running steps alive: every renew interval, extend
//! each step's `lease_expires_at` (fenced by attempt). The message was
//! acknowledged at claim time: the lease is the only thing that says the
//! step is held. A renewal that finds the attempt superseded (re-claimed,
//! or the task cancelled) cancels that attempt's handler.

use std::sync::Arc;

use tasker_db::{DbError, workflow_step};
use tokio_util::sync::CancellationToken;

use super::shared::WorkerShared;

/// Runs until `stop`.
pub(crate) async fn run(shared: Arc<WorkerShared>, stop: CancellationToken) {
    let config = &shared.config.worker;
    let mut tick = tokio::time::interval(config.lease_renew_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => renew(&shared).await,
        }
    }
}

async fn renew(shared: &WorkerShared) {
    let lease = shared.config.worker.lease;
    for (step, entry) in shared.in_flight.snapshot() {
        // While PostgreSQL is down no renewal can land; leases are long
        // enough to outlast a restart, and renewals resume with the probe.
        if shared.breakers.database.not_closed().is_some() {
            return;
        }
        let renewed = workflow_step::renew_lease(&shared.pool, step, entry.attempt, lease).await;
        shared.breakers.database.record(&renewed);
        match renewed {
            Ok(_) => {}
            Err(DbError::TransitionConflict { .. }) => {
                tracing::warn!(step_uuid = %step, attempt = entry.attempt,
                    "lease lost (step re-claimed, finished or cancelled); stopping its handler");
                entry.token.cancel();
            }
            Err(err) => tracing::warn!(step_uuid = %step, error = %err, "lease renewal failed"),
        }
    }
}

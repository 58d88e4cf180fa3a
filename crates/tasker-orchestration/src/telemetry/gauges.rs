//! The gauges whose values live in the database or the broker — tasks by
//! state, DLQ entries by status, messages per queue — refreshed in the
//! background every `telemetry.metrics_sample_interval_ms`, so a scrape of
//! `/metrics` only renders memory (SPEC §11).
//!
//! Tasks and DLQ entries are not counted: triggers keep per-state counters
//! as tasks move ([`tasker_db::state_counts`]), and a sample reads a handful
//! of rows whatever the size of the tables.

use std::sync::Arc;

use tasker_types::dlq::DlqStatus;
use tasker_types::state::TaskState;
use tokio_util::sync::CancellationToken;

use crate::error::OrchestrationError;
use crate::shared::Shared;

/// Refreshes every database-backed gauge once.
pub(crate) async fn sample_once(shared: &Shared) -> Result<(), OrchestrationError> {
    let counts = tasker_db::state_counts::fold_and_read(&shared.pool).await;
    shared.breakers.database.record(&counts);
    let counts = counts?;
    for state in TaskState::ALL {
        let n = counts.tasks.get(state.as_str()).copied().unwrap_or(0);
        metrics::gauge!("tasker_tasks", "state" => state.as_str()).set(n as f64);
    }
    for status in DlqStatus::ALL {
        let n = counts.dlq.get(status.as_str()).copied().unwrap_or(0);
        metrics::gauge!("tasker_dlq_entries", "status" => status.as_str()).set(n as f64);
    }
    let queues = shared.known_queues();
    match shared.queue.depths(&queues).await {
        Ok(depths) => {
            for (queue, depth) in queues.iter().zip(depths) {
                let name = queue.as_str().to_owned();
                metrics::gauge!("tasker_queue_messages", "queue" => name).set(depth.total as f64);
            }
        }
        Err(err) => tracing::debug!(error = %err, "reading queue depths failed"),
    }
    Ok(())
}

/// Samples every `telemetry.metrics_sample_interval_ms` until `shutdown`,
/// skipping while the database breaker is not closed.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = Some(shared.config.telemetry.metrics_sample_interval);
    let sample = || async {
        if let Err(err) = sample_once(&shared).await {
            tracing::debug!(error = %err, "sampling metrics failed");
        }
    };
    // Once at start, then on every tick.
    sample().await;
    crate::maintenance::every(&shared.breakers.database, interval, shutdown, sample).await;
}

//! Listens for control notices: a task was cancelled (stop its handlers at
//! once) or a template was registered (re-check which namespaces to serve).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tasker_db::named_task::TEMPLATE_CHANNEL;
use tasker_db::task::CANCEL_CHANNEL;
use tasker_types::ids::TaskUuid;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::shared::WorkerShared;

/// Runs until `stop`; pokes `templates_changed` on every registration (and
/// after a reconnection, when notices may have been missed).
pub(crate) async fn run(
    shared: Arc<WorkerShared>,
    templates_changed: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let mut listener = match PgListener::connect_with(&shared.pool).await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "control listener cannot connect; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if let Err(err) = listener
            .listen_all([CANCEL_CHANNEL, TEMPLATE_CHANNEL])
            .await
        {
            tracing::warn!(error = %err, "control listener cannot LISTEN; retrying");
            continue;
        }
        // A template registered before this LISTEN (at start-up, or while
        // reconnecting) sent its notice to nobody: look again now.
        templates_changed.notify_one();
        loop {
            let note = tokio::select! {
                () = stop.cancelled() => return,
                note = listener.try_recv() => note,
            };
            match note {
                Ok(Some(note)) if note.channel() == CANCEL_CHANNEL => {
                    if let Ok(task) = note.payload().parse::<TaskUuid>() {
                        let stopped = shared.in_flight.cancel_task(task);
                        if stopped > 0 {
                            tracing::info!(task_uuid = %task, stopped, "task cancelled; stopping its handlers");
                        }
                    }
                }
                Ok(Some(_)) | Ok(None) => templates_changed.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "control listener failed; reconnecting");
                    templates_changed.notify_one();
                    break;
                }
            }
        }
    }
}

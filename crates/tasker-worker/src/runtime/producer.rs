//! Reads worker queues up to the free handler capacity and starts an
//! executor per message. Wakes on a send notification, when capacity frees
//! up, when the set of queues changes, and on the slow fallback poll.

use std::sync::Arc;

use std::time::Duration;

use tasker_messaging::{MessagingError, PollTimer, Subscription};
use tasker_types::messages::QueueName;
use tasker_types::reconnect::ReconnectBackoff;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::claimer::claim_batch;
use super::executor::{Completion, execute};
use super::shared::WorkerShared;
use super::templates::queues_to_serve;

/// Runs until `shutdown`. Executors are spawned into `executors`.
pub(crate) async fn run(
    shared: Arc<WorkerShared>,
    completions: mpsc::Sender<Completion>,
    templates_changed: Arc<Notify>,
    executors: &mut JoinSet<()>,
    shutdown: CancellationToken,
) {
    let config = &shared.config.worker;
    let mut queues: Vec<QueueName> = Vec::new();
    let mut subscription: Option<Box<dyn Subscription>> = None;
    let mut refresh = true;
    let mut poll = PollTimer::new(config.events.poll_interval());
    // A lost LISTEN (PostgreSQL or broker restart) is re-established with
    // backoff and jitter, even with no fallback poll.
    let mut reconnect = ReconnectBackoff::new(RECONNECT_BASE, RECONNECT_CAP);
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        if refresh {
            refresh = false;
            match queues_to_serve(
                &shared.pool,
                shared.queue.as_ref(),
                &shared.registry,
                &config.namespaces,
            )
            .await
            {
                Ok(found) if found != queues => {
                    tracing::info!(queues = ?found.iter().map(QueueName::as_str).collect::<Vec<_>>(), "serving queues");
                    queues = found;
                    subscription = None;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot determine namespaces to serve"),
            }
        }
        let due = retry_at.is_none_or(|at| tokio::time::Instant::now() >= at);
        if subscription.is_none() && !queues.is_empty() && config.events.listens() && due {
            match shared.queue.subscribe(&queues).await {
                Ok(s) => {
                    subscription = Some(s);
                    reconnect.reset();
                    retry_at = None;
                }
                Err(err) => {
                    let delay = reconnect.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64,
                        "cannot subscribe to worker queues; polling meanwhile");
                    retry_at = Some(tokio::time::Instant::now() + delay);
                }
            }
        }
        // While PostgreSQL is known to be down nothing can be claimed: wait
        // for the breaker (its probe closes it) instead of queueing on the pool.
        let outage = shared.breakers.database.not_closed();
        if outage.is_none() {
            drain(&shared, &queues, &completions, executors, &shutdown).await;
        }
        let breaker_wait = outage.map(|wait| wait.max(MIN_BREAKER_WAIT));
        // Reap finished executors so the set does not grow.
        while executors.try_join_next().is_some() {}
        tokio::select! {
            () = shutdown.cancelled() => return,
            woke = wait(&mut subscription) => {
                if let Err(err) = woke {
                    tracing::warn!(error = %err, "queue subscription lost; resubscribing");
                    subscription = None;
                }
            }
            () = shared.capacity_freed.notified() => {}
            () = templates_changed.notified() => refresh = true,
            () = poll.tick() => {}
            () = until(retry_at), if subscription.is_none() => {}
            () = tokio::time::sleep(breaker_wait.unwrap_or_default()), if breaker_wait.is_some() => {}
        }
    }
}

/// First and longest waits between tries at a lost subscription.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_CAP: Duration = Duration::from_secs(5);
/// Least wait between two looks at a breaker that is not closed.
const MIN_BREAKER_WAIT: Duration = Duration::from_millis(50);

/// Resolves at `at` (never for `None`).
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn drain(
    shared: &Arc<WorkerShared>,
    queues: &[QueueName],
    completions: &mpsc::Sender<Completion>,
    executors: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) {
    loop {
        // One cheap query finds the queues worth reading, so an idle worker
        // serving many namespaces costs one statement per poll, not one each.
        let ready = match shared.queue.pending(queues).await {
            Ok(ready) => ready,
            Err(err) => {
                tracing::warn!(error = %err, "checking worker queues failed");
                return;
            }
        };
        let mut started = 0;
        for queue in &ready {
            let free = shared.permits.available_permits();
            if free == 0 || shutdown.is_cancelled() {
                return;
            }
            let claimed = claim_batch(shared, queue, free).await;
            if shared.breakers.database.record(&claimed) {
                tracing::warn!("database circuit breaker opened: the worker waits for PostgreSQL");
            }
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(%queue, error = %err, "claiming from the worker queue failed");
                    continue;
                }
            };
            for step in claimed {
                // Only this loop takes permits, and it claimed at most `free`
                // steps, so a permit is always there.
                let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
                    tracing::warn!(step_uuid = %step.context.step.workflow_step_uuid,
                        "no free permit; the step is re-claimed after its lease");
                    continue;
                };
                executors.spawn(execute(shared.clone(), step, completions.clone(), permit));
                started += 1;
            }
        }
        if started == 0 {
            return;
        }
    }
}

async fn wait(subscription: &mut Option<Box<dyn Subscription>>) -> Result<(), MessagingError> {
    match subscription {
        Some(s) => s.wait().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

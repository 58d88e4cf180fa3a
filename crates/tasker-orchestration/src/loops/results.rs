//! The result loop: one **waker** listens for new result pointers (notify,
//! a due retry timer, the slow fallback poll) and wakes a **writer**; each
//! writer takes a batch of pointers from `orchestration_step_results` inside
//! the transaction that applies them (the pure planning inside is the
//! executor), so the take commits with the state changes or rolls back with
//! them — no read commit, no visibility update, no separate delete. A writer
//! that took a full batch wakes another before applying it, so writers join
//! in as the backlog grows, up to `result_processors`; the wake-up is a
//! single stored permit, so nothing queues in memory.

use std::sync::Arc;
use std::time::Duration;

use tasker_messaging::{Delivery, PollTimer, Subscription};
use tasker_types::breaker::Outage;
use tasker_types::messages::QueueName;
use tasker_types::reconnect::ReconnectBackoff;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::batch::BatchReport;
use crate::lifecycle::results::{Taken, process_batch, take_and_process};
use crate::shared::Shared;

/// How long a message that failed to apply stays hidden before another try.
const FAILED_MESSAGE_BACKOFF: Duration = Duration::from_secs(5);

/// First and longest waits between tries at a lost connection.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// Runs until `shutdown`, then lets writers finish the batch in hand for up
/// to `shutdown_timeout` and abandons the rest (an abandoned batch's
/// transaction rolls back, so its messages are visible again at once).
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let config = &shared.config.orchestration;
    let wake = Arc::new(Notify::new());
    let mut writers = JoinSet::new();
    for _ in 0..config.result_processors.get() {
        writers.spawn(writer(shared.clone(), wake.clone(), shutdown.clone()));
    }
    // Whatever is already waiting is taken at start.
    wake.notify_one();
    waker(&shared, &wake, &shutdown).await;
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        while writers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("orchestration writers did not finish in time; abandoning their batches");
        writers.abort_all();
    }
}

/// Turns every reason to look at the queue into one writer's wake-up.
async fn waker(shared: &Shared, wake: &Notify, shutdown: &CancellationToken) {
    let config = &shared.config.orchestration;
    let queue = QueueName::step_results();
    let mut subscription: Option<Box<dyn Subscription>> = None;
    let mut poll = PollTimer::new(config.events.poll_interval());
    // A lost LISTEN is re-established with backoff and jitter (a
    // PostgreSQL restart, a broker restart), even with no fallback poll.
    let mut reconnect = ReconnectBackoff::new(RECONNECT_BASE, RECONNECT_CAP);
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let due = retry_at.is_none_or(|at| tokio::time::Instant::now() >= at);
        if subscription.is_none() && config.events.listens() && due {
            match shared.queue.subscribe(std::slice::from_ref(&queue)).await {
                Ok(s) => {
                    if reconnect.failures() > 0 {
                        tracing::info!("subscribed to step results again");
                    }
                    subscription = Some(s);
                    reconnect.reset();
                    retry_at = None;
                    // Whatever arrived while unsubscribed is taken now.
                    wake.notify_one();
                }
                Err(err) => {
                    let delay = reconnect.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64,
                        "cannot subscribe to step results; polling meanwhile");
                    retry_at = Some(tokio::time::Instant::now() + delay);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            woke = wait(&mut subscription) => {
                if let Err(err) = woke {
                    tracing::warn!(error = %err, "step-result subscription lost; resubscribing");
                    subscription = None;
                }
            }
            () = until(retry_at), if subscription.is_none() => continue,
            () = poll.tick() => {}
            () = shared.timers.next() => {}
        }
        wake.notify_one();
    }
}

/// Resolves at `at` (never for `None`).
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait(
    subscription: &mut Option<Box<dyn Subscription>>,
) -> Result<(), tasker_messaging::MessagingError> {
    match subscription {
        Some(s) => s.wait().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Waits for a wake-up, then takes and applies batches until one is short.
async fn writer(shared: Arc<Shared>, wake: Arc<Notify>, shutdown: CancellationToken) {
    let max = shared.config.orchestration.result_batch_size.get();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
        }
        let mut reconnect = ReconnectBackoff::new(RECONNECT_BASE, RECONNECT_CAP);
        while !shutdown.is_cancelled() {
            // While PostgreSQL is known to be down, wait instead of
            // queueing on the pool; the breaker's probe says when it is back.
            if let Err(wait) = shared.breakers.database.admit() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                }
                continue;
            }
            let started = std::time::Instant::now();
            // A full batch means more may be waiting: bring in another
            // writer while this one applies its batch.
            let Taken { messages, result } =
                take_and_process(&shared, max, || wake.notify_one()).await;
            if shared.breakers.database.record(&result) {
                tracing::warn!(
                    "database circuit breaker opened: orchestration waits for PostgreSQL"
                );
            }
            let full = messages.len() == max;
            if !messages.is_empty() {
                shared.backlog.touch();
                metrics::histogram!("tasker_orchestration_batch_size")
                    .record(messages.len() as f64);
                metrics::histogram!("tasker_orchestration_batch_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            match result {
                Ok(report) => {
                    reconnect.reset();
                    after_commit(&shared, &report, messages.len());
                }
                Err(err) if messages.is_empty() && err.is_outage() => {
                    // Results may be waiting: try again soon, backing off,
                    // rather than at the next wake-up.
                    let delay = reconnect.next_delay();
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64,
                        "taking step results failed: PostgreSQL unavailable");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
                Err(err) if messages.is_empty() => {
                    tracing::warn!(error = %err, "taking step results failed");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, batch_size = messages.len(),
                        "batch failed; retrying message by message");
                    retry_one_by_one(&shared, messages).await;
                }
            }
            if !full {
                break;
            }
        }
    }
}

/// One bad message must not hold up the others: the failed batch rolled
/// back, so hide its messages from other writers, then apply each on its
/// own; one that still fails stays hidden for a while.
async fn retry_one_by_one(shared: &Shared, messages: Vec<Delivery>) {
    let queue = QueueName::step_results();
    let receipts: Vec<_> = messages.iter().map(|m| m.receipt).collect();
    if let Err(err) = shared
        .queue
        .nack_many(&queue, &receipts, FAILED_MESSAGE_BACKOFF)
        .await
    {
        tracing::warn!(error = %err, "cannot hide a failed batch; its messages return at once");
        return;
    }
    for message in messages {
        match process_batch(shared, std::slice::from_ref(&message)).await {
            Ok(report) => after_commit(shared, &report, 1),
            Err(err) => {
                tracing::error!(receipt = %message.receipt, error = %err,
                    "applying orchestration message failed; retrying it later");
            }
        }
    }
}

fn after_commit(shared: &Shared, report: &BatchReport, batch_size: usize) {
    for delay in &report.retries_due {
        shared
            .timers
            .schedule(*delay + shared.config.orchestration.retry_timer_slack);
    }
    if batch_size > 0 {
        tracing::debug!(
            batch_size,
            applied = report.applied,
            ignored = report.ignored,
            enqueued = report.enqueued,
            finalized = report.finalized,
            "result batch applied"
        );
    }
}

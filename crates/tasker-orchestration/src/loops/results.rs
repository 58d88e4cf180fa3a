//! The result loop, split as ARCHITECTURE §3 describes: one **reader** takes
//! batches of pointers from `orchestration_step_results` (waking on notify,
//! on a due retry timer, or on the slow fallback poll) and hands them over a
//! bounded channel to **writers**, each applying a batch in one transaction
//! (the pure planning inside is the executor). When the channel is full the
//! reader waits, so a slow database slows reading instead of growing memory.

use std::sync::Arc;
use std::time::Duration;

use tasker_messaging::{PollTimer, ReceivedMessage, Subscription};
use tasker_types::messages::QueueName;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::results::process_batch;
use crate::shared::Shared;

/// How long a message that failed to apply stays hidden before another try.
const FAILED_MESSAGE_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until `shutdown`, then stops reading, lets writers finish the batches
/// in hand for up to `shutdown_timeout`, and abandons the rest (their
/// messages reappear for other orchestrators after the visibility timeout).
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let config = &shared.config.orchestration;
    let (sender, receiver) =
        mpsc::channel::<Vec<ReceivedMessage>>(config.result_channel_capacity.get());
    let receiver = Arc::new(Mutex::new(receiver));
    let mut writers = JoinSet::new();
    for _ in 0..config.result_processors.get() {
        writers.spawn(writer(shared.clone(), receiver.clone()));
    }
    reader(&shared, sender, &shutdown).await;
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        while writers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("orchestration writers did not finish in time; abandoning their batches");
        writers.abort_all();
    }
}

async fn reader(
    shared: &Shared,
    sender: mpsc::Sender<Vec<ReceivedMessage>>,
    shutdown: &CancellationToken,
) {
    let config = &shared.config.orchestration;
    let queue = QueueName::step_results();
    let mut subscription: Option<Box<dyn Subscription>> = None;
    let mut poll = PollTimer::new(config.events.poll_interval());
    loop {
        if subscription.is_none() && config.events.listens() {
            match shared.queue.subscribe(std::slice::from_ref(&queue)).await {
                Ok(s) => subscription = Some(s),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot subscribe to step results; polling")
                }
            }
        }
        // Drain: wake-ups merge, so read until a short batch.
        loop {
            let read = tokio::select! {
                () = shutdown.cancelled() => return,
                read = shared.queue.read_many(&queue, config.result_batch_size.get(), config.result_visibility_timeout) => read,
            };
            match read {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => {
                    let full = batch.len() == config.result_batch_size.get();
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        sent = sender.send(batch) => if sent.is_err() { return },
                    }
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading step results failed");
                    break;
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
            () = poll.tick() => {}
            () = shared.timers.next() => {}
        }
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

async fn writer(shared: Arc<Shared>, receiver: Arc<Mutex<mpsc::Receiver<Vec<ReceivedMessage>>>>) {
    loop {
        let batch = receiver.lock().await.recv().await;
        let Some(batch) = batch else { return };
        let started = std::time::Instant::now();
        metrics::histogram!("tasker_orchestration_batch_size").record(batch.len() as f64);
        let outcome = process_batch(&shared, &batch).await;
        metrics::histogram!("tasker_orchestration_batch_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(report) => after_commit(&shared, &report.retries_due, batch.len(), &report),
            Err(err) => {
                // One bad message must not hold up the others: retry each on
                // its own, and hide the ones that still fail for a while.
                tracing::warn!(error = %err, batch_size = batch.len(), "batch failed; retrying message by message");
                for message in batch {
                    match process_batch(&shared, std::slice::from_ref(&message)).await {
                        Ok(report) => after_commit(&shared, &report.retries_due, 1, &report),
                        Err(err) => {
                            tracing::error!(msg_id = message.id, error = %err, "applying orchestration message failed");
                            let _ = shared
                                .queue
                                .extend_visibility(
                                    &QueueName::step_results(),
                                    &[message.id],
                                    FAILED_MESSAGE_BACKOFF,
                                )
                                .await;
                        }
                    }
                }
            }
        }
    }
}

fn after_commit(
    shared: &Shared,
    retries_due: &[Duration],
    batch_size: usize,
    report: &crate::lifecycle::results::BatchReport,
) {
    for delay in retries_due {
        shared
            .timers
            .schedule(*delay + shared.config.orchestration.retry_timer_slack);
    }
    tracing::debug!(
        batch_size,
        applied = report.applied,
        ignored = report.ignored,
        enqueued = report.enqueued,
        finalized = report.finalized,
        "result batch applied"
    );
}

//! The conformance suite every provider passes (feature `testing`): one
//! contract for pgmq, RabbitMQ, in-memory, and each behind the outbox.
//! A provider's tests build a [`Subject`] and call each check; see
//! `tests/conformance.rs`.
//!
//! The checks never assume a message is receivable the instant its send
//! returned: a broker pushes deliveries to its consumer a moment later, so
//! they poll (within generous limits) wherever a message should arrive, and
//! wait a settle period wherever one should not.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::queue::{Delivery, MessageQueue, Receipt, WakeUp, ack_now};
use crate::unit::QueueTx;

/// A provider under test, and the database its units of work join.
pub struct Subject {
    /// The provider.
    pub queue: Arc<dyn MessageQueue>,
    /// A fresh database (units of work are real transactions on it).
    pub pool: PgPool,
}

type Outcome = Result<(), String>;

/// How long a message that should arrive may take.
const ARRIVAL: Duration = Duration::from_secs(5);
/// How long to watch for a message that should not arrive.
const SETTLE: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

fn check(condition: bool, what: impl Into<String>) -> Outcome {
    if condition { Ok(()) } else { Err(what.into()) }
}

fn fail<E: std::fmt::Debug>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{context}: {err:?}")
}

async fn fresh_queue(s: &Subject, name: &str) -> Result<QueueName, String> {
    let queue = QueueName::new(name).map_err(fail("queue name"))?;
    s.queue
        .ensure_queue(&queue)
        .await
        .map_err(fail("ensure_queue"))?;
    Ok(queue)
}

fn payloads(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"n": i})).collect()
}

/// Commits `tx` and applies what its unit staged, or rolls both back.
async fn finish_unit(
    s: &Subject,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    staged: crate::unit::Staged,
    commit: bool,
) -> Result<(), MessagingError> {
    if commit {
        tx.commit().await?;
        s.queue.commit_staged(staged).await
    } else {
        tx.rollback().await?;
        drop(staged);
        Ok(())
    }
}

/// Sends in a unit of work joined to a real transaction, which then
/// commits (and the staged part is applied) or rolls back.
async fn send_in_unit(
    s: &Subject,
    queue: &QueueName,
    messages: &[Value],
    delay: Duration,
    commit: bool,
) -> Result<(), MessagingError> {
    let mut tx = s.pool.begin().await?;
    let staged = {
        let mut unit = QueueTx::join(&mut tx);
        s.queue.send_many(&mut unit, queue, messages, delay).await?;
        unit.into_staged()
    };
    finish_unit(s, tx, staged, commit).await
}

async fn ack_in_unit(
    s: &Subject,
    queue: &QueueName,
    receipts: &[Receipt],
    commit: bool,
) -> Result<(), MessagingError> {
    let mut tx = s.pool.begin().await?;
    let staged = {
        let mut unit = QueueTx::join(&mut tx);
        s.queue.ack_many(&mut unit, queue, receipts).await?;
        unit.into_staged()
    };
    finish_unit(s, tx, staged, commit).await
}

async fn take_in_unit(
    s: &Subject,
    queue: &QueueName,
    max: usize,
    visibility: Duration,
    commit: bool,
) -> Result<Vec<Delivery>, MessagingError> {
    let mut tx = s.pool.begin().await?;
    let (taken, staged) = {
        let mut unit = QueueTx::join(&mut tx);
        let taken = s.queue.take_in(&mut unit, queue, max, visibility).await?;
        (taken, unit.into_staged())
    };
    finish_unit(s, tx, staged, commit).await?;
    Ok(taken)
}

/// Receives (`max` at a time, each held for `visibility`) until `n`
/// deliveries arrived or [`ARRIVAL`] passed.
async fn receive_until(
    s: &Subject,
    queue: &QueueName,
    n: usize,
    max: usize,
    visibility: Duration,
) -> Result<Vec<Delivery>, String> {
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < n && started.elapsed() < ARRIVAL {
        let batch = s
            .queue
            .receive(queue, max, visibility)
            .await
            .map_err(fail("receive"))?;
        if batch.len() > max {
            return Err(format!("asked for {max}, received {}", batch.len()));
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        got.extend(batch);
    }
    Ok(got)
}

/// Receives whatever arrives within [`SETTLE`].
async fn receive_during_settle(s: &Subject, queue: &QueueName) -> Result<Vec<Delivery>, String> {
    let started = Instant::now();
    let mut got = Vec::new();
    while started.elapsed() < SETTLE {
        got.extend(
            s.queue
                .receive(queue, 10, LONG)
                .await
                .map_err(fail("receive"))?,
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    Ok(got)
}

fn payloads_of(deliveries: &[Delivery]) -> Vec<Value> {
    deliveries.iter().map(|d| d.payload.clone()).collect()
}

async fn depth_becomes(s: &Subject, queue: &QueueName, total: u64, visible: u64) -> Outcome {
    let started = Instant::now();
    loop {
        let depth = s.queue.depth(queue).await.map_err(fail("depth"))?;
        if depth.total == total && depth.visible == visible {
            // The batch form agrees, and names an unknown queue.
            let both = s.queue.depths(std::slice::from_ref(queue)).await;
            let both = both.map_err(fail("depths"))?;
            if both != [depth] {
                return Err(format!("depths gave {both:?}, depth {depth:?}"));
            }
            return Ok(());
        }
        if started.elapsed() > ARRIVAL {
            return Err(format!(
                "depth stayed {depth:?}, expected total {total}, visible {visible}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `ensure_queue` twice is fine; an unknown queue is a typed error for
/// receive, depth and send.
pub async fn ensure_queue_is_idempotent_and_unknown_queues_are_errors(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_ensure").await?;
    s.queue
        .ensure_queue(&queue)
        .await
        .map_err(fail("second ensure"))?;
    let ghost = QueueName::new("conf_never_created").map_err(fail("name"))?;
    let err = s.queue.receive(&ghost, 1, LONG).await;
    check(
        matches!(err, Err(MessagingError::QueueNotFound(_))),
        format!("receive from an unknown queue gave {err:?}"),
    )?;
    let err = s.queue.depth(&ghost).await;
    check(
        matches!(err, Err(MessagingError::QueueNotFound(_))),
        format!("depth of an unknown queue gave {err:?}"),
    )?;
    let err = send_in_unit(s, &ghost, &payloads(1), Duration::ZERO, true).await;
    check(
        matches!(err, Err(MessagingError::QueueNotFound(_))),
        format!("send to an unknown queue gave {err:?}"),
    )
}

/// Committed sends arrive once each, in order, counted as first
/// deliveries; received, they are held from other receivers.
pub async fn committed_sends_arrive_in_order_and_are_then_held(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_order").await?;
    send_in_unit(s, &queue, &payloads(3), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    depth_becomes(s, &queue, 3, 3).await?;
    let got = receive_until(s, &queue, 3, 10, LONG).await?;
    check(
        payloads_of(&got) == payloads(3),
        format!("received {:?}", payloads_of(&got)),
    )?;
    check(
        got.iter().all(|d| d.delivery_count == 1),
        format!("first deliveries count 1: {got:?}"),
    )?;
    let again = receive_during_settle(s, &queue).await?;
    check(
        again.is_empty(),
        format!("held deliveries were received again: {again:?}"),
    )?;
    depth_becomes(s, &queue, 3, 0).await
}

/// A message sent in a unit of work that rolls back is never seen.
pub async fn a_rolled_back_send_is_never_seen(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_rollback").await?;
    send_in_unit(s, &queue, &payloads(2), Duration::ZERO, false)
        .await
        .map_err(fail("send"))?;
    let got = receive_during_settle(s, &queue).await?;
    check(
        got.is_empty(),
        format!("rolled-back messages arrived: {got:?}"),
    )?;
    depth_becomes(s, &queue, 0, 0).await
}

/// `receive` never hands out more than `max`, nor a message twice.
pub async fn receives_respect_their_limit(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_limit").await?;
    send_in_unit(s, &queue, &payloads(5), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let got = receive_until(s, &queue, 5, 2, LONG).await?;
    let unique: BTreeSet<String> = got.iter().map(|d| d.payload.to_string()).collect();
    check(
        got.len() == 5 && unique.len() == 5,
        format!("{} deliveries, {} distinct", got.len(), unique.len()),
    )
}

/// A delivery not acknowledged within its visibility comes back, counted
/// as a redelivery.
pub async fn an_unacknowledged_delivery_returns_after_its_visibility(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_visibility").await?;
    send_in_unit(s, &queue, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let first = receive_until(s, &queue, 1, 1, Duration::from_secs(1)).await?;
    let received_at = Instant::now();
    check(first.len() == 1, "the message arrived")?;
    let held = s
        .queue
        .receive(&queue, 1, Duration::from_secs(1))
        .await
        .map_err(fail("receive"))?;
    check(held.is_empty(), "held right after it was received")?;
    let back = receive_until(s, &queue, 1, 1, LONG).await?;
    let waited = received_at.elapsed();
    check(back.len() == 1, "the message came back")?;
    check(
        waited >= Duration::from_millis(900),
        format!("came back after only {waited:?}"),
    )?;
    check(
        back[0].payload == first[0].payload && back[0].delivery_count >= 2,
        format!("{back:?}"),
    )
}

/// An acknowledgement is final once its unit commits; a rolled-back one
/// acknowledges nothing (the delivery returns after its visibility); a
/// receipt acknowledged twice, or never issued, is ignored.
pub async fn acks_are_final_and_roll_back_with_their_unit(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_ack").await?;
    send_in_unit(s, &queue, &payloads(2), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let got = receive_until(s, &queue, 2, 10, Duration::from_secs(1)).await?;
    check(got.len() == 2, format!("received {got:?}"))?;
    ack_in_unit(s, &queue, &[got[0].receipt], true)
        .await
        .map_err(fail("ack"))?;
    ack_in_unit(s, &queue, &[got[1].receipt], false)
        .await
        .map_err(fail("ack rolled back"))?;
    let back = receive_until(s, &queue, 1, 10, LONG).await?;
    check(
        back.len() == 1 && back[0].payload == got[1].payload,
        format!("only the unacknowledged one returns: {back:?}"),
    )?;
    let never_issued = Receipt {
        epoch: 999_999,
        tag: 424_242,
    };
    ack_now(
        &*s.queue,
        &queue,
        &[back[0].receipt, got[0].receipt, never_issued],
    )
    .await
    .map_err(fail("ack_now"))?;
    depth_becomes(s, &queue, 0, 0).await?;
    let after = receive_during_settle(s, &queue).await?;
    check(
        after.is_empty(),
        format!("acknowledged yet delivered: {after:?}"),
    )
}

/// Taken messages are gone once their unit commits; a rolled-back take
/// hands them back (at once where the provider joins the transaction, after
/// the visibility otherwise), and nothing is taken twice by committed takes.
pub async fn taken_messages_are_gone_on_commit_and_return_on_rollback(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_take").await?;
    send_in_unit(s, &queue, &payloads(3), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let brief = Duration::from_millis(1);
    let started = Instant::now();
    let mut rolled_back = Vec::new();
    while rolled_back.is_empty() && started.elapsed() < ARRIVAL {
        rolled_back = take_in_unit(s, &queue, 2, brief, false)
            .await
            .map_err(fail("take, rolled back"))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check(
        !rolled_back.is_empty() && rolled_back.len() <= 2,
        format!("took some, then rolled back: {rolled_back:?}"),
    )?;
    let started = Instant::now();
    let mut taken = Vec::new();
    while taken.len() < 3 && started.elapsed() < ARRIVAL {
        let batch = take_in_unit(s, &queue, 10, brief, true)
            .await
            .map_err(fail("take, committed"))?;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        taken.extend(batch);
    }
    let unique: BTreeSet<String> = taken.iter().map(|d| d.payload.to_string()).collect();
    check(
        taken.len() == 3 && unique.len() == 3,
        format!("all three taken once: {:?}", payloads_of(&taken)),
    )?;
    depth_becomes(s, &queue, 0, 0).await?;
    let again = receive_during_settle(s, &queue).await?;
    check(again.is_empty(), format!("nothing left: {again:?}"))
}

/// A delivery handed back with a delay returns once the delay passed;
/// receipts the provider does not hold are not counted.
pub async fn a_nacked_delivery_returns_after_its_delay(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_nack").await?;
    send_in_unit(s, &queue, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let got = receive_until(s, &queue, 1, 1, LONG).await?;
    check(got.len() == 1, "received")?;
    let never_issued = Receipt {
        epoch: 999_999,
        tag: 424_242,
    };
    let nacked_at = Instant::now();
    let returned = s
        .queue
        .nack_many(
            &queue,
            &[got[0].receipt, never_issued],
            Duration::from_millis(800),
        )
        .await
        .map_err(fail("nack"))?;
    check(returned == 1, format!("handed back {returned}"))?;
    let early = s
        .queue
        .receive(&queue, 1, LONG)
        .await
        .map_err(fail("receive"))?;
    check(early.is_empty(), "not back before its delay")?;
    let back = receive_until(s, &queue, 1, 1, LONG).await?;
    let waited = nacked_at.elapsed();
    check(
        back.len() == 1 && back[0].payload == got[0].payload,
        format!("came back: {back:?}"),
    )?;
    check(
        waited >= Duration::from_millis(750),
        format!("back after only {waited:?}"),
    )
}

/// A delayed send stays out of reach until its delay passes.
pub async fn a_delayed_send_arrives_when_due(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_delay").await?;
    let sent_at = Instant::now();
    send_in_unit(s, &queue, &payloads(1), Duration::from_millis(800), true)
        .await
        .map_err(fail("send"))?;
    let early = s
        .queue
        .receive(&queue, 1, LONG)
        .await
        .map_err(fail("receive"))?;
    check(early.is_empty(), "not receivable before its delay")?;
    let due = receive_until(s, &queue, 1, 1, LONG).await?;
    check(due.len() == 1, "arrived once due")?;
    let waited = sent_at.elapsed();
    check(
        waited >= Duration::from_millis(750),
        format!("arrived after only {waited:?}"),
    )
}

/// Concurrent receivers, each acknowledging what it received, never get
/// the same message. (They acknowledge as they go because a broker bounds
/// how many deliveries are held unacknowledged: RabbitMQ's prefetch.)
pub async fn concurrent_receivers_share_messages_without_duplicates(s: &Subject) -> Outcome {
    let queue = fresh_queue(s, "conf_concurrent").await?;
    send_in_unit(s, &queue, &payloads(200), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let receive_share = |_: usize| async {
        let started = Instant::now();
        let mut mine = Vec::new();
        while seen.load(std::sync::atomic::Ordering::SeqCst) < 200 && started.elapsed() < ARRIVAL {
            let got = s
                .queue
                .receive(&queue, 7, LONG)
                .await
                .map_err(fail("receive"))?;
            if got.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen.fetch_add(got.len(), std::sync::atomic::Ordering::SeqCst);
            let receipts: Vec<Receipt> = got.iter().map(|d| d.receipt).collect();
            ack_now(&*s.queue, &queue, &receipts)
                .await
                .map_err(fail("ack"))?;
            mine.extend(got.into_iter().map(|d| d.payload.to_string()));
        }
        Ok::<_, String>(mine)
    };
    let (a, b, c, d) = tokio::join!(
        receive_share(0),
        receive_share(1),
        receive_share(2),
        receive_share(3)
    );
    let all: Vec<String> = [a?, b?, c?, d?].concat();
    let unique: BTreeSet<&String> = all.iter().collect();
    check(
        all.len() == 200 && unique.len() == 200,
        format!("{} deliveries, {} distinct", all.len(), unique.len()),
    )
}

/// A subscriber wakes within 100 ms of a committed send to its queue, and
/// not for other queues or rolled-back sends. Best of three trials, so one
/// scheduling hiccup on a busy machine does not fail the check.
pub async fn a_subscriber_wakes_within_100ms_of_a_send(s: &Subject) -> Outcome {
    let watched = fresh_queue(s, "conf_wake").await?;
    let other = fresh_queue(s, "conf_wake_other").await?;
    let mut subscription = s
        .queue
        .subscribe(std::slice::from_ref(&watched))
        .await
        .map_err(fail("subscribe"))?;

    send_in_unit(s, &other, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send other"))?;
    send_in_unit(s, &watched, &payloads(1), Duration::ZERO, false)
        .await
        .map_err(fail("send rolled back"))?;
    let spurious = tokio::time::timeout(SETTLE, subscription.wait()).await;
    check(
        spurious.is_err(),
        format!("woken by another queue or a rollback: {spurious:?}"),
    )?;

    let mut best = Duration::MAX;
    for _ in 0..3 {
        let sent = Instant::now();
        send_in_unit(s, &watched, &payloads(1), Duration::ZERO, true)
            .await
            .map_err(fail("send"))?;
        let woke = tokio::time::timeout(Duration::from_secs(2), subscription.wait())
            .await
            .map_err(|_| "not woken within 2 s".to_owned())?
            .map_err(fail("wait"))?;
        check(
            woke == WakeUp::Sent(watched.clone()),
            format!("woke with {woke:?}"),
        )?;
        best = best.min(sent.elapsed());
    }
    check(
        best < Duration::from_millis(100),
        format!("fastest wake-up took {best:?}"),
    )
}

/// `pending` names the queues with a message to receive now — not empty
/// ones, not ones whose only message is delayed.
pub async fn pending_names_the_queues_with_work(s: &Subject) -> Outcome {
    let busy = fresh_queue(s, "conf_pending_busy").await?;
    let idle = fresh_queue(s, "conf_pending_idle").await?;
    let later = fresh_queue(s, "conf_pending_later").await?;
    send_in_unit(s, &busy, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    send_in_unit(s, &later, &payloads(1), Duration::from_secs(60), true)
        .await
        .map_err(fail("send later"))?;
    let all = [busy.clone(), idle.clone(), later];
    let started = Instant::now();
    let found = loop {
        let found = s.queue.pending(&all).await.map_err(fail("pending"))?;
        if !found.is_empty() || started.elapsed() > ARRIVAL {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    check(found == [busy.clone()], format!("pending gave {found:?}"))?;
    let got = receive_until(s, &busy, 1, 1, LONG).await?;
    check(got.len() == 1, "received the busy queue's message")?;
    let none = s.queue.pending(&all).await.map_err(fail("pending"))?;
    check(none.is_empty(), format!("after the receive: {none:?}"))
}

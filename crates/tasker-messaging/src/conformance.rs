//! The conformance suite every provider passes (feature `testing`). A
//! provider's tests implement [`Harness`] and call each check; see
//! `tests/conformance.rs` for the pgmq and in-memory providers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tasker_types::messages::QueueName;

use crate::error::MessagingError;
use crate::queue::{MessageId, MessageQueue, WakeUp, delete_now};

/// What the suite needs from a provider under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The provider.
    fn queue(&self) -> &dyn MessageQueue;

    /// Sends in a unit of work that then commits (`commit`) or rolls back.
    async fn send_in_unit(
        &self,
        queue: &QueueName,
        messages: &[Value],
        delay: Duration,
        commit: bool,
    ) -> Result<(), MessagingError>;

    /// Deletes in a unit of work that then commits or rolls back.
    async fn delete_in_unit(
        &self,
        queue: &QueueName,
        ids: &[MessageId],
        commit: bool,
    ) -> Result<(), MessagingError>;

    /// Takes up to `max` messages ([`MessageQueue::take_many_in`], hidden
    /// for `visibility` where the provider must read) in a unit of work
    /// that then commits or rolls back.
    async fn take_in_unit(
        &self,
        queue: &QueueName,
        max: usize,
        visibility: Duration,
        commit: bool,
    ) -> Result<Vec<crate::queue::ReceivedMessage>, MessagingError>;
}

type Outcome = Result<(), String>;

fn check(condition: bool, what: impl Into<String>) -> Outcome {
    if condition { Ok(()) } else { Err(what.into()) }
}

fn fail<E: std::fmt::Debug>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{context}: {err:?}")
}

async fn fresh_queue(h: &dyn Harness, name: &str) -> Result<QueueName, String> {
    let queue = QueueName::new(name).map_err(fail("queue name"))?;
    h.queue()
        .ensure_queue(&queue)
        .await
        .map_err(fail("ensure_queue"))?;
    Ok(queue)
}

fn payloads(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"n": i})).collect()
}

/// Polls `read_many` until something is visible or `limit` passes.
async fn read_when_visible(
    h: &dyn Harness,
    queue: &QueueName,
    limit: Duration,
) -> Result<Vec<crate::queue::ReceivedMessage>, String> {
    let started = Instant::now();
    loop {
        let got = h
            .queue()
            .read_many(queue, 10, Duration::from_secs(30))
            .await
            .map_err(fail("read"))?;
        if !got.is_empty() || started.elapsed() > limit {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `ensure_queue` twice is fine; an unknown queue is a typed error.
pub async fn ensure_queue_is_idempotent_and_unknown_queues_are_errors(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_ensure").await?;
    h.queue()
        .ensure_queue(&queue)
        .await
        .map_err(fail("second ensure"))?;
    let ghost = QueueName::new("conf_never_created").map_err(fail("name"))?;
    let err = h.queue().read_many(&ghost, 1, Duration::from_secs(1)).await;
    check(
        matches!(err, Err(MessagingError::QueueNotFound(_))),
        format!("read of unknown queue gave {err:?}"),
    )?;
    let err = h.queue().depth(&ghost).await;
    check(
        matches!(err, Err(MessagingError::QueueNotFound(_))),
        format!("depth of unknown queue gave {err:?}"),
    )
}

/// A committed send is read once, in order, then hidden.
pub async fn committed_sends_are_read_in_order_and_then_hidden(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_order").await?;
    h.send_in_unit(&queue, &payloads(3), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(
        depth.total == 3 && depth.visible == 3,
        format!("depth before read {depth:?}"),
    )?;
    let got = h
        .queue()
        .read_many(&queue, 10, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    let seen: Vec<Value> = got.iter().map(|m| m.payload.clone()).collect();
    check(seen == payloads(3), format!("read {seen:?}"))?;
    check(got.iter().all(|m| m.read_count == 1), "first read counts 1")?;
    let again = h
        .queue()
        .read_many(&queue, 10, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    check(
        again.is_empty(),
        format!("hidden messages were read again: {again:?}"),
    )?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(
        depth.total == 3 && depth.visible == 0,
        format!("depth after read {depth:?}"),
    )
}

/// A message sent in a unit of work that rolls back is never seen.
pub async fn a_rolled_back_send_is_never_seen(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_rollback").await?;
    h.send_in_unit(&queue, &payloads(2), Duration::ZERO, false)
        .await
        .map_err(fail("send"))?;
    let got = h
        .queue()
        .read_many(&queue, 10, Duration::from_secs(1))
        .await
        .map_err(fail("read"))?;
    check(
        got.is_empty(),
        format!("rolled-back messages were read: {got:?}"),
    )?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(depth.total == 0, format!("depth {depth:?}"))
}

/// `read_many` returns at most `max` messages.
pub async fn reads_respect_their_limit(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_limit").await?;
    h.send_in_unit(&queue, &payloads(5), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let first = h
        .queue()
        .read_many(&queue, 2, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    let rest = h
        .queue()
        .read_many(&queue, 10, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    check(
        first.len() == 2 && rest.len() == 3,
        format!("{} then {}", first.len(), rest.len()),
    )
}

/// A read hides a message until its visibility timeout expires; then it
/// comes back, counted as read twice.
pub async fn a_read_message_returns_after_its_visibility_timeout(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_visibility").await?;
    h.send_in_unit(&queue, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let read_at = Instant::now();
    let first = h
        .queue()
        .read_many(&queue, 1, Duration::from_secs(1))
        .await
        .map_err(fail("read"))?;
    check(first.len() == 1, "first read gets the message")?;
    let hidden = h
        .queue()
        .read_many(&queue, 1, Duration::from_secs(1))
        .await
        .map_err(fail("read"))?;
    check(hidden.is_empty(), "hidden right after the read")?;
    let back = read_when_visible(h, &queue, Duration::from_secs(5)).await?;
    let waited = read_at.elapsed();
    check(back.len() == 1, "the message came back")?;
    check(
        waited >= Duration::from_millis(900),
        format!("came back after only {waited:?}"),
    )?;
    check(
        back[0].id == first[0].id && back[0].read_count == 2,
        format!("{back:?}"),
    )
}

/// Deleting removes a message for good; a rolled-back delete removes nothing.
pub async fn deletes_are_final_and_roll_back_with_their_unit(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_delete").await?;
    h.send_in_unit(&queue, &payloads(2), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let got = h
        .queue()
        .read_many(&queue, 10, Duration::from_millis(1))
        .await
        .map_err(fail("read"))?;
    check(got.len() == 2, "read both")?;
    h.delete_in_unit(&queue, &[got[0].id], true)
        .await
        .map_err(fail("delete"))?;
    h.delete_in_unit(&queue, &[got[1].id], false)
        .await
        .map_err(fail("delete rolled back"))?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(
        depth.total == 1,
        format!("one message left, depth {depth:?}"),
    )?;
    let back = read_when_visible(h, &queue, Duration::from_secs(5)).await?;
    check(
        back.len() == 1 && back[0].id == got[1].id,
        format!("survivor {back:?}"),
    )?;
    delete_now(h.queue(), &queue, &[back[0].id, 999_999])
        .await
        .map_err(fail("delete_now"))?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(
        depth.total == 0,
        format!("empty at the end, depth {depth:?}"),
    )
}

/// Taken messages are gone once their unit commits; a rolled-back take
/// hands them back (at once where the provider joins the transaction, after
/// the visibility timeout otherwise), in order and without duplicates.
pub async fn taken_messages_are_gone_on_commit_and_return_on_rollback(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_take").await?;
    h.send_in_unit(&queue, &payloads(3), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let brief = Duration::from_millis(1);
    let first = h
        .take_in_unit(&queue, 2, brief, false)
        .await
        .map_err(fail("take, rolled back"))?;
    check(
        first.len() == 2,
        format!("took two, then rolled back: {first:?}"),
    )?;
    check(
        first[0].payload == json!({"n": 0}) && first[1].payload == json!({"n": 1}),
        format!("in order: {first:?}"),
    )?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(depth.total == 3, format!("all three kept, depth {depth:?}"))?;
    let second = h
        .take_in_unit(&queue, 10, brief, true)
        .await
        .map_err(fail("take, committed"))?;
    let ids: BTreeSet<MessageId> = second.iter().map(|m| m.id).collect();
    check(
        second.len() == 3 && ids.len() == 3 && first.iter().all(|m| ids.contains(&m.id)),
        format!("all three taken once: {second:?}"),
    )?;
    let depth = h.queue().depth(&queue).await.map_err(fail("depth"))?;
    check(depth.total == 0, format!("gone, depth {depth:?}"))?;
    let again = h
        .take_in_unit(&queue, 10, brief, true)
        .await
        .map_err(fail("take, empty"))?;
    check(again.is_empty(), format!("nothing left: {again:?}"))
}

/// Extending visibility keeps a message hidden and reports what it found.
pub async fn extending_visibility_keeps_a_message_hidden(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_extend").await?;
    h.send_in_unit(&queue, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let got = h
        .queue()
        .read_many(&queue, 1, Duration::from_secs(1))
        .await
        .map_err(fail("read"))?;
    check(got.len() == 1, "read")?;
    let extended = h
        .queue()
        .extend_visibility(&queue, &[got[0].id, 424_242], Duration::from_secs(30))
        .await
        .map_err(fail("extend"))?;
    check(extended == 1, format!("extended {extended}"))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hidden = h
        .queue()
        .read_many(&queue, 1, Duration::from_secs(1))
        .await
        .map_err(fail("read"))?;
    check(hidden.is_empty(), "still hidden after the original timeout")
}

/// A delayed send stays invisible until its delay passes.
pub async fn a_delayed_send_becomes_visible_when_due(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_delay").await?;
    let sent_at = Instant::now();
    h.send_in_unit(&queue, &payloads(1), Duration::from_millis(800), true)
        .await
        .map_err(fail("send"))?;
    let early = h
        .queue()
        .read_many(&queue, 1, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    check(early.is_empty(), "invisible before its delay")?;
    let due = read_when_visible(h, &queue, Duration::from_secs(5)).await?;
    check(due.len() == 1, "visible once due")?;
    let waited = sent_at.elapsed();
    check(
        waited >= Duration::from_millis(750),
        format!("visible after only {waited:?}"),
    )
}

/// Concurrent readers never receive the same message.
pub async fn concurrent_readers_share_messages_without_duplicates(h: &dyn Harness) -> Outcome {
    let queue = fresh_queue(h, "conf_concurrent").await?;
    h.send_in_unit(&queue, &payloads(200), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    let read_all = |_: usize| async {
        let mut ids = Vec::new();
        loop {
            let got = h
                .queue()
                .read_many(&queue, 7, Duration::from_secs(60))
                .await
                .map_err(fail("read"))?;
            if got.is_empty() {
                return Ok::<_, String>(ids);
            }
            ids.extend(got.into_iter().map(|m| m.id));
        }
    };
    let (a, b, c, d) = tokio::join!(read_all(0), read_all(1), read_all(2), read_all(3));
    let all: Vec<MessageId> = [a?, b?, c?, d?].concat();
    let unique: BTreeSet<MessageId> = all.iter().copied().collect();
    check(
        all.len() == 200 && unique.len() == 200,
        format!("{} reads, {} unique", all.len(), unique.len()),
    )
}

/// A subscriber wakes within 100 ms of a committed send to its queue, and
/// not for other queues or rolled-back sends. Best of three trials, so one
/// scheduling hiccup on a busy machine does not fail the check.
pub async fn a_subscriber_wakes_within_100ms_of_a_send(h: &dyn Harness) -> Outcome {
    let watched = fresh_queue(h, "conf_wake").await?;
    let other = fresh_queue(h, "conf_wake_other").await?;
    let mut subscription = h
        .queue()
        .subscribe(std::slice::from_ref(&watched))
        .await
        .map_err(fail("subscribe"))?;

    h.send_in_unit(&other, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send other"))?;
    h.send_in_unit(&watched, &payloads(1), Duration::ZERO, false)
        .await
        .map_err(fail("send rolled back"))?;
    let spurious = tokio::time::timeout(Duration::from_millis(300), subscription.wait()).await;
    check(
        spurious.is_err(),
        format!("woken by another queue or a rollback: {spurious:?}"),
    )?;

    let mut best = Duration::MAX;
    for _ in 0..3 {
        let sent = Instant::now();
        h.send_in_unit(&watched, &payloads(1), Duration::ZERO, true)
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

/// `visible` names exactly the queues with a message to take now.
pub async fn visible_names_the_queues_with_work(h: &dyn Harness) -> Outcome {
    let busy = fresh_queue(h, "conf_visible_busy").await?;
    let idle = fresh_queue(h, "conf_visible_idle").await?;
    let later = fresh_queue(h, "conf_visible_later").await?;
    h.send_in_unit(&busy, &payloads(1), Duration::ZERO, true)
        .await
        .map_err(fail("send"))?;
    h.send_in_unit(&later, &payloads(1), Duration::from_secs(60), true)
        .await
        .map_err(fail("send later"))?;
    let all = [busy.clone(), idle.clone(), later];
    let found = h.queue().visible(&all).await.map_err(fail("visible"))?;
    check(found == [busy.clone()], format!("visible gave {found:?}"))?;
    h.queue()
        .read_many(&busy, 1, Duration::from_secs(30))
        .await
        .map_err(fail("read"))?;
    let none = h.queue().visible(&all).await.map_err(fail("visible"))?;
    check(none.is_empty(), format!("after the read: {none:?}"))
}

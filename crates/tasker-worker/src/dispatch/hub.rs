//! Where dispatched steps wait for a foreign runtime: a bounded queue of
//! dispatches to poll, and one slot per dispatch that decides, once, whether
//! a completion is accepted or refused.
//!
//! A slot moves through three states:
//!
//! ```text
//! queued ──poll──▶ running ──complete──▶ (gone: outcome accepted)
//!   │                 │
//!   │ attempt over    │ attempt over (timeout, cancel, lease lost, hard stop)
//!   ▼                 ▼
//! (gone: never ran)  ended ──complete / abandon──▶ (gone: refused; the slot is freed)
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker_types::outcome::{Checkpoint, StepOutcome};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::error::DispatchError;
use crate::attempt::AttemptControl;
use crate::context::{StepContext, StepContextData};

/// Identifies one dispatch (one attempt handed to a foreign runtime) within
/// a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DispatchId(pub u64);

impl fmt::Display for DispatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A claimed step for a foreign runtime to run.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// Pass it back to complete, checkpoint or ask about cancellation.
    pub id: DispatchId,
    /// The handler to run.
    pub callable: String,
    ctx: Arc<StepContext>,
}

impl Dispatch {
    /// The step context to hand to the handler.
    pub fn context(&self) -> &StepContextData {
        self.ctx.data()
    }
}

type Reply = oneshot::Sender<StepOutcome>;

enum SlotState {
    /// In the queue; no foreign runtime has it yet.
    Queued(Reply),
    /// A foreign handler runs it.
    Running(Reply),
    /// The attempt is over but the foreign handler has not returned.
    Ended {
        /// Dropped with the slot, which frees the attempt's concurrency slot.
        _frees_on_drop: Option<oneshot::Sender<()>>,
    },
}

struct Slot {
    ctx: Arc<StepContext>,
    callable: Arc<str>,
    state: SlotState,
}

/// Counters of what went through the hub, for status and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchCounts {
    /// Handed to a foreign runtime by poll.
    pub dispatched: u64,
    /// Completions accepted.
    pub completed: u64,
    /// Completions refused because their attempt was over.
    pub refused: u64,
    /// Steps given back without an outcome.
    pub abandoned: u64,
}

/// Slots by their state, right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlotCounts {
    /// Waiting to be polled.
    pub queued: usize,
    /// Being run by a foreign handler.
    pub running: usize,
    /// Attempt over, foreign handler not yet returned.
    pub ended: usize,
}

/// Slots by id, and the ids waiting to be polled, oldest first (one lock:
/// a dispatch's slot and its place in the queue change together).
#[derive(Default)]
struct HubState {
    slots: HashMap<DispatchId, Slot>,
    queue: VecDeque<DispatchId>,
}

/// See the module documentation.
pub(crate) struct DispatchHub {
    next_id: AtomicU64,
    state: Mutex<HubState>,
    /// Most dispatches queued at once: each running executor queues at most
    /// one, and one whose attempt ends while queued leaves the queue.
    capacity: usize,
    /// Wakes one waiting poller per dispatch queued, newest waiter first
    /// (pollers wait on it together, so no poller hands a lock to the next).
    available: Notify,
    /// Cancelled when the worker has stopped: no dispatch will follow.
    stopped: CancellationToken,
    dispatched: AtomicU64,
    completed: AtomicU64,
    refused: AtomicU64,
    abandoned: AtomicU64,
}

impl DispatchHub {
    /// A hub queueing at most `capacity` dispatches (the worker's
    /// concurrency: one per running executor).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            state: Mutex::new(HubState::default()),
            capacity: capacity.max(1),
            available: Notify::new(),
            stopped: CancellationToken::new(),
            dispatched: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        // Plain map and queue updates: a panic elsewhere cannot leave them
        // half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a slot for `ctx` and queues it for polling; `reply` receives
    /// the accepted outcome.
    pub(crate) fn submit(
        &self,
        callable: &str,
        ctx: Arc<StepContext>,
        reply: Reply,
    ) -> Result<DispatchId, DispatchError> {
        if self.stopped.is_cancelled() {
            return Err(DispatchError::Stopped);
        }
        let id = DispatchId(self.next_id.fetch_add(1, Ordering::Relaxed));
        {
            let mut state = self.state();
            if state.queue.len() >= self.capacity {
                return Err(DispatchError::QueueFull(self.capacity));
            }
            state.slots.insert(
                id,
                Slot {
                    ctx,
                    callable: callable.into(),
                    state: SlotState::Queued(reply),
                },
            );
            state.queue.push_back(id);
        }
        // The poller that most recently started waiting — a thread that just
        // finished a step, its caches still warm — takes the next one.
        self.available.notify_last();
        Ok(id)
    }

    /// Up to `max` dispatches: what is queued now, or else the first to
    /// arrive within `wait`. Empty when `wait` passes with nothing;
    /// [`DispatchError::Stopped`] once the worker has stopped.
    pub(crate) async fn poll(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Dispatch>, DispatchError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let taken = self.take(max);
            if !taken.is_empty() {
                return Ok(taken);
            }
            if self.stopped.is_cancelled() {
                return Err(DispatchError::Stopped);
            }
            // A dispatch queued since `take` looked left a permit behind,
            // so this returns at once: none is missed.
            tokio::select! {
                () = self.available.notified() => {}
                () = tokio::time::sleep_until(deadline) => return Ok(self.take(max)),
                () = self.stopped.cancelled() => {}
            }
        }
    }

    /// Hands out up to `max` queued dispatches, marking their slots running.
    fn take(&self, max: usize) -> Vec<Dispatch> {
        let mut state = self.state();
        let HubState { slots, queue } = &mut *state;
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(id) = queue.pop_front() else { break };
            let Some(slot) = slots.get_mut(&id) else {
                continue;
            };
            let previous = std::mem::replace(
                &mut slot.state,
                SlotState::Ended {
                    _frees_on_drop: None,
                },
            );
            slot.state = match previous {
                SlotState::Queued(reply) => {
                    taken.push(Dispatch {
                        id,
                        callable: slot.callable.to_string(),
                        ctx: slot.ctx.clone(),
                    });
                    SlotState::Running(reply)
                }
                other => other,
            };
        }
        self.dispatched
            .fetch_add(taken.len() as u64, Ordering::Relaxed);
        taken
    }

    /// Accepts `outcome` for `id`, or refuses it if the attempt is over.
    pub(crate) fn complete(
        &self,
        id: DispatchId,
        outcome: StepOutcome,
    ) -> Result<(), DispatchError> {
        let slot = self
            .state()
            .slots
            .remove(&id)
            .ok_or(DispatchError::Unknown(id))?;
        // The runtime flips the attempt's cancel flag the moment it decides
        // the attempt is over (timeout, cancellation, lost lease), before
        // the executor lets go of the slot: a completion after that moment
        // is late even if the slot has not been told yet.
        let over = slot.ctx.cancellation().is_cancelled();
        match slot.state {
            SlotState::Queued(reply) | SlotState::Running(reply) if !over => {
                if reply.send(outcome).is_ok() {
                    self.completed.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                } else {
                    // The attempt ended in the instant before this call.
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    Err(DispatchError::Expired(id))
                }
            }
            // Dropping the slot frees the attempt's concurrency slot.
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(DispatchError::Expired(id))
            }
        }
    }

    /// Gives `id` back without an outcome: the attempt is abandoned (its
    /// lease expires and another worker re-claims the step).
    pub(crate) fn abandon(&self, id: DispatchId) -> Result<(), DispatchError> {
        let slot = self
            .state()
            .slots
            .remove(&id)
            .ok_or(DispatchError::Unknown(id))?;
        self.abandoned.fetch_add(1, Ordering::Relaxed);
        if let Some(control) = slot.ctx.control() {
            control.abandon();
        }
        Ok(())
    }

    /// Called when the executor stops waiting for `id` (its attempt ended,
    /// or its outcome arrived). A slot still queued is dropped; a running
    /// one is told (its cancel flag flips) and keeps the attempt's
    /// concurrency slot until the foreign handler returns.
    pub(crate) fn attempt_over(&self, id: DispatchId, control: Option<&AttemptControl>) {
        let mut state = self.state();
        let HubState { slots, queue } = &mut *state;
        let Some(slot) = slots.get_mut(&id) else {
            return;
        };
        let previous = std::mem::replace(
            &mut slot.state,
            SlotState::Ended {
                _frees_on_drop: None,
            },
        );
        match previous {
            SlotState::Queued(_) => {
                slots.remove(&id);
                queue.retain(|queued| *queued != id);
            }
            SlotState::Running(_) => {
                slot.ctx.cancellation().cancel();
                let (done, wait) = oneshot::channel();
                if let Some(control) = control {
                    control.linger_until(wait);
                }
                slot.state = SlotState::Ended {
                    _frees_on_drop: Some(done),
                };
            }
            ended @ SlotState::Ended { .. } => slot.state = ended,
        }
    }

    /// Whether the handler of `id` should stop: its attempt is cancelled or
    /// over, or nobody waits for it any more.
    pub(crate) fn is_cancelled(&self, id: DispatchId) -> bool {
        self.state().slots.get(&id).is_none_or(|slot| {
            matches!(slot.state, SlotState::Ended { .. }) || slot.ctx.cancellation().is_cancelled()
        })
    }

    /// Saves a checkpoint for `id`'s attempt (fenced by the attempt).
    pub(crate) async fn save_checkpoint(
        &self,
        id: DispatchId,
        checkpoint: Checkpoint,
    ) -> Result<(), DispatchError> {
        let ctx = {
            let state = self.state();
            let slot = state.slots.get(&id).ok_or(DispatchError::Unknown(id))?;
            if matches!(slot.state, SlotState::Ended { .. }) {
                return Err(DispatchError::Expired(id));
            }
            slot.ctx.clone()
        };
        ctx.save_checkpoint(checkpoint)
            .await
            .map_err(DispatchError::Checkpoint)
    }

    /// Marks the hub stopped: polls return [`DispatchError::Stopped`].
    pub(crate) fn close(&self) {
        self.stopped.cancel();
    }

    /// Whether the worker has stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.is_cancelled()
    }

    /// What went through the hub so far.
    pub(crate) fn counts(&self) -> DispatchCounts {
        DispatchCounts {
            dispatched: self.dispatched.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }

    /// The slots by state.
    pub(crate) fn slot_counts(&self) -> SlotCounts {
        let mut counts = SlotCounts::default();
        for slot in self.state().slots.values() {
            match slot.state {
                SlotState::Queued(_) => counts.queued += 1,
                SlotState::Running(_) => counts.running += 1,
                SlotState::Ended { .. } => counts.ended += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx(step: &str) -> Arc<StepContext> {
        Arc::new(StepContext::new(StepContextData {
            step_name: step.into(),
            attempt: 1,
            ..StepContextData::default()
        }))
    }

    async fn submitted(
        hub: &DispatchHub,
        step: &str,
    ) -> (DispatchId, oneshot::Receiver<StepOutcome>) {
        let (reply, outcome) = oneshot::channel();
        let id = hub.submit("tests::noop", ctx(step), reply).unwrap();
        (id, outcome)
    }

    #[tokio::test]
    async fn poll_hands_out_what_is_queued_up_to_max() {
        let hub = DispatchHub::new(8);
        for step in ["a", "b", "c"] {
            submitted(&hub, step).await;
        }
        let first = hub.poll(2, Duration::ZERO).await.unwrap();
        let names: Vec<&str> = first
            .iter()
            .map(|d| d.context().step_name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let rest = hub.poll(5, Duration::ZERO).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert!(
            hub.poll(5, Duration::from_millis(5))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(hub.counts().dispatched, 3);
        assert_eq!(hub.slot_counts().running, 3);
    }

    #[tokio::test]
    async fn a_waiting_poll_wakes_for_the_first_dispatch() {
        let hub = Arc::new(DispatchHub::new(8));
        let poller = tokio::spawn({
            let hub = hub.clone();
            async move { hub.poll(4, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        submitted(&hub, "late").await;
        let got = tokio::time::timeout(Duration::from_secs(5), poller)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_completion_reaches_the_waiting_executor_once() {
        let hub = DispatchHub::new(8);
        let (id, outcome) = submitted(&hub, "a").await;
        hub.poll(1, Duration::ZERO).await.unwrap();
        hub.complete(id, StepOutcome::success(json!({"ok": true})))
            .unwrap();
        assert_eq!(
            outcome.await.unwrap(),
            StepOutcome::success(json!({"ok": true}))
        );
        assert!(matches!(
            hub.complete(id, StepOutcome::success(json!({}))),
            Err(DispatchError::Unknown(_))
        ));
        assert_eq!(hub.counts().completed, 1);
    }

    #[tokio::test]
    async fn a_late_completion_is_refused_and_frees_the_lingering_slot() {
        let hub = DispatchHub::new(8);
        let (id, _outcome) = submitted(&hub, "slow").await;
        hub.poll(1, Duration::ZERO).await.unwrap();
        assert!(!hub.is_cancelled(id));
        let control = AttemptControl::default();
        hub.attempt_over(id, Some(&control));
        assert!(hub.is_cancelled(id), "the handler is told");
        let linger = control.take_linger().expect("the slot is kept");
        assert_eq!(hub.slot_counts().ended, 1);
        assert!(matches!(
            hub.complete(id, StepOutcome::success(json!({}))),
            Err(DispatchError::Expired(_))
        ));
        linger.await.unwrap_err(); // the sender was dropped: the slot is free
        assert_eq!(hub.counts().refused, 1);
        assert_eq!(hub.slot_counts(), SlotCounts::default());
    }

    #[tokio::test]
    async fn a_completion_after_the_cancel_flag_is_refused_even_before_the_slot_is_told() {
        let hub = DispatchHub::new(8);
        let (reply, outcome) = oneshot::channel();
        let context = ctx("raced");
        let id = hub.submit("tests::noop", context.clone(), reply).unwrap();
        hub.poll(1, Duration::ZERO).await.unwrap();
        // The executor has decided (flag flipped) but its future is not yet
        // dropped: the receiver is still alive.
        context.cancellation().cancel();
        assert!(matches!(
            hub.complete(id, StepOutcome::success(json!({}))),
            Err(DispatchError::Expired(_))
        ));
        drop(outcome);
        assert_eq!(hub.counts().refused, 1);
    }

    #[tokio::test]
    async fn an_attempt_that_ends_before_it_is_polled_never_runs() {
        let hub = DispatchHub::new(8);
        let (id, _outcome) = submitted(&hub, "expired").await;
        let control = AttemptControl::default();
        hub.attempt_over(id, Some(&control));
        assert!(
            control.take_linger().is_none(),
            "nothing runs, nothing lingers"
        );
        assert!(hub.poll(4, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(hub.counts().dispatched, 0);
    }

    #[tokio::test]
    async fn cancelling_the_attempt_flips_the_flag() {
        let hub = DispatchHub::new(8);
        let (reply, _outcome) = oneshot::channel();
        let context = ctx("cancel me");
        let id = hub.submit("tests::noop", context.clone(), reply).unwrap();
        hub.poll(1, Duration::ZERO).await.unwrap();
        context.cancellation().cancel();
        assert!(hub.is_cancelled(id));
        assert!(
            hub.is_cancelled(DispatchId(999)),
            "an unknown dispatch has nobody waiting"
        );
    }

    #[tokio::test]
    async fn abandoning_tells_the_runtime_and_forgets_the_slot() {
        let hub = DispatchHub::new(8);
        let control = Arc::new(AttemptControl::default());
        let (reply, _outcome) = oneshot::channel();
        let context =
            Arc::new(StepContext::new(StepContextData::default()).with_control(control.clone()));
        let id = hub.submit("tests::noop", context, reply).unwrap();
        hub.poll(1, Duration::ZERO).await.unwrap();
        hub.abandon(id).unwrap();
        tokio::time::timeout(Duration::from_secs(1), control.abandoned())
            .await
            .unwrap();
        assert!(matches!(hub.abandon(id), Err(DispatchError::Unknown(_))));
        assert_eq!(hub.counts().abandoned, 1);
    }

    #[tokio::test]
    async fn pollers_waiting_together_each_get_their_own_dispatch() {
        let hub = Arc::new(DispatchHub::new(8));
        let pollers: Vec<_> = (0..3)
            .map(|_| {
                let hub = hub.clone();
                tokio::spawn(async move { hub.poll(1, Duration::from_secs(10)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for step in ["a", "b", "c"] {
            submitted(&hub, step).await;
        }
        let mut names = Vec::new();
        for poller in pollers {
            let got = tokio::time::timeout(Duration::from_secs(5), poller)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(got.len(), 1);
            names.push(got[0].context().step_name.clone());
        }
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn more_than_capacity_is_refused() {
        let hub = DispatchHub::new(1);
        submitted(&hub, "one").await;
        let (reply, _outcome) = oneshot::channel();
        assert!(matches!(
            hub.submit("tests::noop", ctx("two"), reply),
            Err(DispatchError::QueueFull(1))
        ));
    }

    #[tokio::test]
    async fn a_stopped_hub_says_so_once_drained() {
        let hub = DispatchHub::new(8);
        submitted(&hub, "last").await;
        hub.close();
        assert_eq!(hub.poll(4, Duration::from_secs(5)).await.unwrap().len(), 1);
        assert!(matches!(
            hub.poll(4, Duration::from_secs(5)).await,
            Err(DispatchError::Stopped)
        ));
    }

    #[tokio::test]
    async fn checkpoints_of_an_ended_attempt_are_refused() {
        let hub = DispatchHub::new(8);
        let (id, _outcome) = submitted(&hub, "batch").await;
        hub.poll(1, Duration::ZERO).await.unwrap();
        let checkpoint = Checkpoint {
            cursor: json!(50),
            items_processed: 50,
            partial_results: json!(null),
        };
        hub.save_checkpoint(id, checkpoint.clone()).await.unwrap();
        hub.attempt_over(id, None);
        assert!(matches!(
            hub.save_checkpoint(id, checkpoint).await,
            Err(DispatchError::Expired(_))
        ));
    }
}

//! `WatchTask`: a task's state changes, pushed as they commit (SPEC §8.2).
//!
//! A watcher first receives the task's whole history, then each new
//! transition of the task or its steps, and the stream ends after the
//! task's terminal transition. A watch is registered in
//! `tasker.task_watches`, so the watched task's transition inserts notify
//! its UUID ([`hub`]); on each poke the watcher reads the task's feed and
//! sends what it has not sent yet ([`unsent`]), so delivery never depends
//! on a notification arriving — only its promptness does.

mod hub;

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tasker_db::transition_feed::{self, FeedEntry};
use tasker_types::api::TransitionEvent;
use tasker_types::ids::TaskUuid;
use tasker_types::state::TaskState;
use tokio::sync::mpsc;
use uuid::Uuid;

pub use hub::WatchHub;

use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::error::OrchestrationError;
use crate::services::error::ServiceError;

/// A running watch: a stream of events that ends after the task finishes.
/// Dropping it (a client that disconnects) stops its reader and frees its
/// registration.
#[derive(Debug)]
pub struct TaskWatch {
    events: mpsc::Receiver<Result<TransitionEvent, ServiceError>>,
}

impl Stream for TaskWatch {
    type Item = Result<TransitionEvent, ServiceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

/// Starts watching `task`.
///
/// # Errors
/// Forbidden without `tasks:read`; not found; unavailable when
/// `grpc.max_watchers` streams are open.
pub async fn watch(
    orchestrator: &Orchestrator,
    hub: &WatchHub,
    principal: &Principal,
    task: TaskUuid,
) -> Result<TaskWatch, ServiceError> {
    principal.require(Permission::TasksRead)?;
    tasker_db::task::get(orchestrator.pool(), task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    // Registered, here and in the database, before the first read, so a
    // change committed after that read notifies and pokes us.
    let registration = hub.register(task)?;
    transition_feed::register_watch(orchestrator.pool(), registration.watch_uuid, task).await?;
    let (events, receiver) = mpsc::channel(hub.buffer());
    let orchestrator = orchestrator.clone();
    tokio::spawn(async move {
        let watch_uuid = registration.watch_uuid;
        let pool = orchestrator.pool().clone();
        follow(orchestrator, task, registration, events).await;
        if let Err(err) = transition_feed::unregister_watch(&pool, watch_uuid).await {
            // Left behind, the row costs only notifications until the next
            // server start removes it.
            tracing::warn!(error = %err, %watch_uuid, "cannot unregister a watch");
        }
    });
    Ok(TaskWatch { events: receiver })
}

/// Sends the feed's new entries on every poke until the task finishes or
/// the receiver goes away.
async fn follow(
    orchestrator: Orchestrator,
    task: TaskUuid,
    mut registration: hub::Registration,
    events: mpsc::Sender<Result<TransitionEvent, ServiceError>>,
) {
    let mut sent = HashSet::new();
    loop {
        let feed = match transition_feed::list_for_task(orchestrator.pool(), task).await {
            Ok(feed) => feed,
            Err(err) => {
                let _ = events.send(Err(err.into())).await;
                return;
            }
        };
        let (fresh, finished) = unsent(feed, &mut sent);
        for entry in fresh {
            if events.send(Ok(event_of(task, entry))).await.is_err() {
                return;
            }
        }
        if finished {
            return;
        }
        tokio::select! {
            () = events.closed() => return,
            poke = registration.pokes.recv() => if poke.is_none() { return },
        }
    }
}

/// The entries of `feed` not yet in `sent` (which it extends), in feed
/// order, and whether the task has reached a terminal state among them or
/// before. Pure.
fn unsent(feed: Vec<FeedEntry>, sent: &mut HashSet<Uuid>) -> (Vec<FeedEntry>, bool) {
    let finished = feed.iter().any(|e| {
        e.workflow_step_uuid.is_none()
            && e.to_state
                .parse::<TaskState>()
                .is_ok_and(TaskState::is_terminal)
    });
    let fresh = feed
        .into_iter()
        .filter(|e| sent.insert(e.transition_uuid))
        .collect();
    (fresh, finished)
}

fn event_of(task: TaskUuid, entry: FeedEntry) -> TransitionEvent {
    TransitionEvent {
        task_uuid: task,
        workflow_step_uuid: entry.step(),
        step_name: entry.step_name,
        from_state: entry.from_state,
        to_state: entry.to_state,
        event: entry.event,
        attempt: entry.attempt.and_then(|a| u32::try_from(a).ok()),
        processor_id: entry.processor_id,
        created_at: entry.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: bool, to: &str) -> FeedEntry {
        FeedEntry {
            transition_uuid: Uuid::now_v7(),
            workflow_step_uuid: step.then(Uuid::now_v7),
            step_name: step.then(|| "s".to_owned()),
            from_state: None,
            to_state: to.to_owned(),
            event: "e".to_owned(),
            attempt: None,
            processor_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn only_unsent_entries_go_out_in_feed_order() {
        let a = entry(false, "steps_in_process");
        let b = entry(true, "enqueued");
        let mut sent = HashSet::new();
        let (first, done) = unsent(vec![a.clone()], &mut sent);
        assert_eq!(first, vec![a.clone()]);
        assert!(!done);
        let (second, _) = unsent(vec![a, b.clone()], &mut sent);
        assert_eq!(second, vec![b]);
    }

    #[test]
    fn a_terminal_task_state_finishes_but_a_step_named_complete_does_not() {
        let mut sent = HashSet::new();
        assert!(!unsent(vec![entry(true, "complete")], &mut sent).1);
        assert!(unsent(vec![entry(false, "complete")], &mut sent).1);
        assert!(unsent(vec![entry(false, "error")], &mut sent).1);
        assert!(!unsent(vec![entry(false, "waiting_for_retry")], &mut sent).1);
    }
}

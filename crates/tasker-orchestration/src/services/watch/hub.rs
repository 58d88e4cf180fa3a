//! Who is watching which task, and the one LISTEN connection that wakes
//! them. A wake-up is a "look again" poke on a one-slot channel: pokes for
//! a watcher that has not looked yet coalesce, so a busy task cannot flood
//! memory, and nothing is lost because the watcher reads the database.
//! While any watcher is open, a slow timer pokes them all as well: the
//! fallback for a transaction that was already writing when a watch was
//! registered, and so saw no watch to notify.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tasker_config::GrpcConfig;
use tasker_db::transition_feed::{self, TRANSITIONS_CHANNEL};
use tasker_types::ids::TaskUuid;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::services::error::{ErrorKind, ServiceError};

type Pokes = HashMap<TaskUuid, HashMap<u64, mpsc::Sender<()>>>;

/// The registry of watchers (cheap to clone; clones share it).
#[derive(Clone, Debug)]
pub struct WatchHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    watchers: Mutex<Pokes>,
    next_id: AtomicU64,
    max_watchers: usize,
    buffer: usize,
    fallback: Duration,
}

/// One watcher's registration; dropping it unregisters the watcher.
#[derive(Debug)]
pub(super) struct Registration {
    hub: WatchHub,
    task: TaskUuid,
    id: u64,
    /// The watch's row in `tasker.task_watches`.
    pub(super) watch_uuid: uuid::Uuid,
    /// Receives a poke when the task may have changed.
    pub(super) pokes: mpsc::Receiver<()>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut watchers = self.hub.lock();
        if let Some(of_task) = watchers.get_mut(&self.task) {
            of_task.remove(&self.id);
            if of_task.is_empty() {
                watchers.remove(&self.task);
            }
        }
    }
}

impl WatchHub {
    /// A hub with the limits of `config`.
    pub fn new(config: &GrpcConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                watchers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                max_watchers: config.max_watchers,
                buffer: config.watch_buffer,
                fallback: config.watch_fallback_poll,
            }),
        }
    }

    /// Events buffered per watcher.
    pub(super) fn buffer(&self) -> usize {
        self.inner.buffer
    }

    /// Watchers registered now (tests check that streams clean up).
    pub fn watchers(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, Pokes> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a watcher of `task`.
    pub(super) fn register(&self, task: TaskUuid) -> Result<Registration, ServiceError> {
        let mut watchers = self.lock();
        let open: usize = watchers.values().map(HashMap::len).sum();
        if open >= self.inner.max_watchers {
            return Err(ServiceError::new(
                ErrorKind::Unavailable,
                "too_many_watchers",
                format!(
                    "{open} watch streams are open, the configured most (grpc.max_watchers); retry later"
                ),
            ));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (poke, pokes) = mpsc::channel(1);
        watchers.entry(task).or_default().insert(id, poke);
        drop(watchers);
        Ok(Registration {
            hub: self.clone(),
            task,
            id,
            watch_uuid: uuid::Uuid::now_v7(),
            pokes,
        })
    }

    fn poke(&self, task: TaskUuid) {
        if let Some(of_task) = self.lock().get(&task) {
            for poke in of_task.values() {
                // Full means a poke is already waiting: this one adds nothing.
                let _ = poke.try_send(());
            }
        }
    }

    fn poke_all(&self) {
        for poke in self.lock().values().flat_map(HashMap::values) {
            let _ = poke.try_send(());
        }
    }

    /// LISTENs for transition notices and pokes the watchers of each task
    /// named, until `shutdown`. After every (re)connection all watchers are
    /// poked, since notices sent while nobody listened are gone; so are
    /// they on every fallback tick while any is open. First removes watch
    /// registrations a day old: left by a server that stopped uncleanly.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
        match transition_feed::delete_watches_before(&pool, day_ago).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed stale watch registrations"),
            Err(err) => tracing::warn!(error = %err, "cannot remove stale watch registrations"),
        }
        let mut fallback = tokio::time::interval(self.inner.fallback);
        fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(TRANSITIONS_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                () = shutdown.cancelled() => return,
                connected = connected => match connected {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::warn!(error = %err, "watch listener cannot LISTEN; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            self.poke_all();
            loop {
                let note = tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = fallback.tick() => {
                        self.poke_all();
                        continue;
                    }
                    note = listener.try_recv() => note,
                };
                match note {
                    Ok(Some(note)) => {
                        if let Ok(task) = note.payload().parse::<TaskUuid>() {
                            self.poke(task);
                        }
                    }
                    // Reconnected by itself: notices may have been missed.
                    Ok(None) => self.poke_all(),
                    Err(err) => {
                        tracing::warn!(error = %err, "watch listener failed; reconnecting");
                        self.poke_all();
                        break;
                    }
                }
            }
        }
    }
}

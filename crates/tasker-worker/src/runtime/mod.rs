//! The worker runtime (SPEC §7, ARCHITECTURE §2): a producer reads worker
//! queues up to the handler concurrency, executors claim and run steps, a
//! completer writes outcomes in batches, a lease keeper renews leases, and a
//! control listener relays cancellations and new templates.

pub(crate) mod claimer;
pub(crate) mod completer;
pub(crate) mod control;
pub(crate) mod event_plan;
pub(crate) mod executor;
pub(crate) mod leases;
pub(crate) mod observe;
pub(crate) mod producer;
pub(crate) mod shared;
pub(crate) mod templates;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tasker_config::TaskerConfig;
use tasker_messaging::MessageQueue;
use tasker_types::breaker::Breakers;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::shared::WorkerShared;
use crate::error::WorkerError;
use crate::registry::HandlerRegistry;

/// How often the database probe looks at a closed breaker (memory only).
const BREAKER_POLL: Duration = Duration::from_millis(500);

/// How long abandoned executors get to notice a hard stop.
const HARD_STOP_GRACE: Duration = Duration::from_secs(2);

/// A worker: the handlers it can run, and what it needs to run them.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<WorkerShared>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.shared.worker_id)
            .finish()
    }
}

impl Worker {
    /// Connects to the database and queue provider `config` names.
    ///
    /// # Errors
    /// [`WorkerError`] when PostgreSQL is unreachable.
    pub async fn connect(
        config: TaskerConfig,
        registry: HandlerRegistry,
    ) -> Result<Self, WorkerError> {
        let pool = tasker_db::connect(&config.database, "tasker-worker").await?;
        let breakers = tasker_db::breakers::breakers(&config.circuit_breakers);
        let queue =
            tasker_messaging::connect_guarded(&config.messaging, &pool, &breakers.messaging);
        Ok(Self::with_breakers(pool, queue, config, registry, breakers))
    }

    /// A worker over an existing pool and queue provider, with circuit
    /// breakers from `config` (the queue is used as given; see
    /// [`Worker::with_breakers`]).
    pub fn new(
        pool: PgPool,
        queue: Arc<dyn MessageQueue>,
        config: TaskerConfig,
        registry: HandlerRegistry,
    ) -> Self {
        let breakers = tasker_db::breakers::breakers(&config.circuit_breakers);
        Self::with_breakers(pool, queue, config, registry, breakers)
    }

    /// A worker with the given circuit breakers: pass the ones guarding
    /// `queue` ([`tasker_messaging::connect_guarded`]); a process that
    /// also runs orchestration shares one set.
    pub fn with_breakers(
        pool: PgPool,
        queue: Arc<dyn MessageQueue>,
        config: TaskerConfig,
        registry: HandlerRegistry,
        breakers: Breakers,
    ) -> Self {
        Self {
            shared: Arc::new(WorkerShared::new(
                pool,
                queue,
                Arc::new(registry),
                config,
                breakers,
            )),
        }
    }

    /// The circuit breakers (SPEC §12).
    pub fn breakers(&self) -> &Breakers {
        &self.shared.breakers
    }

    /// Fast domain events (`delivery_mode: fast` or `broadcast`) of the
    /// steps this worker runs, from now on (SPEC §4.9).
    pub fn subscribe_events(&self) -> crate::events::EventSubscription {
        self.shared.events.subscribe()
    }

    /// What this worker published and dropped since it started.
    pub fn event_stats(&self) -> crate::events::EventStats {
        self.shared.events.stats()
    }

    /// This worker's id, as recorded in claims and transition rows.
    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Registers the templates at the configured `template_paths`.
    ///
    /// # Errors
    /// [`WorkerError`] for an invalid or conflicting template.
    pub async fn register_templates(&self) -> Result<usize, WorkerError> {
        let paths = &self.shared.config.worker.template_paths;
        let registered = templates::register_template_files(
            &self.shared.pool,
            self.shared.queue.as_ref(),
            paths,
        )
        .await?;
        Ok(registered.len())
    }

    /// Registers the configured templates, then serves queues until
    /// `shutdown`. Soft shutdown stops claiming and lets running handlers
    /// finish for `shutdown_timeout`; then they are abandoned (their leases
    /// expire and other workers re-claim) and pending results are written.
    ///
    /// # Errors
    /// [`WorkerError`] when the configured templates cannot be registered.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        self.register_templates().await?;
        self.serve(shutdown).await;
        Ok(())
    }

    /// Serves queues until `shutdown`, like [`Worker::run`] but without
    /// registering templates first (for hosts that registered them already,
    /// so a bad template is reported before the worker starts).
    pub async fn serve(&self, shutdown: CancellationToken) {
        let shared = self.shared.clone();
        let config = &shared.config.worker;
        tracing::info!(worker_id = %shared.worker_id, concurrency = config.concurrency.get(),
            callables = ?shared.registry.callables(), "worker running");

        let (completions, receiver) = mpsc::channel(config.completion_channel_capacity.get());
        let completer = tokio::spawn(completer::run(shared.clone(), receiver));
        let background_stop = CancellationToken::new();
        let leases = tokio::spawn(leases::run(shared.clone(), background_stop.clone()));
        let probe = tokio::spawn(tasker_db::breakers::probe_database(
            shared.pool.clone(),
            shared.breakers.database.clone(),
            BREAKER_POLL,
            background_stop.clone().cancelled_owned(),
        ));
        let observer = config.metrics_bind.map(|address| {
            tasker_telemetry::metrics::register_zeroes(tasker_telemetry::metrics::Exporter::Worker);
            tokio::spawn(observe::serve(
                shared.clone(),
                address,
                background_stop.clone(),
            ))
        });
        let templates_changed = Arc::new(Notify::new());
        let control = tokio::spawn(control::run(
            shared.clone(),
            templates_changed.clone(),
            background_stop.clone(),
        ));

        let mut executors = JoinSet::new();
        producer::run(
            shared.clone(),
            completions,
            templates_changed,
            &mut executors,
            shutdown,
        )
        .await;

        // Soft stop: no new claims; let running handlers finish.
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            while executors.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = executors.len(),
                "handlers still running at shutdown; abandoning them"
            );
            shared.hard_stop.cancel();
            let _ = tokio::time::timeout(HARD_STOP_GRACE, async {
                while executors.join_next().await.is_some() {}
            })
            .await;
            executors.abort_all();
        }
        // Executors held the last senders: the completer flushes and ends.
        let _ = completer.await;
        background_stop.cancel();
        let _ = leases.await;
        let _ = control.await;
        let _ = probe.await;
        if let Some(observer) = observer {
            let _ = observer.await;
        }
        tracing::info!(worker_id = %shared.worker_id, "worker stopped");
    }
}

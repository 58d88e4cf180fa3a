//! Tasker's engine (SPEC §3–§4, ARCHITECTURE §2–§3).
//!
//! An [`Orchestrator`] creates tasks (the graph and its ready root steps,
//! enqueued, in one transaction), runs the result loop that turns step
//! results into completed steps, retries, failures, newly enqueued steps and
//! finished tasks, fires retries on time, and cancels tasks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tasker_orchestration::Orchestrator;
//! use tasker_types::api::TaskRequest;
//! use tokio_util::sync::CancellationToken;
//!
//! let config = tasker_config::load()?;
//! let orchestrator = Orchestrator::connect(config).await?;
//! let shutdown = CancellationToken::new();
//! let running = tokio::spawn({
//!     let orchestrator = orchestrator.clone();
//!     let shutdown = shutdown.clone();
//!     async move { orchestrator.run(shutdown).await }
//! });
//! let created = orchestrator
//!     .create_task(TaskRequest::new("linear_workflow", "mathematical_sequence", serde_json::json!({"value": 6})))
//!     .await?;
//! println!("created {} ({}) with {} steps", created.task.task_uuid, created.task.state, created.steps.len());
//! shutdown.cancel();
//! running.await??;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod backpressure;
mod error;
pub mod grpc;
pub mod lifecycle;
mod loops;
mod maintenance;
pub mod operations;
pub mod server;
pub mod services;
mod shared;
pub mod telemetry;
pub mod web;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tasker_config::TaskerConfig;
use tasker_db::task::{CreatedTask, TaskRow};
use tasker_messaging::MessageQueue;
use tasker_types::api::{StepActionRequest, TaskRequest};
use tasker_types::breaker::Breakers;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::messages::QueueName;
use tokio_util::sync::CancellationToken;

pub use error::OrchestrationError;
pub use maintenance::redrive::RedriveReport;
pub use maintenance::staleness::StalenessReport;

use crate::shared::Shared;

/// How often the database probe looks at a closed breaker (reading a
/// mutex; it only touches PostgreSQL while the breaker is open).
const BREAKER_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// A handle on one orchestrator. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Orchestrator {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("processor_id", &self.shared.processor_id)
            .finish()
    }
}

impl Orchestrator {
    /// Connects to the database and queue provider `config` names.
    ///
    /// # Errors
    /// [`OrchestrationError`] when PostgreSQL is unreachable.
    pub async fn connect(config: TaskerConfig) -> Result<Self, OrchestrationError> {
        let pool = tasker_db::connect(&config.database, "tasker-orchestration").await?;
        let breakers = tasker_db::breakers::breakers(&config.circuit_breakers);
        let queue =
            tasker_messaging::connect_guarded(&config.messaging, &pool, &breakers.messaging);
        Ok(Self::with_breakers(pool, queue, config, breakers))
    }

    /// An orchestrator over an existing pool and queue provider, with
    /// circuit breakers from `config` (the queue is used as given: guard
    /// it with [`tasker_messaging::connect_guarded`] and pass the breakers
    /// to [`Orchestrator::with_breakers`] to have its calls counted).
    pub fn new(pool: PgPool, queue: Arc<dyn MessageQueue>, config: TaskerConfig) -> Self {
        let breakers = tasker_db::breakers::breakers(&config.circuit_breakers);
        Self::with_breakers(pool, queue, config, breakers)
    }

    /// An orchestrator with the given circuit breakers (a process running
    /// orchestration and a worker shares one set).
    pub fn with_breakers(
        pool: PgPool,
        queue: Arc<dyn MessageQueue>,
        config: TaskerConfig,
        breakers: Breakers,
    ) -> Self {
        Self {
            shared: Arc::new(Shared::new(pool, queue, config, breakers)),
        }
    }

    /// The circuit breakers (SPEC §12).
    pub fn breakers(&self) -> &Breakers {
        &self.shared.breakers
    }

    /// Whether a request of kind `intake` should be refused now (a breaker
    /// not closed, or for new tasks a backlog beyond `[backpressure]`).
    /// Reads memory only.
    pub fn refusal(&self, intake: backpressure::Intake) -> Option<backpressure::Refusal> {
        backpressure::check(&self.shared, intake)
    }

    /// The orchestration backlog as last sampled (SPEC §12 backpressure).
    pub fn backlog(&self) -> backpressure::BacklogSample {
        self.shared.backlog.get()
    }

    /// This orchestrator's id, as recorded in transition rows.
    pub fn processor_id(&self) -> &str {
        &self.shared.processor_id
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The queue provider.
    pub fn queue(&self) -> Arc<dyn MessageQueue> {
        self.shared.queue.clone()
    }

    /// Creates the orchestration queues if they do not exist.
    ///
    /// # Errors
    /// [`OrchestrationError`] when the provider refuses.
    pub async fn prepare(&self) -> Result<(), OrchestrationError> {
        for queue in [
            QueueName::step_results(),
            QueueName::task_requests(),
            QueueName::task_finalizations(),
        ] {
            self.shared.ensure_queue(&queue).await?;
        }
        Ok(())
    }

    /// Creates a task and enqueues its ready root steps, in one transaction.
    ///
    /// # Errors
    /// [`OrchestrationError::TemplateNotFound`], [`OrchestrationError::InvalidContext`]
    /// (with the failing fields), `Db(DbError::DuplicateTask { existing })`
    /// for a duplicate; nothing is written on error. Returns the task with
    /// its steps and edges as committed.
    pub async fn create_task(
        &self,
        request: TaskRequest,
    ) -> Result<CreatedTask, OrchestrationError> {
        lifecycle::initialize::create_task(&self.shared, request).await
    }

    /// Cancels a task: its unfinished steps at once, then the task; workers
    /// running its handlers are told, and late results are discarded.
    ///
    /// # Errors
    /// [`OrchestrationError::TaskNotFound`], [`OrchestrationError::AlreadyFinished`].
    pub async fn cancel_task(
        &self,
        task: TaskUuid,
        reason: Option<&str>,
    ) -> Result<TaskRow, OrchestrationError> {
        lifecycle::cancel::cancel_task(&self.shared, task, reason).await
    }

    /// Applies an operator's repair to a step — `reset_for_retry`,
    /// `resolve_manually` or `complete_manually` — audited with the
    /// request's `actor` and `reason`; the task resumes from there in the
    /// same transaction.
    ///
    /// # Errors
    /// [`OrchestrationError::TaskNotFound`], [`OrchestrationError::StepNotFound`],
    /// [`OrchestrationError::BadRequest`], [`OrchestrationError::StepActionRefused`],
    /// [`OrchestrationError::AlreadyFinished`].
    pub async fn act_on_step(
        &self,
        task: TaskUuid,
        step: StepUuid,
        request: &StepActionRequest,
    ) -> Result<TaskRow, OrchestrationError> {
        self.act_on_step_as(task, step, request, &request.actor)
            .await
    }

    /// As [`Orchestrator::act_on_step`], recorded as done by `actor` (the
    /// authenticated caller); a request `actor` that differs is kept only
    /// as a note.
    ///
    /// # Errors
    /// As [`Orchestrator::act_on_step`].
    pub async fn act_on_step_as(
        &self,
        task: TaskUuid,
        step: StepUuid,
        request: &StepActionRequest,
        actor: &str,
    ) -> Result<TaskRow, OrchestrationError> {
        lifecycle::repair::act_on_step(&self.shared, task, step, request, actor).await
    }

    /// Runs one staleness sweep as if the time were `now` (the background
    /// detector calls it with the clock; tests with a simulated instant).
    /// Does nothing while another orchestrator is sweeping.
    ///
    /// # Errors
    /// [`OrchestrationError::Db`] on database failure.
    pub async fn sweep_stale_tasks(
        &self,
        now: DateTime<Utc>,
    ) -> Result<StalenessReport, OrchestrationError> {
        maintenance::staleness::sweep(&self.shared, now).await
    }

    /// Runs one re-drive sweep as if the time were `now` (the background
    /// sweep calls it with the clock; tests with a later instant). Does
    /// nothing while another orchestrator is sweeping.
    ///
    /// # Errors
    /// [`OrchestrationError`] on database or queue failure.
    pub async fn redrive_lost_pointers(
        &self,
        now: DateTime<Utc>,
    ) -> Result<RedriveReport, OrchestrationError> {
        maintenance::redrive::sweep(&self.shared, now).await
    }

    /// Refreshes the gauges read from the database (tasks by state, DLQ
    /// entries, queue depths) now; [`Orchestrator::run`] does so every
    /// `telemetry.metrics_sample_interval_ms`.
    ///
    /// # Errors
    /// [`OrchestrationError`] on database failure.
    pub async fn sample_metrics(&self) -> Result<(), OrchestrationError> {
        telemetry::gauges::sample_once(&self.shared).await
    }

    /// Runs the result loop until `shutdown` is cancelled, then shuts down
    /// softly (finish batches in hand) within the configured timeout.
    ///
    /// # Errors
    /// [`OrchestrationError`] when the orchestration queues cannot be prepared.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), OrchestrationError> {
        self.prepare().await?;
        tracing::info!(processor_id = %self.shared.processor_id, "orchestration running");
        let staleness = tokio::spawn(maintenance::staleness::run(
            self.shared.clone(),
            shutdown.clone(),
        ));
        let redrive = tokio::spawn(maintenance::redrive::run(
            self.shared.clone(),
            shutdown.clone(),
        ));
        let probe = tokio::spawn(tasker_db::breakers::probe_database(
            self.shared.pool.clone(),
            self.shared.breakers.database.clone(),
            BREAKER_POLL,
            shutdown.clone().cancelled_owned(),
        ));
        let sampler = tokio::spawn(backpressure::sample(self.shared.clone(), shutdown.clone()));
        tasker_telemetry::metrics::register_zeroes(tasker_telemetry::metrics::Exporter::Server);
        let gauges = tokio::spawn(telemetry::gauges::run(
            self.shared.clone(),
            shutdown.clone(),
        ));
        loops::results::run(self.shared.clone(), shutdown).await;
        let _ = gauges.await;
        let _ = staleness.await;
        let _ = redrive.await;
        let _ = probe.await;
        let _ = sampler.await;
        tracing::info!(processor_id = %self.shared.processor_id, "orchestration stopped");
        Ok(())
    }
}

/// Connects with `config` and runs orchestration until `shutdown`.
///
/// # Errors
/// [`OrchestrationError`] when the database is unreachable.
pub async fn run(
    config: TaskerConfig,
    shutdown: CancellationToken,
) -> Result<(), OrchestrationError> {
    Orchestrator::connect(config).await?.run(shutdown).await
}

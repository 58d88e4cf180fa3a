//! State shared by a worker's loops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::PgPool;
use tasker_config::TaskerConfig;
use tasker_db::TransitionContext;
use tasker_messaging::MessageQueue;
use tasker_types::breaker::Breakers;
use tasker_types::ids::{StepUuid, TaskUuid, TemplateUuid};
use tasker_types::messages::QueueName;
use tasker_types::schema::CompiledSchema;
use tasker_types::template::{EventDeclaration, StepDefinition, TaskTemplate};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::events::EventBus;
use crate::registry::HandlerRegistry;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps; a panic elsewhere cannot leave them half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A claimed step whose lease this worker holds.
#[derive(Clone, Debug)]
pub(crate) struct InFlightEntry {
    pub(crate) task: TaskUuid,
    pub(crate) attempt: u32,
    /// Cancelled when the task is cancelled or the lease is lost.
    pub(crate) token: CancellationToken,
}

/// Steps this worker holds leases on, from claim until their outcome is
/// written. Keyed by step and attempt: one worker may hold a superseded
/// attempt and the current one of the same step at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<(StepUuid, u32), InFlightEntry>>);

impl InFlight {
    pub(crate) fn insert(&self, step: StepUuid, entry: InFlightEntry) {
        lock(&self.0).insert((step, entry.attempt), entry);
    }

    pub(crate) fn remove(&self, step: StepUuid, attempt: u32) {
        lock(&self.0).remove(&(step, attempt));
    }

    /// Attempts held now (running, or waiting for their result to be written).
    pub(crate) fn len(&self) -> usize {
        lock(&self.0).len()
    }

    pub(crate) fn snapshot(&self) -> Vec<(StepUuid, InFlightEntry)> {
        lock(&self.0)
            .iter()
            .map(|((step, _), v)| (*step, v.clone()))
            .collect()
    }

    /// Cancels every running attempt of `task`; returns how many.
    pub(crate) fn cancel_task(&self, task: TaskUuid) -> usize {
        let entries = lock(&self.0);
        let mut cancelled = 0;
        for entry in entries.values().filter(|e| e.task == task) {
            entry.token.cancel();
            cancelled += 1;
        }
        cancelled
    }
}

/// Compiled `result_schema`s by template and step (`None`: the step has none).
type SchemaCache = Mutex<HashMap<(TemplateUuid, String), Option<Arc<CompiledSchema>>>>;

/// Registered templates by id (a version never changes once registered).
type TemplateCache = Mutex<HashMap<TemplateUuid, Arc<TaskTemplate>>>;

pub(crate) struct WorkerShared {
    pub(crate) pool: PgPool,
    pub(crate) queue: Arc<dyn MessageQueue>,
    pub(crate) registry: Arc<HandlerRegistry>,
    pub(crate) config: TaskerConfig,
    pub(crate) worker_id: String,
    pub(crate) permits: Arc<Semaphore>,
    /// Fail fast while PostgreSQL or the queue provider is down.
    pub(crate) breakers: Breakers,
    /// Signalled when an executor returns its permit.
    pub(crate) capacity_freed: Notify,
    pub(crate) in_flight: InFlight,
    /// Cancelled when soft shutdown runs out of time: running handlers are
    /// abandoned (their leases expire and other workers re-claim).
    pub(crate) hard_stop: CancellationToken,
    result_schemas: SchemaCache,
    /// Compiled event payload schemas, by template and `step#event`.
    event_schemas: SchemaCache,
    templates: TemplateCache,
    /// Fast domain events and the publication counters.
    pub(crate) events: EventBus,
    /// `<namespace>_domain_events` queues known to exist.
    pub(crate) event_queues: Mutex<std::collections::HashSet<QueueName>>,
}

impl WorkerShared {
    pub(crate) fn new(
        pool: PgPool,
        queue: Arc<dyn MessageQueue>,
        registry: Arc<HandlerRegistry>,
        config: TaskerConfig,
        breakers: Breakers,
    ) -> Self {
        let worker_id = config
            .worker
            .worker_id
            .clone()
            .unwrap_or_else(|| tasker_config::process_identity("worker"));
        let permits = Arc::new(Semaphore::new(config.worker.concurrency.get()));
        let events = EventBus::new(config.worker.domain_event_capacity.get());
        Self {
            pool,
            queue,
            registry,
            config,
            worker_id,
            permits,
            breakers,
            capacity_freed: Notify::new(),
            in_flight: InFlight::default(),
            hard_stop: CancellationToken::new(),
            result_schemas: Mutex::new(HashMap::new()),
            event_schemas: Mutex::new(HashMap::new()),
            templates: Mutex::new(HashMap::new()),
            events,
            event_queues: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub(crate) fn ctx(&self) -> TransitionContext {
        TransitionContext::by(self.worker_id.clone())
    }

    /// The definition of a template step (cached: templates never change
    /// once registered).
    pub(crate) async fn step_template(
        &self,
        template: TemplateUuid,
        step: &str,
    ) -> Result<Option<StepDefinition>, tasker_db::DbError> {
        let cached = lock(&self.templates).get(&template).cloned();
        let template = match cached {
            Some(t) => t,
            None => {
                let Some(registered) =
                    tasker_db::named_task::get_by_uuid(&self.pool, template).await?
                else {
                    return Ok(None);
                };
                let t = Arc::new(registered.template);
                lock(&self.templates).insert(template, t.clone());
                t
            }
        };
        Ok(template.step(step).cloned())
    }

    /// The compiled `result_schema` of a template step (cached).
    pub(crate) async fn result_schema(
        &self,
        template: TemplateUuid,
        step: &str,
    ) -> Result<Option<Arc<CompiledSchema>>, tasker_db::DbError> {
        let key = (template, step.to_owned());
        if let Some(cached) = lock(&self.result_schemas).get(&key) {
            return Ok(cached.clone());
        }
        let compiled = self
            .step_template(template, step)
            .await?
            .and_then(|s| s.result_schema)
            .and_then(|schema| CompiledSchema::compile(&schema).ok())
            .map(Arc::new);
        lock(&self.result_schemas).insert(key, compiled.clone());
        Ok(compiled)
    }

    /// The compiled payload schema of a declared event (cached); `None`
    /// when it declares none (or it does not compile, which registration
    /// prevents).
    pub(crate) async fn event_schema(
        &self,
        template: TemplateUuid,
        step: &str,
        declared: &EventDeclaration,
    ) -> Option<Arc<CompiledSchema>> {
        let key = (template, format!("{step}#{}", declared.name));
        if let Some(cached) = lock(&self.event_schemas).get(&key) {
            return cached.clone();
        }
        let compiled = declared
            .schema
            .as_ref()
            .and_then(|schema| CompiledSchema::compile(schema).ok())
            .map(Arc::new);
        lock(&self.event_schemas).insert(key, compiled.clone());
        compiled
    }
}

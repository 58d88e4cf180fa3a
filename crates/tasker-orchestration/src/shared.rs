//! What every orchestration component shares: the pool, the queue provider,
//! configuration, this process's id, and small caches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::PgPool;
use tasker_config::TaskerConfig;
use tasker_db::TransitionContext;
use tasker_db::named_task::RegisteredTemplate;
use tasker_messaging::MessageQueue;
use tasker_types::breaker::Breakers;
use tasker_types::expansion::ExpansionLimits;
use tasker_types::ids::TemplateUuid;
use tasker_types::messages::QueueName;
use tasker_types::schema::CompiledSchema;
use tasker_types::template::TaskTemplate;

use crate::error::OrchestrationError;
use crate::lifecycle::evaluate::Rules;
use crate::loops::retry_timers::RetryTimers;

/// Shared state of one orchestrator.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) queue: Arc<dyn MessageQueue>,
    pub(crate) config: TaskerConfig,
    pub(crate) processor_id: String,
    pub(crate) timers: RetryTimers,
    /// Fail fast while PostgreSQL or the queue provider is down.
    pub(crate) breakers: Breakers,
    /// The orchestration backlog, sampled for backpressure.
    pub(crate) backlog: crate::backpressure::BacklogGauge,
    known_queues: Mutex<HashSet<QueueName>>,
    input_schemas: Mutex<HashMap<TemplateUuid, Option<Arc<CompiledSchema>>>>,
    templates: Mutex<HashMap<TemplateUuid, Arc<TaskTemplate>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The caches hold plain data; a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        pool: PgPool,
        queue: Arc<dyn MessageQueue>,
        config: TaskerConfig,
        breakers: Breakers,
    ) -> Self {
        let processor_id = config
            .orchestration
            .processor_id
            .clone()
            .unwrap_or_else(|| tasker_config::process_identity("orchestrator"));
        Self {
            pool,
            queue,
            config,
            processor_id,
            timers: RetryTimers::default(),
            breakers,
            backlog: crate::backpressure::BacklogGauge::default(),
            known_queues: Mutex::new(HashSet::new()),
            input_schemas: Mutex::new(HashMap::new()),
            templates: Mutex::new(HashMap::new()),
        }
    }

    /// Audit data naming this orchestrator.
    pub(crate) fn ctx(&self) -> TransitionContext {
        TransitionContext::by(self.processor_id.clone())
    }

    /// The configured limits the engine's rules apply.
    pub(crate) fn rules(&self) -> Rules {
        let limits = self.config.orchestration.expansion;
        Rules {
            expansion: ExpansionLimits {
                max_steps_per_decision: limits.max_steps_per_decision,
                max_decision_depth: limits.max_decision_depth,
                max_batches: limits.max_batches_per_step,
            },
            jitter_spread: self.config.execution.backoff_jitter,
        }
    }

    /// The template a task runs, resolved for this environment (cached:
    /// a registered version never changes).
    pub(crate) async fn template(
        &self,
        uuid: TemplateUuid,
    ) -> Result<Arc<TaskTemplate>, OrchestrationError> {
        if let Some(cached) = lock(&self.templates).get(&uuid) {
            return Ok(cached.clone());
        }
        let registered = tasker_db::named_task::get_by_uuid(&self.pool, uuid)
            .await?
            .ok_or_else(|| OrchestrationError::Corrupt(format!("template {uuid} is missing")))?;
        Ok(self.resolve(&registered))
    }

    /// `registered` resolved for this environment (cached as
    /// [`Self::template`] is).
    pub(crate) fn resolve(&self, registered: &RegisteredTemplate) -> Arc<TaskTemplate> {
        let uuid = registered.named_task_uuid;
        if let Some(cached) = lock(&self.templates).get(&uuid) {
            return cached.clone();
        }
        let resolved = Arc::new(
            registered
                .template
                .for_environment(&self.config.environment),
        );
        lock(&self.templates).insert(uuid, resolved.clone());
        resolved
    }

    /// Creates `queue` unless this process already knows it exists.
    pub(crate) async fn ensure_queue(&self, queue: &QueueName) -> Result<(), OrchestrationError> {
        if lock(&self.known_queues).contains(queue) {
            return Ok(());
        }
        self.queue.ensure_queue(queue).await?;
        lock(&self.known_queues).insert(queue.clone());
        Ok(())
    }

    /// The queues this process created or found, for the depth gauges.
    pub(crate) fn known_queues(&self) -> Vec<QueueName> {
        let mut queues: Vec<QueueName> = lock(&self.known_queues).iter().cloned().collect();
        queues.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        queues
    }

    /// The compiled `input_schema` of a template (templates never change
    /// once registered, so the cache never goes stale).
    pub(crate) fn input_schema(
        &self,
        template: &RegisteredTemplate,
    ) -> Result<Option<Arc<CompiledSchema>>, OrchestrationError> {
        if let Some(cached) = lock(&self.input_schemas).get(&template.named_task_uuid) {
            return Ok(cached.clone());
        }
        let compiled = match &template.template.input_schema {
            None => None,
            Some(schema) => Some(Arc::new(
                CompiledSchema::compile(schema).map_err(OrchestrationError::Corrupt)?,
            )),
        };
        lock(&self.input_schemas).insert(template.named_task_uuid, compiled.clone());
        Ok(compiled)
    }
}

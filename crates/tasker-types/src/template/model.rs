//! The task template model (SPEC §2), with every default filled in. Values of
//! these types have passed validation (see [`super::parse`]); the serialized
//! form is what `named_tasks.template` stores and the API returns.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::backoff::{BackoffKind, RetryPolicy};
use crate::dag::Dag;
use crate::identity::IdentityStrategy;
use crate::messages::{InvalidQueueName, QueueName};

/// A validated template: `(namespace_name, name, version)` → a DAG of steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Template name.
    pub name: String,
    /// Namespace (unit of queue isolation).
    pub namespace_name: String,
    /// Semantic version, e.g. `1.0.0`.
    pub version: String,
    /// What the workflow does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// How duplicate requests are recognised (SPEC §4.8).
    #[serde(default)]
    pub identity_strategy: IdentityStrategy,
    /// JSON Schema that a task's `context` must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The steps, in declaration order.
    pub steps: Vec<StepDefinition>,
    /// Per-environment overrides, keyed by environment name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvironmentOverrides>,
    /// Staleness thresholds that override the configured ones.
    #[serde(default, skip_serializing_if = "LifecycleThresholds::is_empty")]
    pub lifecycle: LifecycleThresholds,
}

/// One step of a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDefinition {
    /// Unique within the template.
    pub name: String,
    /// What the step does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The handler that runs it.
    pub handler: HandlerSpec,
    /// The worker pool that runs it (routing by step): its pointers go to
    /// `worker_<namespace>__<pool>`, served by the workers that have every
    /// callable of that pool; `None` is the namespace's default pool
    /// (`worker_<namespace>_queue`). Lets one task mix handlers written in
    /// different languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The step's role in the graph.
    #[serde(rename = "type", default)]
    pub step_type: StepType,
    /// Names of parent steps.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Per-attempt handler timeout; `None` uses the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Domain events the step publishes (SPEC §4.9).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publishes_events: Vec<EventDeclaration>,
    /// Batch settings; only on `batchable` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_config: Option<BatchConfig>,
    /// JSON Schema the handler's result must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_schema: Option<Value>,
}

/// Which handler runs a step, and its configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    /// The handler's registered name, e.g. `tasker::math` or `orders::ship`.
    pub callable: String,
    /// JSON configuration handed to the handler.
    #[serde(default)]
    pub initialization: Map<String, Value>,
}

/// A step's role (SPEC §4.6–§4.7).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// Runs when its parents are done.
    #[default]
    Standard,
    /// Chooses which of its downstream steps to create.
    Decision,
    /// Waits only for those of its declared parents that were created.
    DeferredConvergence,
    /// Splits a dataset into batches.
    Batchable,
    /// The template cloned once per batch.
    BatchWorker,
}

impl StepType {
    /// The type's name as written in templates.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepType::Standard => "standard",
            StepType::Decision => "decision",
            StepType::DeferredConvergence => "deferred_convergence",
            StepType::Batchable => "batchable",
            StepType::BatchWorker => "batch_worker",
        }
    }
}

/// A domain event a step declares (SPEC §4.9).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDeclaration {
    /// Event name, e.g. `order.shipped`.
    pub name: String,
    /// When the event fires.
    #[serde(default)]
    pub condition: EventCondition,
    /// JSON Schema of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Where the event goes.
    #[serde(default)]
    pub delivery_mode: DeliveryMode,
}

/// When a declared event fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCondition {
    /// On success.
    #[default]
    Success,
    /// On any failure.
    Failure,
    /// On a failure that will be retried.
    RetryableFailure,
    /// On a failure that will not be retried.
    PermanentFailure,
    /// After every attempt.
    Always,
}

/// Where a declared event is delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The `<namespace>_domain_events` queue, for external consumers.
    #[default]
    Durable,
    /// In-process subscribers only.
    Fast,
    /// Both.
    Broadcast,
}

/// Batch settings of a `batchable` step (SPEC §4.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The `batch_worker` step cloned once per batch.
    pub worker_template: String,
    /// How many batch workers may run at once.
    #[serde(default = "BatchConfig::default_parallelism")]
    pub parallelism: u32,
    /// What a failed batch does to the others.
    #[serde(default)]
    pub failure_strategy: FailureStrategy,
    /// Suggested items per batch, handed to the batchable handler.
    #[serde(default = "BatchConfig::default_batch_size")]
    pub batch_size: u64,
}

impl BatchConfig {
    fn default_parallelism() -> u32 {
        4
    }

    fn default_batch_size() -> u64 {
        100
    }
}

/// How a batch's failure affects its siblings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStrategy {
    /// One permanent failure cancels the batches not yet started and fails the task.
    #[default]
    FailFast,
    /// Every batch runs; convergence sees which ones failed.
    ContinueOnFailure,
    /// A failed batch is set aside for an operator; the others continue.
    Isolate,
}

/// Overrides for one environment (SPEC §2), keyed by step name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentOverrides {
    /// Per-step overrides.
    #[serde(default)]
    pub steps: BTreeMap<String, StepOverride>,
}

/// What an environment may change about a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOverride {
    /// Handler initialization keys to replace (merged over the step's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerOverride>,
    /// Retry fields to replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    /// A different timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// Handler fields an environment may change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerOverride {
    /// Keys merged over the step's `handler.initialization`.
    #[serde(default)]
    pub initialization: Map<String, Value>,
}

/// Retry fields an environment may change; absent fields keep the step's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverride {
    /// See [`RetryPolicy::retryable`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// See [`RetryPolicy::max_attempts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// See [`RetryPolicy::backoff`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffKind>,
    /// See [`RetryPolicy::backoff_base_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// See [`RetryPolicy::max_backoff_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}

impl RetryOverride {
    /// `policy` with this override's fields replaced.
    pub fn apply(&self, policy: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            retryable: self.retryable.unwrap_or(policy.retryable),
            max_attempts: self.max_attempts.unwrap_or(policy.max_attempts),
            backoff: self.backoff.unwrap_or(policy.backoff),
            backoff_base_ms: self.backoff_base_ms.unwrap_or(policy.backoff_base_ms),
            max_backoff_ms: self.max_backoff_ms.unwrap_or(policy.max_backoff_ms),
        }
    }
}

/// Staleness thresholds in minutes (SPEC §4.10); absent ones use config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleThresholds {
    /// Longest a task may run in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<u32>,
    /// Longest a task may wait for dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_dependencies_minutes: Option<u32>,
    /// Longest a task may wait for a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_retry_minutes: Option<u32>,
    /// Longest a task may have steps in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_in_process_minutes: Option<u32>,
}

impl LifecycleThresholds {
    /// Whether no threshold is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl TaskTemplate {
    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&StepDefinition> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The queue that a step made from template step `template_step` is
    /// enqueued on: its pool's (see [`StepDefinition::pool`]).
    ///
    /// # Errors
    /// [`InvalidQueueName`] for a step that is not in the template, or
    /// names that skipped validation.
    pub fn step_queue(&self, template_step: &str) -> Result<QueueName, InvalidQueueName> {
        let step = self.step(template_step).ok_or_else(|| {
            InvalidQueueName(format!("no step `{template_step}` in {}", self.name))
        })?;
        self.queue_of(step)
    }

    /// The queue that steps made from `step` (one of this template's) are
    /// enqueued on: its pool's.
    ///
    /// # Errors
    /// [`InvalidQueueName`] for names that skipped validation.
    pub fn queue_of(&self, step: &StepDefinition) -> Result<QueueName, InvalidQueueName> {
        QueueName::worker_pool(&self.namespace_name, step.pool.as_deref())
    }

    /// Every worker queue the template's steps are enqueued on (one per
    /// pool they name).
    ///
    /// # Errors
    /// [`InvalidQueueName`] for names that skipped validation.
    pub fn queues(&self) -> Result<BTreeSet<QueueName>, InvalidQueueName> {
        self.steps.iter().map(|step| self.queue_of(step)).collect()
    }

    /// The template's graph. Validated templates always build one.
    ///
    /// # Errors
    /// [`crate::dag::DagError`] only for templates that skipped validation.
    pub fn dag(&self) -> Result<Dag, crate::dag::DagError> {
        Dag::new(
            self.steps
                .iter()
                .map(|s| (s.name.as_str(), s.dependencies.iter().map(String::as_str))),
        )
    }

    /// Steps created when a task starts: those not downstream of a decision
    /// or a batch worker (those are created at run time, SPEC §4.6–§4.7), and
    /// not batch workers themselves.
    ///
    /// # Errors
    /// [`crate::dag::DagError`] only for templates that skipped validation.
    pub fn initial_steps(&self) -> Result<Vec<&StepDefinition>, crate::dag::DagError> {
        let dag = self.dag()?;
        let mut dynamic = vec![false; self.steps.len()];
        for (i, step) in self.steps.iter().enumerate() {
            match step.step_type {
                StepType::Decision => {
                    for d in dag.descendants(i) {
                        dynamic[d] = true;
                    }
                }
                StepType::BatchWorker => {
                    dynamic[i] = true;
                    for d in dag.descendants(i) {
                        dynamic[d] = true;
                    }
                }
                _ => {}
            }
        }
        Ok(self
            .steps
            .iter()
            .zip(dynamic)
            .filter_map(|(step, dynamic)| (!dynamic).then_some(step))
            .collect())
    }

    /// This template with `environment`'s overrides applied (unchanged when
    /// the environment has none).
    pub fn for_environment(&self, environment: &str) -> TaskTemplate {
        let mut resolved = self.clone();
        let Some(overrides) = self.environments.get(environment) else {
            return resolved;
        };
        for step in &mut resolved.steps {
            let Some(change) = overrides.steps.get(&step.name) else {
                continue;
            };
            if let Some(handler) = &change.handler {
                for (key, value) in &handler.initialization {
                    step.handler
                        .initialization
                        .insert(key.clone(), value.clone());
                }
            }
            if let Some(retry) = &change.retry {
                step.retry = retry.apply(step.retry);
            }
            if change.timeout_seconds.is_some() {
                step.timeout_seconds = change.timeout_seconds;
            }
        }
        resolved
    }
}

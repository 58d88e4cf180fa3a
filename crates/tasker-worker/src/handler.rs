//! What a step handler is: one async function from a [`StepContext`] to a
//! [`HandlerResult`] (SPEC §7). Handlers should be idempotent: execution is
//! at least once, acceptance exactly once per attempt (SPEC §4.3).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::PgPool;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::outcome::{
    BatchOutcome, Checkpoint, CursorConfig, DecisionOutcome, FlowControl, StepFailure, StepOutcome,
    error_types,
};
use tasker_types::template::BatchConfig;
use tokio_util::sync::CancellationToken;

/// Runs one step. Registered in a [`crate::HandlerRegistry`] under its `callable`.
///
/// ```
/// use tasker_worker::{HandlerResult, StepContext, StepHandler, Success, HandlerError};
///
/// struct Double;
///
/// #[async_trait::async_trait]
/// impl StepHandler for Double {
///     async fn call(&self, ctx: StepContext) -> HandlerResult {
///         let n = ctx.context["n"].as_i64().ok_or_else(|| HandlerError::permanent("n must be an integer"))?;
///         Ok(Success::new(serde_json::json!({ "value": n * 2 })))
///     }
/// }
/// ```
#[async_trait]
pub trait StepHandler: Send + Sync + 'static {
    /// Runs the step. Return an error marked retryable for failures another
    /// attempt may fix; permanent otherwise.
    async fn call(&self, ctx: StepContext) -> HandlerResult;
}

/// A handler's answer.
pub type HandlerResult = Result<Success, HandlerError>;

/// Everything a handler knows about the step it runs (SPEC §7).
#[derive(Clone, Debug)]
pub struct StepContext {
    /// The task.
    pub task_uuid: TaskUuid,
    /// The step.
    pub step_uuid: StepUuid,
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub task_name: String,
    /// Template version.
    pub task_version: String,
    /// The task's context.
    pub context: Value,
    /// The step's name in this task (a batch clone's includes its batch id).
    pub step_name: String,
    /// The template step it was made from.
    pub template_step: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The step's `max_attempts`.
    pub max_attempts: u32,
    /// The step's `handler.initialization`.
    pub initialization: Value,
    /// Extra inputs: a batch cursor, or inputs edited by an operator.
    pub inputs: Option<Value>,
    /// Names of the step's direct parents that exist in this task.
    pub direct_parents: Vec<String>,
    /// The result of every completed ancestor, by step name.
    pub dependency_results: BTreeMap<String, Value>,
    /// Direct parents that failed permanently, with their errors. Only a
    /// tolerated failure (a `continue_on_failure` batch) lets a step run
    /// with a failed parent, so a convergence step sees which batches failed.
    pub failed_parents: BTreeMap<String, Value>,
    /// For a batchable step: its `batch_config` (worker, parallelism,
    /// suggested batch size, failure strategy).
    pub batch_config: Option<BatchConfig>,
    /// The last checkpoint an earlier attempt saved: resume from here.
    pub checkpoint: Option<Checkpoint>,
    /// Follows the task through logs and messages.
    pub correlation_id: CorrelationId,
    cancellation: CancellationToken,
    checkpoints: CheckpointStore,
}

/// Where [`StepContext::save_checkpoint`] writes.
#[derive(Clone, Debug)]
enum CheckpointStore {
    /// The step's row, fenced by the attempt (the runtime's store).
    Database(PgPool),
    /// Kept in memory, for handler unit tests ([`StepContext::saved_checkpoints`]).
    Memory(Arc<Mutex<Vec<Checkpoint>>>),
}

impl StepContext {
    /// Assembles a context (used by the runtime and by handler unit tests).
    #[allow(clippy::too_many_arguments)] // mirrors the SPEC §7 field list one to one
    pub fn new(
        task_uuid: TaskUuid,
        step_uuid: StepUuid,
        namespace: String,
        task_name: String,
        task_version: String,
        context: Value,
        step_name: String,
        template_step: String,
        attempt: u32,
        max_attempts: u32,
        initialization: Value,
        correlation_id: CorrelationId,
    ) -> Self {
        Self {
            task_uuid,
            step_uuid,
            namespace,
            task_name,
            task_version,
            context,
            step_name,
            template_step,
            attempt,
            max_attempts,
            initialization,
            inputs: None,
            direct_parents: Vec::new(),
            dependency_results: BTreeMap::new(),
            failed_parents: BTreeMap::new(),
            batch_config: None,
            checkpoint: None,
            correlation_id,
            cancellation: CancellationToken::new(),
            checkpoints: CheckpointStore::Memory(Arc::default()),
        }
    }

    /// Saves checkpoints to the step's row (the runtime does this).
    pub(crate) fn with_checkpoint_store(mut self, pool: PgPool) -> Self {
        self.checkpoints = CheckpointStore::Database(pool);
        self
    }

    /// Records how far this attempt got, so that if it fails (or its worker
    /// dies) the next attempt starts from `checkpoint` instead of the
    /// beginning (SPEC §4.7). Save after the items it counts are done.
    ///
    /// # Errors
    /// A retryable [`HandlerError`] when this attempt is no longer current
    /// (its lease was re-claimed or the task cancelled: stop working) or the
    /// database is unreachable.
    pub async fn save_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), HandlerError> {
        match &self.checkpoints {
            CheckpointStore::Memory(saved) => {
                saved
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(checkpoint);
                Ok(())
            }
            CheckpointStore::Database(pool) => {
                let value = serde_json::to_value(&checkpoint)
                    .map_err(|e| HandlerError::permanent(format!("checkpoint is not JSON: {e}")))?;
                tasker_db::workflow_step::save_checkpoint(
                    pool,
                    self.step_uuid,
                    self.attempt,
                    &value,
                )
                .await
                .map_err(|err| match err {
                    tasker_db::DbError::TransitionConflict { .. } => HandlerError::retryable(
                        "checkpoint refused: this attempt is no longer current",
                    )
                    .with_error_type("lease_lost"),
                    other => {
                        HandlerError::retryable(format!("saving the checkpoint failed: {other}"))
                    }
                })
            }
        }
    }

    /// The checkpoints saved through a context made with [`StepContext::new`]
    /// (in memory, for handler tests); empty when the runtime stores them.
    pub fn saved_checkpoints(&self) -> Vec<Checkpoint> {
        match &self.checkpoints {
            CheckpointStore::Memory(saved) => {
                saved.lock().unwrap_or_else(PoisonError::into_inner).clone()
            }
            CheckpointStore::Database(_) => Vec::new(),
        }
    }

    /// A batch worker's slice of the dataset.
    ///
    /// # Errors
    /// A permanent [`HandlerError`] when the step is not a batch worker.
    pub fn batch_cursor(&self) -> Result<CursorConfig, HandlerError> {
        tasker_types::expansion::batch_cursor(self.inputs.as_ref()).ok_or_else(|| {
            HandlerError::permanent(format!(
                "step `{}` has no batch cursor: only batch workers do",
                self.step_name
            ))
        })
    }

    /// Cancelled when the task is cancelled or this attempt loses its lease:
    /// long-running handlers should stop early.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// Replaces the cancellation token (the runtime links it to the attempt).
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancellation = token;
        self
    }

    /// The result of ancestor `name`.
    pub fn dependency(&self, name: &str) -> Option<&Value> {
        self.dependency_results.get(name)
    }

    /// The results of the direct parents, in `direct_parents` order.
    pub fn parent_results(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.direct_parents
            .iter()
            .filter_map(|p| self.dependency_results.get(p).map(|v| (p.as_str(), v)))
    }

    /// `handler.initialization` decoded as `T`.
    ///
    /// # Errors
    /// A permanent [`HandlerError`] naming the problem when it does not fit.
    pub fn initialization_as<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_value(self.initialization.clone())
            .map_err(|e| HandlerError::permanent(format!("invalid handler initialization: {e}")))
    }

    /// The task context decoded as `T`.
    ///
    /// # Errors
    /// A permanent [`HandlerError`] naming the problem when it does not fit.
    pub fn context_as<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_value(self.context.clone())
            .map_err(|e| HandlerError::permanent(format!("invalid task context: {e}")))
    }
}

/// A successful attempt: the result dependents receive, and for decision and
/// batchable steps what orchestration should create.
#[derive(Clone, Debug, PartialEq)]
pub struct Success {
    /// The result.
    pub result: Value,
    /// What to create next (decision and batchable steps).
    pub control: Option<FlowControl>,
}

impl Success {
    /// A plain result.
    pub fn new(result: Value) -> Self {
        Self {
            result,
            control: None,
        }
    }

    /// A decision: create `steps` (names reachable from the decision).
    pub fn create_steps(result: Value, steps: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            result,
            control: Some(FlowControl::Decision(DecisionOutcome::CreateSteps {
                steps: steps.into_iter().map(Into::into).collect(),
            })),
        }
    }

    /// A decision that creates nothing.
    pub fn no_branches(result: Value) -> Self {
        Self {
            result,
            control: Some(FlowControl::Decision(DecisionOutcome::NoBranches)),
        }
    }

    /// A batchable step's plan.
    pub fn batches(result: Value, outcome: BatchOutcome) -> Self {
        Self {
            result,
            control: Some(FlowControl::Batches(outcome)),
        }
    }

    /// A batchable step's plan: one batch per cursor.
    pub fn create_batches(result: Value, cursor_configs: Vec<CursorConfig>) -> Self {
        let worker_count = u32::try_from(cursor_configs.len()).unwrap_or(u32::MAX);
        Self::batches(
            result,
            BatchOutcome::CreateBatches {
                worker_count,
                cursor_configs,
            },
        )
    }

    /// A batchable step with nothing to process; convergence still runs.
    pub fn no_batches(result: Value) -> Self {
        Self::batches(result, BatchOutcome::NoBatches)
    }
}

impl From<Value> for Success {
    fn from(result: Value) -> Self {
        Success::new(result)
    }
}

/// A failed attempt. Small (the message and the verdict inline, the rest
/// boxed) so `Result<_, HandlerError>` stays cheap to return.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    retryable: bool,
    extra: Option<Box<ErrorExtra>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ErrorExtra {
    error_type: Option<String>,
    code: Option<String>,
    details: Value,
    retry_after: Option<Duration>,
}

impl HandlerError {
    /// A failure another attempt may fix.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(message, true)
    }

    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(message, false)
    }

    fn new(message: impl Into<String>, retryable: bool) -> Self {
        Self {
            message: message.into(),
            retryable,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut ErrorExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Sets an application error code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.extra().code = Some(code.into());
        self
    }

    /// Sets structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.extra().details = details;
        self
    }

    /// Asks for the next attempt after `delay` (e.g. an HTTP `Retry-After`).
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.extra().retry_after = Some(delay);
        self
    }

    /// Sets the category (default `handler_error`).
    #[must_use]
    pub fn with_error_type(mut self, error_type: impl Into<String>) -> Self {
        self.extra().error_type = Some(error_type.into());
        self
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether another attempt may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The category.
    pub fn error_type(&self) -> &str {
        self.extra
            .as_ref()
            .and_then(|e| e.error_type.as_deref())
            .unwrap_or(error_types::HANDLER_ERROR)
    }

    /// The application error code, if set.
    pub fn code(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.code.as_deref())
    }

    /// The structured details (`null` when unset).
    pub fn details(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.extra.as_ref().map_or(&NULL, |e| &e.details)
    }

    /// The requested delay before the next attempt, if set.
    pub fn retry_after_hint(&self) -> Option<Duration> {
        self.extra.as_ref().and_then(|e| e.retry_after)
    }
}

/// Converts a handler's answer to the language-neutral envelope.
pub fn to_outcome(result: HandlerResult) -> StepOutcome {
    match result {
        Ok(success) => StepOutcome::Success {
            result: success.result,
            control: success.control,
        },
        Err(error) => StepOutcome::Failure {
            error: StepFailure {
                error_type: error.error_type().to_owned(),
                retryable: error.retryable,
                code: error.code().map(str::to_owned),
                details: error.details().clone(),
                retry_after_ms: error
                    .retry_after_hint()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                message: error.message,
            },
        },
    }
}

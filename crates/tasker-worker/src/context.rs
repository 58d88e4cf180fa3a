//! What a handler knows about the step it runs (SPEC §7): the
//! language-neutral [`StepContextData`], and the Rust [`StepContext`] that
//! wraps it with the attempt's cancellation signal and checkpoint store.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::outcome::{Checkpoint, CursorConfig};
use tasker_types::template::BatchConfig;
use tokio_util::sync::CancellationToken;

use crate::attempt::AttemptControl;
use crate::handler::HandlerError;

/// The step context of SPEC §7 as plain data: what every handler, in any
/// language, is given. Serialised with these snake_case field names for the
/// foreign-language workers (the dispatch surface); no connection or
/// runtime handle inside.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepContextData {
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
    /// For a batch worker: its slice of the dataset (read from `inputs` by
    /// the runtime, so no language parses `inputs` itself).
    pub batch_cursor: Option<CursorConfig>,
    /// The last checkpoint an earlier attempt saved: resume from here.
    pub checkpoint: Option<Checkpoint>,
    /// Follows the task through logs and messages.
    pub correlation_id: CorrelationId,
}

impl StepContextData {
    /// Sets `inputs` and the batch cursor they carry, if any.
    pub fn set_inputs(&mut self, inputs: Option<Value>) {
        self.batch_cursor = tasker_types::expansion::batch_cursor(inputs.as_ref());
        self.inputs = inputs;
    }
}

/// Everything a Rust handler knows about the step it runs: the
/// [`StepContextData`] (its fields read directly, `ctx.context`,
/// `ctx.attempt`, …) plus the attempt's cancellation signal and checkpoints.
#[derive(Clone, Debug)]
pub struct StepContext {
    data: StepContextData,
    cancellation: CancellationToken,
    checkpoints: CheckpointStore,
    control: Option<Arc<AttemptControl>>,
}

impl Deref for StepContext {
    type Target = StepContextData;

    fn deref(&self) -> &StepContextData {
        &self.data
    }
}

impl DerefMut for StepContext {
    fn deref_mut(&mut self) -> &mut StepContextData {
        &mut self.data
    }
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
    /// A context over `data`, with its own cancellation token and checkpoints
    /// kept in memory (what handler unit tests use; the runtime links both to
    /// the attempt).
    ///
    /// ```
    /// use tasker_worker::{StepContext, StepContextData};
    ///
    /// let ctx = StepContext::new(StepContextData {
    ///     context: serde_json::json!({ "n": 4 }),
    ///     attempt: 1,
    ///     ..StepContextData::default()
    /// });
    /// assert_eq!(ctx.context["n"], 4);
    /// ```
    pub fn new(data: StepContextData) -> Self {
        Self {
            data,
            cancellation: CancellationToken::new(),
            checkpoints: CheckpointStore::Memory(Arc::default()),
            control: None,
        }
    }

    /// The plain data, for handing to another language.
    pub fn data(&self) -> &StepContextData {
        &self.data
    }

    /// Saves checkpoints to the step's row (the runtime does this).
    pub(crate) fn with_checkpoint_store(mut self, pool: PgPool) -> Self {
        self.checkpoints = CheckpointStore::Database(pool);
        self
    }

    /// Links the context to the runtime's view of its attempt.
    pub(crate) fn with_control(mut self, control: Arc<AttemptControl>) -> Self {
        self.control = Some(control);
        self
    }

    /// The runtime's view of this attempt (absent in handler unit tests).
    pub(crate) fn control(&self) -> Option<&Arc<AttemptControl>> {
        self.control.as_ref()
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
        self.data.batch_cursor.clone().ok_or_else(|| {
            HandlerError::permanent(format!(
                "step `{}` has no batch cursor: only batch workers do",
                self.step_name
            ))
        })
    }

    /// Cancelled when the task is cancelled, this attempt loses its lease or
    /// overruns its timeout: long-running handlers should stop early.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_wire_shape_uses_the_spec_field_names() {
        let mut data = StepContextData {
            step_name: "process_csv_batch_001".into(),
            attempt: 2,
            ..StepContextData::default()
        };
        data.set_inputs(Some(json!({"batch_cursor": {
            "batch_id": "001", "start_cursor": 0, "end_cursor": 200, "batch_size": 200
        }})));
        let wire = serde_json::to_value(&data).unwrap();
        for field in [
            "task_uuid",
            "step_uuid",
            "namespace",
            "task_name",
            "task_version",
            "context",
            "step_name",
            "template_step",
            "attempt",
            "max_attempts",
            "initialization",
            "inputs",
            "direct_parents",
            "dependency_results",
            "failed_parents",
            "batch_config",
            "batch_cursor",
            "checkpoint",
            "correlation_id",
        ] {
            assert!(wire.get(field).is_some(), "{field} missing from {wire}");
        }
        assert_eq!(wire["batch_cursor"]["end_cursor"], 200);
        let back: StepContextData = serde_json::from_value(wire).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn a_step_without_a_cursor_is_not_a_batch_worker() {
        let ctx = StepContext::new(StepContextData {
            step_name: "plain".into(),
            ..StepContextData::default()
        });
        let err = ctx.batch_cursor().unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.message().contains("plain"), "{err}");
    }
}

//! The handler outcome envelope: what one attempt of a handler produced, in
//! one shape for every language (ARCHITECTURE §4). Bindings map exceptions
//! onto [`StepFailure`]; nothing downstream inspects message strings.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result of one handler attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepOutcome {
    /// The handler finished. `result` is what dependents receive.
    Success {
        /// The handler's result (any JSON).
        result: Value,
        /// For decision and batchable steps: what to create next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        control: Option<FlowControl>,
    },
    /// The handler failed.
    Failure {
        /// What went wrong and whether to retry.
        error: StepFailure,
    },
}

/// A failed attempt, described for orchestration and operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    /// The category: `handler_error`, `timeout`, `panic`, `exception`,
    /// `lease_expired`, `invalid_result`, `handler_not_found`, or a handler's
    /// own. A serialised failure that omits it is a `handler_error`.
    #[serde(default = "default_error_type")]
    pub error_type: String,
    /// A human-readable explanation.
    pub message: String,
    /// Whether another attempt may help.
    pub retryable: bool,
    /// An application error code, if the handler gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Extra structured context.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
    /// A delay the handler asks for before the next attempt (wins over the
    /// policy's backoff, still capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

fn default_error_type() -> String {
    error_types::HANDLER_ERROR.to_owned()
}

impl StepFailure {
    /// A failure of kind `error_type` that may be retried.
    pub fn retryable(error_type: &str, message: impl Into<String>) -> Self {
        Self::new(error_type, message, true)
    }

    /// A failure of kind `error_type` that must not be retried.
    pub fn permanent(error_type: &str, message: impl Into<String>) -> Self {
        Self::new(error_type, message, false)
    }

    fn new(error_type: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            error_type: error_type.to_owned(),
            message: message.into(),
            retryable,
            code: None,
            details: Value::Null,
            retry_after_ms: None,
        }
    }

    /// The worker holding the lease of the last attempt stopped renewing it.
    pub fn lease_expired(worker: Option<&str>) -> Self {
        Self::permanent(
            error_types::LEASE_EXPIRED,
            format!(
                "worker {} stopped renewing its lease on the last attempt",
                worker.unwrap_or("unknown")
            ),
        )
    }

    /// A success orchestration cannot apply (its outcome breaks the rules).
    pub fn invalid_result(message: impl Into<String>) -> Self {
        Self::permanent(error_types::INVALID_RESULT, message)
    }

    /// The staleness detector gave up on a step that made no progress.
    pub fn staleness_timeout(detail: &str) -> Self {
        Self::permanent(
            error_types::STALENESS_TIMEOUT,
            format!("the staleness detector gave up on this step: {detail}"),
        )
    }

    /// Reads a stored failure envelope. One that does not parse is not
    /// guessed at: it becomes a permanent `unreadable_failure` that keeps
    /// the stored value in `details`, so the step stops and says why
    /// instead of retrying on an assumption.
    pub fn from_stored(stored: &Value) -> Self {
        match serde_json::from_value::<StepFailure>(stored.clone()) {
            Ok(failure) => failure,
            Err(err) => Self {
                details: serde_json::json!({ "stored": stored }),
                ..Self::permanent(
                    error_types::UNREADABLE_FAILURE,
                    format!("the attempt's failure envelope could not be read: {err}"),
                )
            },
        }
    }

    /// The envelope as stored in `workflow_steps.last_error`.
    pub fn to_stored(&self) -> Value {
        // Infallible: every field is a string, bool, number, option or JSON
        // value, and maps have string keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Error categories the runtime itself produces.
pub mod error_types {
    /// The handler returned an error.
    pub const HANDLER_ERROR: &str = "handler_error";
    /// The attempt overran its timeout.
    pub const TIMEOUT: &str = "timeout";
    /// A Rust handler panicked.
    pub const PANIC: &str = "panic";
    /// A foreign-language handler raised an exception other than the
    /// binding's retryable / permanent errors.
    pub const EXCEPTION: &str = "exception";
    /// The worker holding the lease disappeared and no attempts were left.
    pub const LEASE_EXPIRED: &str = "lease_expired";
    /// The handler's result broke the step's `result_schema` or the outcome rules.
    pub const INVALID_RESULT: &str = "invalid_result";
    /// No handler is registered for the step's callable.
    pub const HANDLER_NOT_FOUND: &str = "handler_not_found";
    /// The staleness detector gave up on a step that made no progress.
    pub const STALENESS_TIMEOUT: &str = "staleness_timeout";
    /// A stored failure envelope could not be read.
    pub const UNREADABLE_FAILURE: &str = "unreadable_failure";

    /// Every category the runtime produces; handlers may add their own.
    pub const ALL: &[&str] = &[
        HANDLER_ERROR,
        TIMEOUT,
        PANIC,
        EXCEPTION,
        LEASE_EXPIRED,
        INVALID_RESULT,
        HANDLER_NOT_FOUND,
        STALENESS_TIMEOUT,
        UNREADABLE_FAILURE,
    ];
}

/// What a decision or batchable handler asks orchestration to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FlowControl {
    /// A decision's choice (SPEC §4.6).
    Decision(DecisionOutcome),
    /// A batchable step's plan (SPEC §4.7).
    Batches(BatchOutcome),
}

/// A decision step's choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// Create these downstream steps (and what hangs below them).
    CreateSteps {
        /// Names of steps reachable from the decision in the template.
        steps: Vec<String>,
    },
    /// Create nothing; downstream convergence proceeds without branches.
    NoBranches,
}

/// A batchable step's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Clone the batch worker once per cursor.
    CreateBatches {
        /// How many workers the handler planned (informational).
        worker_count: u32,
        /// One entry per batch.
        cursor_configs: Vec<CursorConfig>,
    },
    /// Nothing to process; convergence still runs.
    NoBatches,
}

/// The slice of a dataset one batch worker processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CursorConfig {
    /// Unique within the batch; the clone is named `<worker>_<batch_id>`.
    pub batch_id: String,
    /// Where the batch starts (inclusive).
    pub start_cursor: Value,
    /// Where the batch ends (exclusive).
    pub end_cursor: Value,
    /// Items per unit of work within the batch.
    pub batch_size: u64,
}

/// Where a batch worker got to (SPEC §4.7): saved while it runs, handed to
/// the next attempt so it resumes there instead of at the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where to resume (the next item to process).
    pub cursor: Value,
    /// Items processed so far, across attempts.
    pub items_processed: u64,
    /// What the items processed so far added up to.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub partial_results: Value,
}

impl StepOutcome {
    /// A plain success.
    pub fn success(result: Value) -> Self {
        StepOutcome::Success {
            result,
            control: None,
        }
    }

    /// A failure that may be retried.
    pub fn retryable(error_type: &str, message: impl Into<String>) -> Self {
        Self::failure(error_type, message, true)
    }

    /// A failure that must not be retried.
    pub fn permanent(error_type: &str, message: impl Into<String>) -> Self {
        Self::failure(error_type, message, false)
    }

    fn failure(error_type: &str, message: impl Into<String>, retryable: bool) -> Self {
        StepOutcome::Failure {
            error: StepFailure::new(error_type, message, retryable),
        }
    }

    /// Whether the attempt succeeded.
    pub const fn is_success(&self) -> bool {
        matches!(self, StepOutcome::Success { .. })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn success_and_failure_have_a_stable_wire_shape() {
        assert_eq!(
            serde_json::to_value(StepOutcome::success(json!({"value": 36}))).unwrap(),
            json!({"status": "success", "result": {"value": 36}})
        );
        assert_eq!(
            serde_json::to_value(StepOutcome::retryable("timeout", "took too long")).unwrap(),
            json!({"status": "failure", "error": {
                "error_type": "timeout", "message": "took too long", "retryable": true
            }})
        );
    }

    #[test]
    fn a_stored_failure_round_trips_and_an_unreadable_one_is_permanent() {
        let failure = StepFailure {
            code: Some("E42".into()),
            retry_after_ms: Some(250),
            ..StepFailure::retryable(error_types::TIMEOUT, "took too long")
        };
        assert_eq!(StepFailure::from_stored(&failure.to_stored()), failure);
        // What a foreign worker may send: only a message and a verdict.
        let minimal = StepFailure::from_stored(&json!({"message": "no", "retryable": true}));
        assert_eq!(minimal.error_type, error_types::HANDLER_ERROR);
        assert!(minimal.retryable);

        let garbage = json!({"retryable": "maybe"});
        let unreadable = StepFailure::from_stored(&garbage);
        assert_eq!(unreadable.error_type, error_types::UNREADABLE_FAILURE);
        assert!(
            !unreadable.retryable,
            "an unreadable envelope is never guessed retryable"
        );
        assert_eq!(unreadable.details, json!({"stored": garbage}));
    }

    #[test]
    fn the_runtimes_failure_kinds_are_named_and_listed() {
        let kinds = [
            StepFailure::lease_expired(Some("w-1")),
            StepFailure::invalid_result("bad"),
            StepFailure::staleness_timeout("no progress"),
            StepFailure::from_stored(&Value::Null),
        ];
        for failure in &kinds {
            assert!(!failure.retryable, "{failure:?}");
            assert!(error_types::ALL.contains(&failure.error_type.as_str()));
        }
        assert!(kinds[0].message.contains("w-1"));
        let mut all = error_types::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            error_types::ALL.len(),
            "no category listed twice"
        );
    }

    #[test]
    fn decision_and_batch_outcomes_parse_from_foreign_languages() {
        let decision: StepOutcome = serde_json::from_value(json!({
            "status": "success",
            "result": {"route": "manager"},
            "control": {"type": "decision", "outcome": "create_steps", "steps": ["manager_approval"]}
        }))
        .unwrap();
        assert_eq!(
            decision,
            StepOutcome::Success {
                result: json!({"route": "manager"}),
                control: Some(FlowControl::Decision(DecisionOutcome::CreateSteps {
                    steps: vec!["manager_approval".into()]
                })),
            }
        );
        let failure: StepOutcome = serde_json::from_value(json!({
            "status": "failure",
            "error": {"message": "card declined", "retryable": false, "code": "card_declined"}
        }))
        .unwrap();
        let StepOutcome::Failure { error } = failure else {
            panic!("a failure")
        };
        assert_eq!(error.error_type, "handler_error");
        assert_eq!(error.code.as_deref(), Some("card_declined"));
        let batches: StepOutcome = serde_json::from_value(json!({
            "status": "success",
            "result": {},
            "control": {"type": "batches", "outcome": "create_batches", "worker_count": 1,
                "cursor_configs": [{"batch_id": "001", "start_cursor": 0, "end_cursor": 100, "batch_size": 100}]}
        }))
        .unwrap();
        assert!(matches!(
            batches,
            StepOutcome::Success {
                control: Some(FlowControl::Batches(BatchOutcome::CreateBatches { .. })),
                ..
            }
        ));
    }
}

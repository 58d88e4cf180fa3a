//! What a step handler is: one async function from a [`StepContext`] to a
//! [`HandlerResult`] (SPEC §7). Handlers should be idempotent: execution is
//! at least once, acceptance exactly once per attempt (SPEC §4.3).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tasker_types::outcome::{
    BatchOutcome, CursorConfig, DecisionOutcome, FlowControl, StepFailure, StepOutcome, error_types,
};

use crate::context::StepContext;

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

impl From<StepFailure> for HandlerError {
    /// The envelope's failure as a handler error, losing nothing (what a
    /// foreign-language handler reported, back in Rust's terms).
    fn from(failure: StepFailure) -> Self {
        let mut error = Self::new(failure.message, failure.retryable);
        if failure.error_type != error_types::HANDLER_ERROR {
            error = error.with_error_type(failure.error_type);
        }
        if let Some(code) = failure.code {
            error = error.with_code(code);
        }
        if !failure.details.is_null() {
            error = error.with_details(failure.details);
        }
        if let Some(ms) = failure.retry_after_ms {
            error = error.retry_after(Duration::from_millis(ms));
        }
        error
    }
}

/// The envelope's success or failure as a handler's answer.
pub fn from_outcome(outcome: StepOutcome) -> HandlerResult {
    match outcome {
        StepOutcome::Success { result, control } => Ok(Success { result, control }),
        StepOutcome::Failure { error } => Err(error.into()),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_envelope_survives_the_trip_through_a_handler_result() {
        let failure = StepOutcome::Failure {
            error: StepFailure {
                error_type: "exception".into(),
                message: "ValueError: bad row".into(),
                retryable: true,
                code: Some("bad_row".into()),
                details: json!({"traceback": "..."}),
                retry_after_ms: Some(250),
            },
        };
        assert_eq!(to_outcome(from_outcome(failure.clone())), failure);
        let plain = StepOutcome::permanent(error_types::HANDLER_ERROR, "no");
        assert_eq!(to_outcome(from_outcome(plain.clone())), plain);
        let decision = to_outcome(Ok(Success::create_steps(json!({}), ["a"])));
        assert_eq!(to_outcome(from_outcome(decision.clone())), decision);
    }
}

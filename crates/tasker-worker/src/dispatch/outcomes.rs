//! How what a foreign handler did becomes the outcome envelope — once, here,
//! for every language.

use serde_json::json;
use tasker_types::outcome::{StepFailure, StepOutcome, error_types};

/// The outcome of a handler that raised an exception other than the
/// binding's `RetryableError` / `PermanentError`: a **retryable** failure
/// (like an activity error in most engines, an unexpected exception is
/// often transient; the step's retry policy bounds it), of type
/// `exception`, whose message is `"<type>: <message>"` and whose details
/// carry the exception type and backtrace.
///
/// ```
/// use tasker_worker::dispatch::exception_outcome;
/// use tasker_types::outcome::StepOutcome;
///
/// let outcome = exception_outcome("ValueError", "bad row 7", Some("File \"h.py\", line 3"));
/// let StepOutcome::Failure { error } = outcome else { unreachable!() };
/// assert_eq!(error.message, "ValueError: bad row 7");
/// assert!(error.retryable);
/// assert_eq!(error.details["backtrace"], "File \"h.py\", line 3");
/// ```
pub fn exception_outcome(kind: &str, message: &str, backtrace: Option<&str>) -> StepOutcome {
    let message = if message.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {message}")
    };
    StepOutcome::Failure {
        error: StepFailure {
            error_type: error_types::EXCEPTION.to_owned(),
            message,
            retryable: true,
            code: None,
            details: json!({ "exception_type": kind, "backtrace": backtrace }),
            retry_after_ms: None,
        },
    }
}

/// The outcome of a handler whose result cannot be sent (not JSON: a set, a
/// date, a NaN, a cycle…): a permanent `invalid_result` failure naming why.
pub fn invalid_result_outcome(detail: &str) -> StepOutcome {
    StepOutcome::permanent(
        error_types::INVALID_RESULT,
        format!("the handler's result is not JSON: {detail}"),
    )
}

/// The envelope a binding serialised (`{"status": "success", "result": …}`
/// or `{"status": "failure", "error": {…}}`); one that does not parse is a
/// permanent `invalid_result` failure saying why, never a crashed worker.
pub fn parse_outcome(json: &str) -> StepOutcome {
    serde_json::from_str(json).unwrap_or_else(|err| {
        StepOutcome::permanent(
            error_types::INVALID_RESULT,
            format!("the handler's outcome does not parse: {err}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn failure(outcome: StepOutcome) -> StepFailure {
        match outcome {
            StepOutcome::Failure { error } => error,
            StepOutcome::Success { .. } => panic!("expected a failure"),
        }
    }

    #[test]
    fn an_exception_is_a_retryable_failure_with_its_backtrace() {
        let error = failure(exception_outcome("KeyError", "'sku'", Some("tb")));
        assert_eq!(error.error_type, "exception");
        assert_eq!(error.message, "KeyError: 'sku'");
        assert_eq!(
            error.details,
            json!({"exception_type": "KeyError", "backtrace": "tb"})
        );
        assert!(error.retryable);
        assert_eq!(failure(exception_outcome("Boom", "", None)).message, "Boom");
    }

    #[test]
    fn an_unserialisable_result_fails_permanently() {
        let error = failure(invalid_result_outcome(
            "Object of type set is not JSON serializable",
        ));
        assert_eq!(error.error_type, "invalid_result");
        assert!(!error.retryable);
        assert!(
            error.message.contains("set is not JSON"),
            "{}",
            error.message
        );
    }

    #[test]
    fn envelopes_parse_and_garbage_is_an_invalid_result() {
        assert_eq!(
            parse_outcome(r#"{"status": "success", "result": {"value": 36}}"#),
            StepOutcome::success(json!({"value": 36}))
        );
        let error = failure(parse_outcome(r#"{"status": "maybe"}"#));
        assert_eq!(error.error_type, "invalid_result");
        assert!(!error.retryable);
        let error = failure(parse_outcome("{"));
        assert!(
            error.message.contains("does not parse"),
            "{}",
            error.message
        );
    }
}

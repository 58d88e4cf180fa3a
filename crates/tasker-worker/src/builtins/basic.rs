//! `tasker::noop`, `tasker::echo`, `tasker::sleep` and `tasker::fail`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::StepContext;
use crate::handler::{HandlerError, HandlerResult, StepHandler, Success};

/// `tasker::noop` → `{}`.
pub(crate) struct Noop;

#[async_trait]
impl StepHandler for Noop {
    async fn call(&self, _ctx: StepContext) -> HandlerResult {
        Ok(Success::new(json!({})))
    }
}

/// `tasker::echo` → `{"context": <task context>, "dependencies": <dependency_results>}`.
pub(crate) struct Echo;

#[async_trait]
impl StepHandler for Echo {
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        Ok(Success::new(json!({
            "context": ctx.context,
            "dependencies": ctx.dependency_results,
        })))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepInit {
    ms: u64,
}

/// `tasker::sleep` (`ms`) → `{"slept_ms": ms}`; stops early, failing, when cancelled.
pub(crate) struct Sleep;

#[async_trait]
impl StepHandler for Sleep {
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        let init: SleepInit = ctx.initialization_as()?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(init.ms)) => Ok(Success::new(json!({ "slept_ms": init.ms }))),
            () = ctx.cancellation().cancelled() => Err(HandlerError::retryable("sleep cancelled").with_error_type("cancelled")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailInit {
    fail_times: Option<u32>,
    #[serde(default = "yes")]
    retryable: bool,
    message: Option<String>,
}

fn yes() -> bool {
    true
}

/// `tasker::fail` (`fail_times` default always, `retryable` default true,
/// `message`): fails while `attempt <= fail_times`, then `{"attempts": attempt}`.
pub(crate) struct Fail;

#[async_trait]
impl StepHandler for Fail {
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        let init: FailInit = if ctx.initialization.is_null() {
            FailInit {
                fail_times: None,
                retryable: true,
                message: None,
            }
        } else {
            ctx.initialization_as()?
        };
        let failing = init.fail_times.is_none_or(|times| ctx.attempt <= times);
        if !failing {
            return Ok(Success::new(json!({ "attempts": ctx.attempt })));
        }
        let message = init
            .message
            .unwrap_or_else(|| format!("tasker::fail failed attempt {}", ctx.attempt));
        let error = if init.retryable {
            HandlerError::retryable(message)
        } else {
            HandlerError::permanent(message)
        };
        Err(error.with_details(Value::from(ctx.attempt)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::test_support::ctx;

    #[tokio::test]
    async fn noop_and_echo() {
        assert_eq!(
            Noop.call(ctx(json!({}), json!({}), 1))
                .await
                .unwrap()
                .result,
            json!({})
        );
        let mut c = ctx(json!({"a": 1}), json!({}), 1);
        c.dependency_results.insert("p".into(), json!({"v": 2}));
        assert_eq!(
            Echo.call(c).await.unwrap().result,
            json!({"context": {"a": 1}, "dependencies": {"p": {"v": 2}}})
        );
    }

    #[tokio::test]
    async fn fail_fails_while_attempt_is_at_most_fail_times() {
        let init = json!({"fail_times": 2, "message": "boom"});
        for attempt in 1..=2 {
            let err = Fail
                .call(ctx(json!({}), init.clone(), attempt))
                .await
                .unwrap_err();
            assert!(err.is_retryable());
            assert_eq!(err.message(), "boom");
        }
        let ok = Fail.call(ctx(json!({}), init, 3)).await.unwrap();
        assert_eq!(ok.result, json!({"attempts": 3}));
        let always = Fail
            .call(ctx(json!({}), json!({"retryable": false}), 50))
            .await
            .unwrap_err();
        assert!(!always.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_sleeps_and_honours_cancellation() {
        let ok = Sleep
            .call(ctx(json!({}), json!({"ms": 250}), 1))
            .await
            .unwrap();
        assert_eq!(ok.result, json!({"slept_ms": 250}));
        let c = ctx(json!({}), json!({"ms": 60_000}), 1);
        c.cancellation().cancel();
        let err = Sleep.call(c).await.unwrap_err();
        assert_eq!(err.error_type(), "cancelled");
        let bad = Sleep
            .call(ctx(json!({}), json!({"seconds": 1}), 1))
            .await
            .unwrap_err();
        assert!(!bad.is_retryable() && bad.message().contains("invalid handler initialization"));
    }
}

//! Handlers of the linear, diamond, tree and mixed-DAG examples: each reads
//! the `value` of its parents (or the task context, at the root) and returns
//! `{"value": n}`. Arithmetic is checked: an overflow fails the step
//! permanently instead of wrapping.

use serde_json::json;
use tasker_worker::{HandlerError, HandlerRegistry, StepContext, Success};

pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("examples::square", |ctx| async move {
            let [x] = inputs(&ctx)?[..] else {
                return Err(HandlerError::permanent(
                    "examples::square takes exactly one parent",
                ));
            };
            let value = x.checked_mul(x).ok_or_else(|| overflow(&ctx))?;
            Ok(Success::new(json!({ "value": value })))
        })
        .register_fn("examples::sum", |ctx| async move {
            let value = inputs(&ctx)?
                .into_iter()
                .try_fold(0i64, i64::checked_add)
                .ok_or_else(|| overflow(&ctx))?;
            Ok(Success::new(json!({ "value": value })))
        })
        .register_fn("examples::product", |ctx| async move {
            let value = inputs(&ctx)?
                .into_iter()
                .try_fold(1i64, i64::checked_mul)
                .ok_or_else(|| overflow(&ctx))?;
            Ok(Success::new(json!({ "value": value })))
        });
}

/// The parents' values, or the context's `value` for a root step.
fn inputs(ctx: &StepContext) -> Result<Vec<i64>, HandlerError> {
    if ctx.direct_parents.is_empty() {
        let value = ctx.context["value"]
            .as_i64()
            .ok_or_else(|| HandlerError::permanent("context.value must be an integer"))?;
        return Ok(vec![value]);
    }
    ctx.parent_results()
        .map(|(parent, result)| {
            result["value"].as_i64().ok_or_else(|| {
                HandlerError::permanent(format!(
                    "parent `{parent}` did not return an integer value"
                ))
            })
        })
        .collect()
}

fn overflow(ctx: &StepContext) -> HandlerError {
    HandlerError::permanent(format!(
        "step `{}` overflowed a 64-bit integer",
        ctx.step_name
    ))
}

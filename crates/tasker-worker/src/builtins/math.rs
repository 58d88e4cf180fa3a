//! `tasker::math`: `square`, `add` and `multiply` over 64-bit integers.
//! Inputs are the `value` of each direct parent's result; a root step takes
//! `context[input_field]`. Overflow, a missing or non-integer input is a
//! permanent failure that says which.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::context::StepContext;
use crate::handler::{HandlerError, HandlerResult, StepHandler, Success};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Operation {
    Square,
    Add,
    Multiply,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MathInit {
    operation: Operation,
    constant: Option<i64>,
    #[serde(default = "value_field")]
    input_field: String,
}

fn value_field() -> String {
    "value".into()
}

pub(crate) struct Math;

#[async_trait]
impl StepHandler for Math {
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        let init: MathInit = ctx.initialization_as()?;
        let inputs = inputs(&ctx, &init.input_field)?;
        let value = match init.operation {
            Operation::Square => {
                let [x] = inputs.as_slice() else {
                    return Err(HandlerError::permanent(format!(
                        "square needs exactly one input, got {}",
                        inputs.len()
                    )));
                };
                x.checked_mul(*x).ok_or_else(|| {
                    HandlerError::permanent(format!("square of {x} overflows a 64-bit integer"))
                })?
            }
            Operation::Add => inputs
                .iter()
                .try_fold(init.constant.unwrap_or(0), |acc, x| acc.checked_add(*x))
                .ok_or_else(|| {
                    HandlerError::permanent(format!("sum of {inputs:?} overflows a 64-bit integer"))
                })?,
            Operation::Multiply => inputs
                .iter()
                .try_fold(init.constant.unwrap_or(1), |acc, x| acc.checked_mul(*x))
                .ok_or_else(|| {
                    HandlerError::permanent(format!(
                        "product of {inputs:?} overflows a 64-bit integer"
                    ))
                })?,
        };
        Ok(Success::new(json!({ "value": value })))
    }
}

fn inputs(ctx: &StepContext, input_field: &str) -> Result<Vec<i64>, HandlerError> {
    if ctx.direct_parents.is_empty() {
        let raw = ctx.context.get(input_field).ok_or_else(|| {
            HandlerError::permanent(format!("context has no `{input_field}` for this root step"))
        })?;
        let value = raw.as_i64().ok_or_else(|| {
            HandlerError::permanent(format!(
                "context `{input_field}` is not a 64-bit integer: {raw}"
            ))
        })?;
        return Ok(vec![value]);
    }
    ctx.direct_parents
        .iter()
        .map(|parent| {
            let result = ctx.dependency_results.get(parent).ok_or_else(|| {
                HandlerError::permanent(format!("parent `{parent}` has no result"))
            })?;
            let value = result.get("value").ok_or_else(|| {
                HandlerError::permanent(format!(
                    "parent `{parent}` result has no `value`: {result}"
                ))
            })?;
            value.as_i64().ok_or_else(|| {
                HandlerError::permanent(format!(
                    "parent `{parent}` value is not a 64-bit integer: {value}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::builtins::test_support::ctx;

    fn with_parents(init: Value, parents: &[(&str, Value)]) -> StepContext {
        let mut c = ctx(json!({}), init, 1);
        for (name, result) in parents {
            c.direct_parents.push((*name).into());
            c.dependency_results.insert((*name).into(), result.clone());
        }
        c
    }

    #[tokio::test]
    async fn a_root_reads_the_context_field() {
        let c = ctx(
            json!({"n": 7}),
            json!({"operation": "square", "input_field": "n"}),
            1,
        );
        assert_eq!(Math.call(c).await.unwrap().result, json!({"value": 49}));
    }

    #[tokio::test]
    async fn add_and_multiply_fold_parents_with_their_constant() {
        let parents = [("a", json!({"value": 3})), ("b", json!({"value": 4}))];
        let add = with_parents(json!({"operation": "add", "constant": 10}), &parents);
        assert_eq!(Math.call(add).await.unwrap().result, json!({"value": 17}));
        let mul = with_parents(json!({"operation": "multiply"}), &parents);
        assert_eq!(Math.call(mul).await.unwrap().result, json!({"value": 12}));
        let mul_c = with_parents(json!({"operation": "multiply", "constant": -2}), &parents);
        assert_eq!(
            Math.call(mul_c).await.unwrap().result,
            json!({"value": -24})
        );
    }

    #[tokio::test]
    async fn errors_are_permanent_and_say_which() {
        let cases = [
            (
                with_parents(
                    json!({"operation": "square"}),
                    &[("a", json!({"value": 3_037_000_500_i64}))],
                ),
                "square of 3037000500 overflows a 64-bit integer",
            ),
            (
                with_parents(
                    json!({"operation": "square"}),
                    &[("a", json!({"value": 1})), ("b", json!({"value": 2}))],
                ),
                "square needs exactly one input, got 2",
            ),
            (
                with_parents(json!({"operation": "add"}), &[("a", json!({"total": 1}))]),
                "parent `a` result has no `value`: {\"total\":1}",
            ),
            (
                with_parents(json!({"operation": "add"}), &[("a", json!({"value": "1"}))]),
                "parent `a` value is not a 64-bit integer: \"1\"",
            ),
            (
                ctx(json!({}), json!({"operation": "add"}), 1),
                "context has no `value` for this root step",
            ),
            (
                ctx(json!({"value": 1.5}), json!({"operation": "add"}), 1),
                "context `value` is not a 64-bit integer: 1.5",
            ),
        ];
        for (c, message) in cases {
            let err = Math.call(c).await.unwrap_err();
            assert!(!err.is_retryable());
            assert_eq!(err.message(), message);
        }
        let bad_op = Math
            .call(ctx(json!({"value": 1}), json!({"operation": "divide"}), 1))
            .await
            .unwrap_err();
        assert!(
            bad_op
                .message()
                .starts_with("invalid handler initialization"),
            "{}",
            bad_op.message()
        );
    }
}

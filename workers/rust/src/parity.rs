//! Handlers of the diamond + decision + batch example: a diamond splits a
//! list of numbers into evens and odds, a decision picks the parity with
//! more numbers (evens on a tie), that parity's numbers are squared in
//! parallel batches, and a convergence step adds them up.

use serde_json::{Value, json};
use tasker_types::outcome::CursorConfig;
use tasker_worker::{HandlerError, HandlerRegistry, StepContext, Success};

fn numbers_of(result: Option<&Value>, step: &str) -> Result<Vec<i64>, HandlerError> {
    result
        .and_then(|r| r["numbers"].as_array())
        .ok_or_else(|| HandlerError::permanent(format!("`{step}` gave no numbers")))?
        .iter()
        .map(|n| {
            n.as_i64()
                .ok_or_else(|| HandlerError::permanent(format!("`{step}` gave a non-integer")))
        })
        .collect()
}

fn select(ctx: &StepContext, even: bool) -> Result<Success, HandlerError> {
    let numbers = numbers_of(ctx.dependency("diamond_start"), "diamond_start")?;
    let chosen: Vec<i64> = numbers
        .into_iter()
        .filter(|n| (n % 2 == 0) == even)
        .collect();
    Ok(Success::new(
        json!({ "numbers": chosen, "count": chosen.len() }),
    ))
}

/// The batchable step for `parity` and the one for the other parity.
fn analyzer(even: bool) -> &'static str {
    if even {
        "even_batch_analyzer"
    } else {
        "odd_batch_analyzer"
    }
}

pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("parity::load_numbers", |ctx| async move {
            let numbers = numbers_of(Some(&ctx.context), "the task context")?;
            Ok(Success::new(json!({ "numbers": numbers })))
        })
        .register_fn(
            "parity::select_evens",
            |ctx| async move { select(&ctx, true) },
        )
        .register_fn(
            "parity::select_odds",
            |ctx| async move { select(&ctx, false) },
        )
        .register_fn("parity::choose_dominant", |ctx| async move {
            let evens = numbers_of(ctx.dependency("branch_evens"), "branch_evens")?.len();
            let odds = numbers_of(ctx.dependency("branch_odds"), "branch_odds")?.len();
            let even = evens >= odds;
            Ok(Success::create_steps(
                json!({
                    "dominant": if even { "even" } else { "odd" },
                    "even_count": evens,
                    "odd_count": odds,
                }),
                [analyzer(even)],
            ))
        })
        .register_fn("parity::plan_batches", |ctx| async move {
            let source = ctx.initialization["source"]
                .as_str()
                .ok_or_else(|| HandlerError::permanent("initialization needs `source`"))?
                .to_owned();
            let numbers = numbers_of(ctx.dependency(&source), &source)?;
            let size = ctx.batch_config.as_ref().map_or(5, |c| c.batch_size).max(1);
            let count = numbers.len() as u64;
            let result = json!({ "source": source, "numbers": numbers });
            if count == 0 {
                return Ok(Success::no_batches(result));
            }
            let cursors = (0..count.div_ceil(size))
                .map(|i| CursorConfig {
                    batch_id: format!("{i}"),
                    start_cursor: json!(i * size),
                    end_cursor: json!(((i + 1) * size).min(count)),
                    batch_size: size,
                })
                .collect();
            Ok(Success::create_batches(result, cursors))
        })
        .register_fn("parity::process_batch", |ctx| async move {
            let cursor = ctx.batch_cursor()?;
            let (analyzer, planned) = ctx
                .parent_results()
                .next()
                .ok_or_else(|| HandlerError::permanent("a batch worker needs its analyzer"))?;
            let numbers = numbers_of(Some(planned), analyzer)?;
            let index = |v: &Value| {
                v.as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| HandlerError::permanent("cursors must be indexes"))
            };
            let (start, end) = (index(&cursor.start_cursor)?, index(&cursor.end_cursor)?);
            let slice = numbers
                .get(start..end)
                .ok_or_else(|| HandlerError::permanent("cursor outside the numbers"))?;
            let squares = slice
                .iter()
                .try_fold(0i64, |acc, n| {
                    n.checked_mul(*n).and_then(|sq| acc.checked_add(sq))
                })
                .ok_or_else(|| HandlerError::permanent("sum of squares overflows"))?;
            Ok(Success::new(json!({
                "batch_id": cursor.batch_id,
                "count": slice.len(),
                "sum": slice.iter().sum::<i64>(),
                "sum_of_squares": squares,
            })))
        })
        .register_fn("parity::combine_batches", |ctx| async move {
            let dominant = ctx
                .dependency("routing_decision")
                .map_or(Value::Null, |r| r["dominant"].clone());
            let (mut batches, mut count, mut sum, mut squares) = (0, 0, 0i64, 0i64);
            for (_, result) in ctx.parent_results() {
                if result.get("batch_id").is_none() {
                    continue;
                }
                batches += 1;
                count += result["count"].as_u64().unwrap_or(0);
                sum += result["sum"].as_i64().unwrap_or(0);
                squares += result["sum_of_squares"].as_i64().unwrap_or(0);
            }
            Ok(Success::new(json!({
                "dominant": dominant,
                "batches": batches,
                "count": count,
                "sum": sum,
                "sum_of_squares": squares,
            })))
        });
}

//! Handlers of the CSV batch example (SPEC §4.7): count a file's rows and
//! plan one batch per range, sum each range in a batch worker that
//! checkpoints as it goes (a retried attempt resumes from its checkpoint,
//! so no row is counted twice), and add the batches up.
//!
//! Failures for demonstrations and tests come from the task context:
//! `fail_on_row: n` makes the attempt that reaches data row `n` fail
//! (retryably) once, after the checkpoints before it were saved;
//! `fail_batch: "<batch_id>"` fails that batch permanently.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tasker_types::outcome::{Checkpoint, CursorConfig};
use tasker_worker::{HandlerError, HandlerRegistry, StepContext, Success};

/// The file shipped with this crate, for the demo and tests.
pub fn sample_csv_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/products.csv")
}

#[derive(Deserialize)]
struct Input {
    csv_file_path: String,
    #[serde(default)]
    fail_on_row: Option<u64>,
    #[serde(default)]
    fail_batch: Option<String>,
}

/// What a range of rows adds up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Totals {
    rows: u64,
    quantity: i64,
    value_cents: i64,
}

impl Totals {
    fn add(&mut self, other: Totals) -> Result<(), HandlerError> {
        let overflow = || HandlerError::permanent("totals overflow");
        self.rows += other.rows;
        self.quantity = self
            .quantity
            .checked_add(other.quantity)
            .ok_or_else(overflow)?;
        self.value_cents = self
            .value_cents
            .checked_add(other.value_cents)
            .ok_or_else(overflow)?;
        Ok(())
    }
}

fn read_rows(path: &str) -> Result<Vec<String>, HandlerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HandlerError::permanent(format!("cannot read {path}: {e}")))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// `quantity × unit_price_cents` of one `sku,name,category,quantity,unit_price_cents` row.
fn row_totals(line: &str, number: u64) -> Result<Totals, HandlerError> {
    let fields: Vec<&str> = line.split(',').collect();
    let field = |i: usize, name: &str| -> Result<i64, HandlerError> {
        fields
            .get(i)
            .and_then(|f| f.trim().parse().ok())
            .ok_or_else(|| {
                HandlerError::permanent(format!("row {number}: `{name}` is not an integer"))
            })
    };
    let quantity = field(3, "quantity")?;
    let price = field(4, "unit_price_cents")?;
    Ok(Totals {
        rows: 1,
        quantity,
        value_cents: quantity
            .checked_mul(price)
            .ok_or_else(|| HandlerError::permanent(format!("row {number}: value overflows")))?,
    })
}

fn plan(rows: u64, batch_size: u64) -> Vec<CursorConfig> {
    let size = batch_size.max(1);
    (0..rows.div_ceil(size))
        .map(|i| CursorConfig {
            batch_id: format!("{:03}", i + 1),
            start_cursor: json!(i * size),
            end_cursor: json!(((i + 1) * size).min(rows)),
            batch_size: size,
        })
        .collect()
}

async fn process_batch(ctx: StepContext) -> Result<Success, HandlerError> {
    let input: Input = ctx.context_as()?;
    let cursor = ctx.batch_cursor()?;
    if input.fail_batch.as_deref() == Some(cursor.batch_id.as_str()) {
        return Err(HandlerError::permanent(format!(
            "batch {} is marked to fail",
            cursor.batch_id
        )));
    }
    let every = ctx.initialization["checkpoint_every"]
        .as_u64()
        .unwrap_or(100)
        .max(1);
    let bound = |v: &serde_json::Value| {
        v.as_u64()
            .ok_or_else(|| HandlerError::permanent("batch cursors must be row indexes"))
    };
    let (start, end) = (bound(&cursor.start_cursor)?, bound(&cursor.end_cursor)?);
    // Resume where an earlier attempt left off, with what it had counted.
    let (mut next, mut totals) = match &ctx.checkpoint {
        Some(c) => (
            bound(&c.cursor)?,
            serde_json::from_value::<Totals>(c.partial_results.clone())
                .map_err(|e| HandlerError::permanent(format!("checkpoint does not parse: {e}")))?,
        ),
        None => (start, Totals::default()),
    };
    let resumed_from = next;
    let rows = read_rows(&input.csv_file_path)?;
    while next < end {
        // Data rows are numbered from 1, as a spreadsheet shows them.
        let number = next + 1;
        if input.fail_on_row == Some(number) && ctx.attempt == 1 {
            return Err(HandlerError::retryable(format!(
                "simulated crash at row {number}"
            )));
        }
        let line = usize::try_from(next)
            .ok()
            .and_then(|i| rows.get(i))
            .ok_or_else(|| HandlerError::permanent(format!("row {number} is past the end")))?;
        totals.add(row_totals(line, number)?)?;
        next += 1;
        if (next - start) % every == 0 && next < end {
            ctx.save_checkpoint(Checkpoint {
                cursor: json!(next),
                items_processed: totals.rows,
                partial_results: json!(totals),
            })
            .await?;
        }
    }
    Ok(Success::new(json!({
        "batch_id": cursor.batch_id,
        "first_row": start + 1,
        "last_row": end,
        "resumed_from_row": resumed_from + 1,
        "rows_processed": totals.rows,
        "total_quantity": totals.quantity,
        "total_value_cents": totals.value_cents,
    })))
}

pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("csv::analyze_csv", |ctx| async move {
            let input: Input = ctx.context_as()?;
            let rows = read_rows(&input.csv_file_path)?.len() as u64;
            let batch_size = ctx.batch_config.as_ref().map_or(100, |c| c.batch_size);
            let result = json!({ "csv_file_path": input.csv_file_path, "total_rows": rows });
            if rows == 0 {
                return Ok(Success::no_batches(result));
            }
            Ok(Success::create_batches(result, plan(rows, batch_size)))
        })
        .register_fn("csv::process_csv_batch", process_batch)
        .register_fn("csv::aggregate_results", |ctx| async move {
            let mut totals = Totals::default();
            let mut batches = Vec::new();
            for (name, result) in ctx.parent_results() {
                if result.get("batch_id").is_none() {
                    continue;
                }
                totals.add(Totals {
                    rows: result["rows_processed"].as_u64().unwrap_or(0),
                    quantity: result["total_quantity"].as_i64().unwrap_or(0),
                    value_cents: result["total_value_cents"].as_i64().unwrap_or(0),
                })?;
                batches.push(name.to_owned());
            }
            Ok(Success::new(json!({
                "batches": batches.len(),
                "failed_batches": ctx.failed_parents.keys().collect::<Vec<_>>(),
                "total_rows": totals.rows,
                "total_quantity": totals.quantity,
                "total_value_cents": totals.value_cents,
            })))
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_ranges_that_cover_the_file_once() {
        let cursors = plan(1000, 300);
        let bounds: Vec<(u64, u64)> = cursors
            .iter()
            .map(|c| {
                (
                    c.start_cursor.as_u64().unwrap(),
                    c.end_cursor.as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(bounds, [(0, 300), (300, 600), (600, 900), (900, 1000)]);
        assert_eq!(cursors[3].batch_id, "004");
        assert!(plan(0, 100).is_empty());
    }

    #[test]
    fn the_sample_file_has_a_thousand_well_formed_rows() {
        let rows = read_rows(sample_csv_path().to_str().unwrap()).unwrap();
        assert_eq!(rows.len(), 1000);
        for (i, row) in rows.iter().enumerate() {
            row_totals(row, i as u64 + 1).unwrap();
        }
    }
}

//! Batch processing (SPEC §4.7), end to end: cloned workers, parallelism,
//! convergence with and without batches, checkpoints, failure strategies,
//! and diamond + decision + batch.

use std::time::Duration;

use serde_json::{Value, json};
use tasker_rust_worker::csv::sample_csv_path;
use tasker_types::ids::TaskUuid;
use tasker_types::state::{StepState, TaskState};

use crate::support::{Running, Stack, examples};

const LIMIT: Duration = Duration::from_secs(60);

/// (rows, quantity, value in cents) of the sample file, computed here.
fn expected_totals(skip_rows: std::ops::Range<usize>) -> (u64, i64, i64) {
    let text = std::fs::read_to_string(sample_csv_path()).unwrap();
    let (mut rows, mut quantity, mut value) = (0, 0, 0);
    for (i, line) in text.lines().skip(1).enumerate() {
        if skip_rows.contains(&i) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let q: i64 = fields[3].parse().unwrap();
        let p: i64 = fields[4].parse().unwrap();
        rows += 1;
        quantity += q;
        value += q * p;
    }
    (rows, quantity, value)
}

fn csv_context(extra: Value) -> Value {
    let mut context = json!({ "csv_file_path": sample_csv_path().to_str().unwrap() });
    if let (Some(context), Some(extra)) = (context.as_object_mut(), extra.as_object()) {
        context.extend(extra.clone());
    }
    context
}

/// The CSV template with another name, parallelism and failure strategy.
fn csv_variant(name: &str, parallelism: u32, strategy: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/tasks/csv_batch_processing.yaml"
    ))
    .unwrap();
    text.replace("name: csv_product_inventory", &format!("name: {name}"))
        .replace("parallelism: 4", &format!("parallelism: {parallelism}"))
        .replace(
            "failure_strategy: fail_fast",
            &format!("failure_strategy: {strategy}"),
        )
}

/// A stack running orchestration and the example worker, with the CSV
/// template registered again as `name` (parallelism, failure strategy)
/// when `variant` is given.
async fn csv_stack(variant: Option<(&str, u32, &str)>) -> (Stack, Running, Running) {
    let stack = Stack::new().await;
    if let Some((name, parallelism, strategy)) = variant {
        stack
            .register(&csv_variant(name, parallelism, strategy))
            .await;
    }
    let orchestrator = stack.start_orchestrator();
    let worker = stack.start_worker(examples());
    (stack, orchestrator, worker)
}

/// Runs CSV template `name` over the sample file (context `extra` added)
/// and checks that it ends `expected`.
async fn run_csv(stack: &Stack, name: &str, extra: Value, expected: TaskState) -> TaskUuid {
    let task = stack
        .create("csv_processing", name, csv_context(extra))
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        expected,
        "{name}"
    );
    task.task_uuid
}

async fn result(stack: &Stack, task: TaskUuid, step: &str) -> Value {
    stack.step(task, step).await.results.unwrap()
}

/// The most batch workers of `task` that were on a queue or running at once,
/// from their transition history.
async fn peak_concurrency(stack: &Stack, task: TaskUuid) -> i64 {
    sqlx::query_scalar(
        "WITH spans AS (
             SELECT tr.workflow_step_uuid,
                    min(tr.created_at) FILTER (WHERE tr.event = 'enqueue') AS began,
                    max(tr.created_at) FILTER (WHERE tr.to_state IN ('complete', 'error')) AS ended
             FROM tasker.workflow_step_transitions tr
             JOIN tasker.workflow_steps s USING (workflow_step_uuid)
             WHERE s.task_uuid = $1 AND s.step_type = 'batch_worker'
             GROUP BY tr.workflow_step_uuid)
         SELECT max((SELECT count(*) FROM spans o WHERE o.began <= s.began AND o.ended > s.began))
         FROM spans s",
    )
    .bind(task.as_uuid())
    .fetch_one(stack.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_thousand_rows_in_parallel_batches_add_up() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack
        .create(
            "csv_processing",
            "csv_product_inventory",
            csv_context(json!({})),
        )
        .await;
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);

    let steps = stack.steps(task.task_uuid).await;
    let mut workers: Vec<&str> = steps
        .iter()
        .filter(|s| s.template_step == "process_csv_batch")
        .map(|s| s.name.as_str())
        .collect();
    workers.sort_unstable();
    assert_eq!(
        workers,
        [
            "process_csv_batch_001",
            "process_csv_batch_002",
            "process_csv_batch_003",
            "process_csv_batch_004",
            "process_csv_batch_005"
        ],
        "1,000 rows at batch_size 200"
    );
    let (rows, quantity, value) = expected_totals(0..0);
    let totals = result(&stack, task.task_uuid, "aggregate_results").await;
    assert_eq!(totals["batches"], 5);
    assert_eq!(totals["total_rows"], rows);
    assert_eq!(totals["total_quantity"], quantity);
    assert_eq!(totals["total_value_cents"], value);
    assert!(
        peak_concurrency(&stack, task.task_uuid).await <= 4,
        "parallelism: 4"
    );
}

#[tokio::test]
async fn parallelism_limits_how_many_batches_run_at_once() {
    let (stack, _orchestrator, _worker) = csv_stack(Some(("csv_serial", 1, "fail_fast"))).await;
    let task = run_csv(&stack, "csv_serial", json!({}), TaskState::Complete).await;
    assert_eq!(peak_concurrency(&stack, task).await, 1);
}

#[tokio::test]
async fn no_batches_still_converges() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "sku,name,category,quantity,unit_price_cents\n").unwrap();
    let task = stack
        .create(
            "csv_processing",
            "csv_product_inventory",
            json!({"csv_file_path": empty.to_str().unwrap()}),
        )
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let names: Vec<String> = stack
        .steps(task.task_uuid)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let totals = result(&stack, task.task_uuid, "aggregate_results").await;
    assert_eq!(totals["batches"], 0);
    assert_eq!(totals["total_rows"], 0);
}

#[tokio::test]
async fn a_retried_batch_resumes_from_its_checkpoint_and_counts_no_row_twice() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    // Batch 001 covers rows 1–200 and checkpoints every 50 rows: the first
    // attempt saves checkpoints at rows 50 and 100, then dies at row 130.
    let task = stack
        .create(
            "csv_processing",
            "csv_product_inventory",
            csv_context(json!({"fail_on_row": 130})),
        )
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let batch = stack.step(task.task_uuid, "process_csv_batch_001").await;
    assert_eq!(batch.attempts, 2);
    let audit = tasker_db::result_audit::list_for_step(stack.pool(), batch.workflow_step_uuid)
        .await
        .unwrap();
    assert_eq!(
        audit[0].error.as_ref().unwrap()["message"],
        "simulated crash at row 130"
    );
    let out = batch.results.unwrap();
    assert_eq!(
        out["resumed_from_row"], 101,
        "the retry started at the checkpoint"
    );
    assert_eq!(out["rows_processed"], 200);
    let (rows, quantity, value) = expected_totals(0..0);
    let totals = result(&stack, task.task_uuid, "aggregate_results").await;
    assert_eq!(totals["total_rows"], rows);
    assert_eq!(totals["total_quantity"], quantity);
    assert_eq!(totals["total_value_cents"], value);
}

#[tokio::test]
async fn fail_fast_cancels_the_batches_not_yet_started_and_fails_the_task() {
    let (stack, _orchestrator, _worker) = csv_stack(Some(("csv_fail_fast", 1, "fail_fast"))).await;
    let task = run_csv(
        &stack,
        "csv_fail_fast",
        json!({"fail_batch": "002"}),
        TaskState::Error,
    )
    .await;
    let state = |name: &'static str| {
        let stack = &stack;
        async move { stack.step(task, name).await.state }
    };
    assert_eq!(state("process_csv_batch_001").await, StepState::Complete);
    assert_eq!(state("process_csv_batch_002").await, StepState::Error);
    for name in [
        "process_csv_batch_003",
        "process_csv_batch_004",
        "process_csv_batch_005",
    ] {
        assert_eq!(state(name).await, StepState::Cancelled, "{name}");
    }
    assert_eq!(state("aggregate_results").await, StepState::Pending);
}

#[tokio::test]
async fn continue_on_failure_runs_every_batch_and_convergence_sees_the_failure() {
    let (stack, _orchestrator, _worker) =
        csv_stack(Some(("csv_tolerant", 4, "continue_on_failure"))).await;
    let task = run_csv(
        &stack,
        "csv_tolerant",
        json!({"fail_batch": "002"}),
        TaskState::Complete,
    )
    .await;
    assert_eq!(
        stack.step(task, "process_csv_batch_002").await.state,
        StepState::Error
    );
    let (rows, quantity, value) = expected_totals(200..400);
    let totals = result(&stack, task, "aggregate_results").await;
    assert_eq!(totals["batches"], 4);
    assert_eq!(totals["failed_batches"], json!(["process_csv_batch_002"]));
    assert_eq!(totals["total_rows"], rows);
    assert_eq!(totals["total_quantity"], quantity);
    assert_eq!(totals["total_value_cents"], value);
}

#[tokio::test]
async fn diamond_decision_and_batch_follow_the_dominant_parity() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    // Evens dominate: 2..=24 step 2 (12 numbers) against three odds.
    let evens: Vec<i64> = (1..=12).map(|n| n * 2).collect();
    let mut numbers = evens.clone();
    numbers.extend([1, 3, 5]);
    let even_task = stack
        .create(
            "diamond_decision_batch",
            "parity_analysis",
            json!({"numbers": numbers}),
        )
        .await;
    // Odds dominate: seven odds against two evens.
    let odds: Vec<i64> = (0..7).map(|n| n * 2 + 1).collect();
    let mut numbers = odds.clone();
    numbers.extend([10, 20]);
    let odd_task = stack
        .create(
            "diamond_decision_batch",
            "parity_analysis",
            json!({"numbers": numbers}),
        )
        .await;

    for (task, parity, chosen, batches) in [
        (&even_task, "even", &evens, 3),
        (&odd_task, "odd", &odds, 2),
    ] {
        assert_eq!(
            stack.finished(task.task_uuid, LIMIT).await.state,
            TaskState::Complete,
            "{parity}"
        );
        let steps = stack.steps(task.task_uuid).await;
        let other = if parity == "even" { "odd" } else { "even" };
        assert!(
            steps.iter().all(|s| !s.name.starts_with(other)),
            "{parity}: the other branch was never created"
        );
        let workers = steps
            .iter()
            .filter(|s| s.template_step == format!("{parity}_batch_worker"))
            .count();
        assert_eq!(workers, batches, "{parity}: batches of 5");
        let out = result(&stack, task.task_uuid, "final_convergence").await;
        assert_eq!(out["dominant"], parity);
        assert_eq!(out["batches"], batches);
        assert_eq!(out["count"], chosen.len());
        assert_eq!(out["sum"], chosen.iter().sum::<i64>());
        assert_eq!(
            out["sum_of_squares"],
            chosen.iter().map(|n| n * n).sum::<i64>()
        );
    }
}

#[tokio::test]
async fn isolate_finishes_the_other_batches_then_waits_for_an_operator() {
    let (stack, _orchestrator, _worker) = csv_stack(Some(("csv_isolated", 2, "isolate"))).await;
    let task = run_csv(
        &stack,
        "csv_isolated",
        json!({"fail_batch": "002"}),
        TaskState::Error,
    )
    .await;
    let steps = stack.steps(task).await;
    for step in steps
        .iter()
        .filter(|s| s.template_step == "process_csv_batch")
    {
        let expected = if step.name.ends_with("002") {
            StepState::Error
        } else {
            StepState::Complete
        };
        assert_eq!(step.state, expected, "{}", step.name);
    }
    assert_eq!(
        stack.step(task, "aggregate_results").await.state,
        StepState::Pending,
        "convergence waits for the isolated batch"
    );

    // The operator supplies the isolated batch's totals; convergence runs.
    let failed = stack.step(task, "process_csv_batch_002").await;
    let (all_rows, all_quantity, all_value) = expected_totals(0..0);
    let (_, others_quantity, others_value) = expected_totals(200..400);
    let request = tasker_types::api::StepActionRequest {
        result: Some(json!({
            "batch_id": "002",
            "rows_processed": 200,
            "total_quantity": all_quantity - others_quantity,
            "total_value_cents": all_value - others_value,
        })),
        ..tasker_types::api::StepActionRequest::new(
            tasker_types::api::StepActionKind::CompleteManually,
            "ops",
            "re-ran batch 002 offline",
        )
    };
    stack
        .orchestrator
        .act_on_step(task, failed.workflow_step_uuid, &request)
        .await
        .unwrap();
    assert_eq!(stack.finished(task, LIMIT).await.state, TaskState::Complete);
    let totals = result(&stack, task, "aggregate_results").await;
    assert_eq!(totals["batches"], 5);
    assert_eq!(totals["total_rows"], all_rows);
    assert_eq!(totals["total_quantity"], all_quantity);
    assert_eq!(totals["total_value_cents"], all_value);
}

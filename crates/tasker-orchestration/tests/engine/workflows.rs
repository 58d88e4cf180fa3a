//! The example workflows run to their correct ends.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tasker_types::state::{StepState, TaskState};

use crate::support::{Stack, examples};

const LIMIT: Duration = Duration::from_secs(30);

async fn value_of(stack: &Stack, task: tasker_types::ids::TaskUuid, step: &str) -> i64 {
    stack.step(task, step).await.results.unwrap()["value"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn the_example_math_workflows_compute_the_right_values() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());

    let linear = stack
        .create(
            "linear_workflow",
            "mathematical_sequence",
            json!({"value": 6}),
        )
        .await;
    let diamond = stack
        .create(
            "diamond_workflow",
            "parallel_computation",
            json!({"value": 6}),
        )
        .await;
    let tree = stack
        .create("tree_workflow", "hierarchical_tree", json!({"value": 2}))
        .await;
    let mixed = stack
        .create("mixed_dag_workflow", "complex_dag", json!({"value": 3}))
        .await;
    for task in [&linear, &diamond, &tree, &mixed] {
        let done = stack.finished(task.task_uuid, LIMIT).await;
        assert_eq!(
            done.state,
            TaskState::Complete,
            "{} ended {}",
            task.name,
            done.state
        );
        assert!(
            stack
                .steps(task.task_uuid)
                .await
                .iter()
                .all(|s| s.state == StepState::Complete)
        );
    }
    assert_eq!(
        value_of(&stack, linear.task_uuid, "linear_step_4").await,
        6_i64.pow(16)
    );
    assert_eq!(
        value_of(&stack, linear.task_uuid, "linear_step_4").await,
        2_821_109_907_456
    );
    assert_eq!(
        value_of(&stack, diamond.task_uuid, "diamond_end").await,
        1_679_616
    );
    assert_eq!(
        value_of(&stack, tree.task_uuid, "tree_final_convergence").await,
        1024
    );
    assert_eq!(
        value_of(&stack, mixed.task_uuid, "dag_finalize").await,
        13_284
    );
}

#[tokio::test]
async fn order_fulfillment_runs_end_to_end() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let order = json!({
        "customer": {"id": 42, "email": "ada@example.com"},
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_cents": 1500},
                  {"sku": "PEN-9", "quantity": 3, "unit_price_cents": 250}],
        "payment": {"method": "card", "token": "tok_flaky"},
        "shipping": {"address": "1 Loop Rd", "method": "express"}
    });
    let task = stack.create("ecommerce", "order_fulfillment", order).await;
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let results: BTreeMap<String, Value> = stack
        .steps(task.task_uuid)
        .await
        .into_iter()
        .map(|s| (s.name, s.results.unwrap()))
        .collect();
    assert_eq!(results["validate_order"]["order_total_cents"], 3750);
    assert_eq!(results["process_payment"]["amount_charged_cents"], 3750);
    assert_eq!(results["process_payment"]["gateway"], "sandbox");
    assert_eq!(results["ship_order"]["estimated_days"], 1);
    assert!(
        results["ship_order"]["tracking_number"]
            .as_str()
            .unwrap()
            .starts_with("TRK")
    );
    // tok_flaky failed its first attempt with a retry hint, then succeeded.
    assert_eq!(
        stack.step(task.task_uuid, "process_payment").await.attempts,
        2
    );
}

/// A deep DAG of `tasker::math` steps, and each step's expected value,
/// computed here independently of the engine. Steps pick 1–3 recent parents
/// and add them with a constant; every seventh multiplies one small parent
/// by a constant. The context value is 3.
fn math_dag(steps: usize, seed: u64) -> (String, Vec<i64>) {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut yaml = String::from(
        "name: big_math\nnamespace_name: math_tests\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n",
    );
    let mut values: Vec<i64> = Vec::new();
    for i in 0..steps {
        let name = format!("s{i:03}");
        if i < 3 {
            yaml.push_str(&format!(
                "  - {{ name: {name}, handler: {{ callable: \"tasker::math\", initialization: {{ operation: square }} }} }}\n"
            ));
            values.push(9);
            continue;
        }
        let mut parents: Vec<usize> = Vec::new();
        let wanted = 1 + next(3) as usize;
        while parents.len() < wanted {
            let p = i - 1 - next(i.min(8) as u64) as usize;
            if !parents.contains(&p) {
                parents.push(p);
            }
        }
        let small = values[parents[0]].abs() < 1_000_000;
        let (init, deps, value) = if i % 7 == 0 && small {
            let constant = 2 + next(2) as i64;
            let value = values[parents[0]] * constant;
            (
                format!("{{ operation: multiply, constant: {constant} }}"),
                vec![parents[0]],
                value,
            )
        } else {
            let constant = next(21) as i64 - 10;
            let value = parents
                .iter()
                .try_fold(constant, |acc, &p| acc.checked_add(values[p]))
                .expect("generator keeps values inside i64");
            (
                format!("{{ operation: add, constant: {constant} }}"),
                parents,
                value,
            )
        };
        let deps: Vec<String> = deps.iter().map(|p| format!("s{p:03}")).collect();
        yaml.push_str(&format!(
            "  - {{ name: {name}, dependencies: [{}], handler: {{ callable: \"tasker::math\", initialization: {init} }} }}\n",
            deps.join(", ")
        ));
        values.push(value);
    }
    (yaml, values)
}

#[tokio::test]
async fn a_dag_of_sixty_math_steps_gives_the_independently_computed_values() {
    let stack = Stack::new().await;
    let (yaml, expected) = math_dag(60, 7);
    stack.register(&yaml).await;
    let _orchestrator = stack.start_orchestrator();
    let _worker = stack.start_worker(examples());
    let task = stack
        .create("math_tests", "big_math", json!({"value": 3}))
        .await;
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let steps = stack.steps(task.task_uuid).await;
    assert_eq!(steps.len(), 60);
    for step in steps {
        let index: usize = step.name[1..].parse().unwrap();
        assert_eq!(
            step.results.as_ref().unwrap()["value"].as_i64().unwrap(),
            expected[index],
            "step {}",
            step.name
        );
    }
}

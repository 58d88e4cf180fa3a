//! `tasker-ctl dev` and `tasker-ctl demo`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Instant;

use serde_json::{Value, json};
use tasker_db::dev_cluster::default_data_dir;
use tasker_types::api::TaskRequest;
use tasker_types::state::TaskState;

use crate::cli::{DemoArgs, DevArgs, Output};
use crate::commands::task::wait_for;
use crate::exit::{CtlResult, FAILED, Failure};
use crate::output::{Table, json as print_json};
use crate::stack::{ClusterDir, Stack};

fn load_config() -> CtlResult<tasker_config::TaskerConfig> {
    tasker_config::load().map_err(|e| Failure::new(FAILED, format!("invalid configuration: {e}")))
}

fn failed(err: anyhow::Error) -> Failure {
    Failure::new(FAILED, format!("{err:#}"))
}

pub(crate) async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
        return;
    }
    let _ = interrupt.await;
}

pub(crate) async fn dev(args: DevArgs) -> CtlResult {
    let config = load_config()?;
    let bind = args.bind.unwrap_or(config.web.bind_address);
    let stack = Stack::start(
        config,
        bind,
        ClusterDir::Persistent(default_data_dir("dev-cluster")),
    )
    .await
    .map_err(failed)?;
    let url = format!("http://{}", stack.addr);
    println!("Tasker is running.\n");
    println!("  REST API   {url}/v1/tasks");
    println!("  API docs   {url}/api-docs/ui/");
    println!("  metrics    {url}/metrics");
    if let Some(grpc) = stack.grpc_addr {
        println!("  gRPC       {grpc} (tasker.v1, reflection on)");
    }
    match stack.cluster_dir() {
        Some(dir) => println!("  database   private PostgreSQL in {}", dir.display()),
        None => println!("  database   {}", stack.database),
    }
    println!(
        "\nTry:\n  tasker-ctl --url {url} task create -n linear_workflow --name mathematical_sequence -c '{{\"value\": 6}}' --wait"
    );
    println!("\nCtrl-C stops everything.");
    wait_for_signal().await;
    println!("\nstopping…");
    stack.stop().await.map_err(failed)
}

struct DemoWorkflow {
    title: &'static str,
    namespace: &'static str,
    name: &'static str,
    context: Value,
    /// The step whose result is worth showing, and the field.
    show: (&'static str, &'static str),
}

fn workflows() -> Vec<DemoWorkflow> {
    vec![
        DemoWorkflow {
            title: "linear: 6 squared four times",
            namespace: "linear_workflow",
            name: "mathematical_sequence",
            context: json!({"value": 6}),
            show: ("linear_step_4", "value"),
        },
        DemoWorkflow {
            title: "diamond: two branches in parallel",
            namespace: "diamond_workflow",
            name: "parallel_computation",
            context: json!({"value": 6}),
            show: ("diamond_end", "value"),
        },
        DemoWorkflow {
            title: "tree: four leaves summed",
            namespace: "tree_workflow",
            name: "hierarchical_tree",
            context: json!({"value": 2}),
            show: ("tree_final_convergence", "value"),
        },
        DemoWorkflow {
            title: "mixed DAG: shared parents",
            namespace: "mixed_dag_workflow",
            name: "complex_dag",
            context: json!({"value": 3}),
            show: ("dag_finalize", "value"),
        },
        DemoWorkflow {
            title: "order fulfillment (the payment gateway fails once, then the retry succeeds)",
            namespace: "ecommerce",
            name: "order_fulfillment",
            context: json!({
                "customer": {"id": 7, "email": "ada@example.com"},
                "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price_cents": 1999},
                          {"sku": "MUG-7", "quantity": 1, "unit_price_cents": 1250}],
                "payment": {"method": "card", "token": "tok_flaky"},
                "shipping": {"address": "1 Infinite Loop", "method": "express"},
                "order_ref": chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            }),
            show: ("ship_order", "tracking_number"),
        },
        DemoWorkflow {
            title: "conditional approval: a decision routes 7,500 to a manager and finance",
            namespace: "conditional_approval",
            name: "approval_routing",
            context: json!({"amount": 7500, "requester": "ada", "purpose": "conference travel"}),
            show: ("finalize_approval", "approvals"),
        },
        DemoWorkflow {
            title: "CSV batches: 1,000 product rows summed in parallel, with checkpoints",
            namespace: "csv_processing",
            name: "csv_product_inventory",
            context: json!({
                "csv_file_path": tasker_rust_worker::csv::sample_csv_path().to_string_lossy(),
            }),
            show: ("aggregate_results", "total_value_cents"),
        },
        DemoWorkflow {
            title: "diamond + decision + batch: the dominant parity squared in batches",
            namespace: "diamond_decision_batch",
            name: "parity_analysis",
            context: json!({"numbers": [2, 4, 6, 8, 10, 12, 14, 1, 3, 5]}),
            show: ("final_convergence", "sum_of_squares"),
        },
    ]
}

pub(crate) async fn demo(args: DemoArgs, output: Output) -> CtlResult {
    let config = load_config()?;
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let people = output == Output::Table;
    if people {
        println!(
            "Starting a throwaway Tasker stack (PostgreSQL, orchestration, REST API, Rust worker)…"
        );
    }
    let started = Instant::now();
    let stack = Stack::start(config, bind, ClusterDir::Throwaway)
        .await
        .map_err(failed)?;
    if people {
        println!(
            "Ready in {} ms at http://{}\n",
            started.elapsed().as_millis(),
            stack.addr
        );
    }
    let mut summary = Vec::new();
    let mut all_complete = true;
    for workflow in workflows() {
        if people {
            println!("▶ {}", workflow.title);
        }
        let request = TaskRequest::new(workflow.namespace, workflow.name, workflow.context.clone());
        let created = stack.client.create_task(&request).await?;
        let view = wait_for(
            &stack.client,
            created.task_uuid,
            std::time::Duration::from_secs(120),
            people,
        )
        .await?;
        let ms = view
            .completed_at
            .map(|done| (done - view.created_at).num_milliseconds())
            .unwrap_or(-1);
        let result = view
            .steps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|s| s.name == workflow.show.0)
            .and_then(|s| s.results.as_ref())
            .map(|r| r[workflow.show.1].clone())
            .unwrap_or(Value::Null);
        let retries: u32 = view
            .steps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|s| s.attempts.saturating_sub(1))
            .sum();
        all_complete &= view.state == TaskState::Complete;
        if people {
            let retried = if retries == 1 {
                "1 retry".to_owned()
            } else {
                format!("{retries} retries")
            };
            println!(
                "  {} in {ms} ms · {}.{} = {} · {} steps, {retried}\n",
                view.state, workflow.show.0, workflow.show.1, result, view.step_counts.total
            );
        }
        summary.push(json!({
            "workflow": format!("{}/{}", workflow.namespace, workflow.name),
            "task_uuid": view.task_uuid, "state": view.state, "duration_ms": ms,
            "steps": view.step_counts.total, "retries": retries, "result": result,
        }));
    }
    if people {
        let mut table = Table::new(&["WORKFLOW", "STATE", "MS", "STEPS", "RETRIES", "RESULT"]);
        for row in &summary {
            table.row(vec![
                row["workflow"].as_str().unwrap_or_default().to_owned(),
                row["state"].as_str().unwrap_or_default().to_owned(),
                row["duration_ms"].to_string(),
                row["steps"].to_string(),
                row["retries"].to_string(),
                row["result"].to_string(),
            ]);
        }
        table.print();
    } else {
        print_json(&summary)?;
    }
    if args.keep_running {
        println!(
            "\nThe stack keeps running at http://{} — Ctrl-C stops it.",
            stack.addr
        );
        wait_for_signal().await;
    }
    stack.stop().await.map_err(failed)?;
    if people && std::io::stdout().is_terminal() {
        println!("\nEverything stopped and cleaned up.");
    }
    if all_complete {
        Ok(())
    } else {
        Err(Failure::new(FAILED, "some demo workflows did not complete"))
    }
}

/// `tasker-ctl test-cluster`: starts (or finds) the private cluster the
/// test suites share and prints its admin URL; it keeps running.
pub(crate) async fn test_cluster() -> CtlResult {
    let dir = tasker_db::dev_cluster::test_cluster_dir();
    let cluster =
        tokio::task::spawn_blocking(move || tasker_db::dev_cluster::DevCluster::start(&dir))
            .await
            .map_err(|e| Failure::new(FAILED, e.to_string()))?
            .map_err(|e| Failure::new(FAILED, e.to_string()))?;
    println!("{}", cluster.keep_running().url("postgres"));
    Ok(())
}

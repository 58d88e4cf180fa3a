//! `/metrics` after a known workload (SPEC §11): exact counter values on the
//! server's and the worker's endpoints, and the exported metrics are exactly
//! the ones `docs/metrics.md` documents.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod telemetry_support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use telemetry_support::{Stack, config};

/// `name{labels} value` lines of a Prometheus text exposition, by series.
fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The metric families declared by `# TYPE` lines: name → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .filter(|(name, _)| name.starts_with("tasker_"))
        .collect()
}

/// The catalogue table of docs/metrics.md: name → type.
fn documented() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `tasker_"))
        .map(|l| {
            let (name, rest) = l.split_once('`').unwrap();
            let kind = rest.split('|').nth(1).unwrap().trim().to_owned();
            (format!("tasker_{name}"), kind)
        })
        .collect()
}

fn value(all: &BTreeMap<String, f64>, key: &str) -> f64 {
    *all.get(key).unwrap_or_else(|| {
        let near: Vec<&String> = all
            .keys()
            .filter(|k| k.starts_with(key.split('{').next().unwrap()))
            .collect();
        panic!("no series {key}; have {near:#?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_workload_gives_exact_counts_and_every_documented_metric() {
    // A free port for the worker's metrics endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let worker_bind = format!("127.0.0.1:{port}");
    let stack = Stack::start(config(&[(
        "worker.metrics_bind",
        worker_bind.clone().into(),
    )]))
    .await;

    let mut tasks = Vec::new();
    for value in [2, 3] {
        let body = json!({"namespace": "diamond_workflow", "name": "parallel_computation",
                          "context": {"value": value}});
        tasks.push(stack.create(body, None).await);
    }
    let body = json!({"namespace": "linear_workflow", "name": "mathematical_sequence",
                      "context": {"value": 2}});
    tasks.push(stack.create(body, None).await);
    for task in &tasks {
        stack
            .wait_for(task["task_uuid"].as_str().unwrap(), "complete")
            .await;
    }
    stack.orchestrator.sample_metrics().await.unwrap();

    let server = stack.get_text(&format!("{}/metrics", stack.base_url)).await;
    let worker = stack
        .get_text(&format!("http://{worker_bind}/metrics"))
        .await;
    let health = stack
        .get_text(&format!("http://{worker_bind}/health"))
        .await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["circuit_breakers"]["database"], "closed", "{health}");
    let all = series(&server);

    // Exact counts of what the workload did.
    let exact = [
        (
            r#"tasker_tasks_created_total{namespace="diamond_workflow"}"#,
            2.0,
        ),
        (
            r#"tasker_tasks_created_total{namespace="linear_workflow"}"#,
            1.0,
        ),
        (
            r#"tasker_tasks_finished_total{namespace="diamond_workflow",template="parallel_computation",state="complete"}"#,
            2.0,
        ),
        (
            r#"tasker_tasks_finished_total{namespace="linear_workflow",template="mathematical_sequence",state="complete"}"#,
            1.0,
        ),
        (
            r#"tasker_task_duration_seconds_count{namespace="diamond_workflow",template="parallel_computation",state="complete"}"#,
            2.0,
        ),
        (r#"tasker_step_results_total{outcome="complete"}"#, 12.0),
        (r#"tasker_step_results_total{outcome="error"}"#, 0.0),
        (r#"tasker_step_results_total{outcome="retry"}"#, 0.0),
        ("tasker_steps_enqueued_total", 12.0),
        (
            r#"tasker_http_requests_total{method="POST",route="/v1/tasks",status="201"}"#,
            3.0,
        ),
        (
            r#"tasker_worker_steps_claimed_total{namespace="diamond_workflow"}"#,
            8.0,
        ),
        (
            r#"tasker_worker_steps_claimed_total{namespace="linear_workflow"}"#,
            4.0,
        ),
        (
            r#"tasker_handler_duration_seconds_count{callable="examples::square",outcome="success"}"#,
            10.0,
        ),
        (
            r#"tasker_handler_duration_seconds_count{callable="examples::product",outcome="success"}"#,
            2.0,
        ),
        (
            r#"tasker_step_duration_seconds_count{namespace="diamond_workflow",template="parallel_computation",outcome="success"}"#,
            8.0,
        ),
        ("tasker_worker_stale_results_total", 0.0),
        ("tasker_worker_in_flight", 0.0),
        (r#"tasker_tasks{state="complete"}"#, 3.0),
        (r#"tasker_tasks{state="steps_in_process"}"#, 0.0),
        (r#"tasker_tasks{state="error"}"#, 0.0),
        (r#"tasker_dlq_entries{status="pending"}"#, 0.0),
        (
            r#"tasker_queue_messages{queue="worker_diamond_workflow_queue"}"#,
            0.0,
        ),
        (r#"tasker_circuit_breaker_state{component="database"}"#, 0.0),
        (r#"tasker_redriven_steps_total{kind="lease_expired"}"#, 0.0),
        (
            r#"tasker_stale_tasks_total{reason="staleness_timeout"}"#,
            0.0,
        ),
    ];
    let mut wrong = Vec::new();
    for (key, expected) in exact {
        let got = value(&all, key);
        if got != expected {
            wrong.push(format!("{key}: {got}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The result batches applied all 12 results (and nothing else).
    assert_eq!(value(&all, "tasker_orchestration_batch_size_sum"), 12.0);

    // Exported ⇔ documented, with the same types; and the catalogue in
    // code says the same.
    let mut exported = families(&server);
    exported.extend(families(&worker));
    let documented = documented();
    let missing: BTreeSet<_> = documented
        .keys()
        .filter(|n| !exported.contains_key(*n))
        .collect();
    let undocumented: BTreeSet<_> = exported
        .keys()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exported: {missing:?}"
    );
    assert!(
        undocumented.is_empty(),
        "exported but not documented: {undocumented:?}"
    );
    for (name, kind) in &exported {
        assert_eq!(&documented[name], kind, "{name}");
    }
    let catalogue: BTreeMap<String, String> = tasker_telemetry::metrics::CATALOGUE
        .iter()
        .map(|m| (m.name.to_owned(), m.kind.as_str().to_owned()))
        .collect();
    assert_eq!(catalogue, documented);
    stack.stop().await;
}

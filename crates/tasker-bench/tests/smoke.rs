//! The harness in smoke mode, end to end: it starts PostgreSQL (or uses
//! `DATABASE_URL`), the server and a worker, runs every measurement with tiny
//! counts and prints figures that make sense. No thresholds: this keeps the
//! harness from rotting, it does not judge the system.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

/// The runs share one private PostgreSQL cluster (one data directory),
/// which each starts and stops: one at a time.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn figure(figures: &Value, path: &str) -> f64 {
    figures
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {figures}"))
}

#[test]
fn smoke_mode_measures_every_figure() {
    let _cluster = CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let output = Command::new(env!("CARGO_BIN_EXE_tasker-bench"))
        .args(["--smoke", "--json", "--port", &free_port().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tasker-bench failed:\n{stderr}");
    let figures: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    assert_eq!(figures["smoke"], true);
    // Every latency sample is a finished task: positive, ordered percentiles.
    for series in ["/linear4_ms", "/rest_create_ms"] {
        assert_eq!(
            figure(&figures, &format!("{series}/samples")),
            5.0,
            "{series}"
        );
        let p50 = figure(&figures, &format!("{series}/p50"));
        let p99 = figure(&figures, &format!("{series}/p99"));
        assert!(p50 > 0.0 && p50 <= p99, "{series}: p50 {p50}, p99 {p99}");
    }
    assert!(figure(&figures, "/handoff_ms_p50") >= 0.0);
    // The throughput window completed real steps, each costing transactions.
    assert!(figure(&figures, "/throughput_steps") > 0.0);
    assert!(figure(&figures, "/throughput_steps_per_s") > 0.0);
    assert!(figure(&figures, "/transactions_per_step") > 0.0);
    assert!(figure(&figures, "/row_versions_per_step") > 0.0);
    assert!(
        figures["row_writes_per_step"]
            .get("tasker.workflow_steps")
            .is_some(),
        "the steps table wrote rows: {}",
        figures["row_writes_per_step"]
    );
    assert!(figure(&figures, "/postgres_commit_rate_per_s") > 0.0);
    assert!(figure(&figures, "/idle_transactions_per_s") >= 0.0);
    assert!(figure(&figures, "/server_peak_rss_mib") > 1.0);
}

#[test]
fn smoke_mode_measures_what_telemetry_costs() {
    let _cluster = CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let output = Command::new(env!("CARGO_BIN_EXE_tasker-bench"))
        .args([
            "--smoke",
            "--json",
            "--port",
            &free_port().to_string(),
            "telemetry",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tasker-bench telemetry failed:\n{stderr}"
    );
    let figures: Value = serde_json::from_slice(&output.stdout).unwrap();
    // The gauge saw every stored task, without reading the tasks table.
    assert_eq!(
        figure(&figures, "/tasks_scraped"),
        figure(&figures, "/tasks_in_database")
    );
    assert_eq!(figures["sample_reads_tasks_table"], false);
    let (p50, p99) = (
        figure(&figures, "/scrape_ms_p50"),
        figure(&figures, "/scrape_ms_p99"),
    );
    assert!(p50 > 0.0 && p50 <= p99, "scrape p50 {p50}, p99 {p99}");
    // Both throughput runs completed steps, and the OTLP one exported spans.
    assert!(figure(&figures, "/baseline_steps_per_s/0") > 0.0);
    assert!(figure(&figures, "/otlp_steps_per_s/0") > 0.0);
    assert!(figure(&figures, "/spans_received") > 0.0);
    assert!(figure(&figures, "/otlp_ratio") > 0.0);
}

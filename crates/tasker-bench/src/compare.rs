//! `tasker-bench compare --worker '<command>'`: a foreign-language worker's
//! no-op handlers against Rust's, in the same run (SPEC §14: throughput
//! ratio ≥ 0.9, added dispatch latency p50 ≤ 0.3 ms).
//!
//! Each worker gets the same system — a fresh database, the server, the
//! same templates whose steps all run `bench::noop` — and the same
//! measurements: linear-4 latency and per-step handoff, then sustained
//! diamond throughput. The added dispatch latency is read from the result
//! audit the workers write: each attempt's `finished_at − started_at` is
//! the runtime's own clock around the handler call (context built, handler
//! run, result checked), so for no-op handlers the foreign worker's p50
//! minus Rust's is what crossing the language boundary costs per step.

use std::time::Duration;

use serde::Serialize;

use crate::measure;
use crate::stack::{Bench, COMPARE_CALLABLE, WorkerUnderTest};
use crate::stats::percentile;

/// The settings of a comparison run.
pub(crate) struct CompareSettings {
    pub(crate) port: u16,
    pub(crate) window: Duration,
    pub(crate) latency_tasks: usize,
    pub(crate) in_flight: i64,
    pub(crate) quiet: bool,
}

/// One worker's figures.
#[derive(Serialize)]
pub(crate) struct WorkerFigures {
    /// `rust`, or the foreign worker's command.
    pub(crate) worker: String,
    pub(crate) throughput_steps_per_s: f64,
    pub(crate) throughput_steps: i64,
    pub(crate) linear4_ms_p50: f64,
    pub(crate) handoff_ms_p50: f64,
    /// Runtime-measured handler call, p50 over every accepted attempt.
    pub(crate) handler_call_ms_p50: f64,
    pub(crate) handler_call_ms_p99: f64,
}

/// Both workers, side by side.
#[derive(Serialize)]
pub(crate) struct Comparison {
    pub(crate) smoke: bool,
    pub(crate) rust: WorkerFigures,
    pub(crate) foreign: WorkerFigures,
    /// Foreign throughput ÷ Rust throughput (target ≥ 0.9).
    pub(crate) throughput_ratio: f64,
    /// Foreign handler-call p50 − Rust's, in ms (target ≤ 0.3).
    pub(crate) added_dispatch_latency_ms_p50: f64,
}

/// Measures Rust's worker, then the one `command` starts.
pub(crate) async fn compare(
    settings: &CompareSettings,
    command: &str,
    smoke: bool,
) -> anyhow::Result<Comparison> {
    let rust = measure_worker(settings, &WorkerUnderTest::Rust, "rust").await?;
    let foreign = measure_worker(
        settings,
        &WorkerUnderTest::Command(command.to_owned()),
        command,
    )
    .await?;
    Ok(Comparison {
        smoke,
        throughput_ratio: foreign.throughput_steps_per_s / rust.throughput_steps_per_s,
        added_dispatch_latency_ms_p50: foreign.handler_call_ms_p50 - rust.handler_call_ms_p50,
        rust,
        foreign,
    })
}

async fn measure_worker(
    settings: &CompareSettings,
    worker: &WorkerUnderTest,
    label: &str,
) -> anyhow::Result<WorkerFigures> {
    let say = |what: &str| {
        if !settings.quiet {
            eprintln!("… [{label}] {what}");
        }
    };
    say("starting PostgreSQL, the server and the worker");
    let bench = Bench::start_with(settings.port, worker, COMPARE_CALLABLE).await?;
    let result = async {
        measure::linear_latency(&bench, 1).await?;
        say(&format!(
            "linear-4 latency ({} tasks)",
            settings.latency_tasks
        ));
        let (linear, handoff) = measure::linear_latency(&bench, settings.latency_tasks).await?;
        say(&format!(
            "sustained throughput over {} s with {} diamond tasks in flight",
            settings.window.as_secs(),
            settings.in_flight
        ));
        let throughput = measure::throughput(&bench, settings.window, settings.in_flight).await?;
        let calls = handler_calls_ms(&bench).await?;
        Ok::<_, anyhow::Error>(WorkerFigures {
            worker: label.to_owned(),
            throughput_steps_per_s: throughput.steps_per_second,
            throughput_steps: throughput.steps,
            linear4_ms_p50: percentile(&linear, 50.0),
            handoff_ms_p50: percentile(&handoff, 50.0),
            handler_call_ms_p50: percentile(&calls, 50.0),
            handler_call_ms_p99: percentile(&calls, 99.0),
        })
    }
    .await;
    if result.is_err() {
        eprintln!("logs of the system under test: {}", bench.logs.display());
    }
    let stopped = bench.stop(false).await;
    let figures = result?;
    stopped?;
    Ok(figures)
}

/// Every accepted attempt's handler call, as the runtime timed it, in ms.
async fn handler_calls_ms(bench: &Bench) -> anyhow::Result<Vec<f64>> {
    Ok(sqlx::query_scalar(
        "SELECT (extract(epoch FROM (finished_at - started_at)) * 1000)::float8
         FROM tasker.workflow_step_result_audit
         WHERE accepted AND started_at IS NOT NULL",
    )
    .fetch_all(&bench.pool)
    .await?)
}

/// The comparison as a table.
pub(crate) fn print_table(c: &Comparison) {
    println!("{:<34} {:>14} {:>14}", "FIGURE", "RUST", "FOREIGN");
    let rows = [
        (
            "throughput (diamond, steps/s)",
            c.rust.throughput_steps_per_s,
            c.foreign.throughput_steps_per_s,
        ),
        (
            "linear-4 create→complete p50 (ms)",
            c.rust.linear4_ms_p50,
            c.foreign.linear4_ms_p50,
        ),
        (
            "per-step handoff p50 (ms)",
            c.rust.handoff_ms_p50,
            c.foreign.handoff_ms_p50,
        ),
        (
            "handler call p50 (ms)",
            c.rust.handler_call_ms_p50,
            c.foreign.handler_call_ms_p50,
        ),
        (
            "handler call p99 (ms)",
            c.rust.handler_call_ms_p99,
            c.foreign.handler_call_ms_p99,
        ),
    ];
    for (name, rust, foreign) in rows {
        println!("{name:<34} {rust:>14.3} {foreign:>14.3}");
    }
    println!(
        "\nthroughput ratio (foreign ÷ rust): {:.3}   target ≥ 0.9",
        c.throughput_ratio
    );
    println!(
        "added dispatch latency p50: {:.3} ms   target ≤ 0.3 ms",
        c.added_dispatch_latency_ms_p50
    );
    println!("foreign worker: {}", c.foreign.worker);
    if c.smoke {
        println!("(smoke mode: figures are not meaningful)");
    }
}

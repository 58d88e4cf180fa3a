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
//! minus Rust's is what crossing the language boundary costs per step. It
//! is taken over the linear-4 tasks, run one at a time (a step's own cost);
//! the same figure during the throughput run is printed too, where it also
//! holds the time a step waits for the interpreter behind others.

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
    /// Runtime-measured handler call, p50 over the linear-4 steps (one at
    /// a time).
    pub(crate) handler_call_ms_p50: f64,
    pub(crate) handler_call_ms_p99: f64,
    /// The same during the throughput run (many steps at once).
    pub(crate) handler_call_under_load_ms_p50: f64,
}

/// Both workers, side by side, in one round.
#[derive(Serialize)]
pub(crate) struct Round {
    pub(crate) rust: WorkerFigures,
    pub(crate) foreign: WorkerFigures,
    /// Foreign throughput ÷ Rust throughput.
    pub(crate) throughput_ratio: f64,
    /// Foreign handler-call p50 − Rust's, in ms.
    pub(crate) added_dispatch_latency_ms_p50: f64,
}

/// Every round, and the medians across them: throughput on a shared
/// machine swings between runs, so the ratio is judged over rounds that
/// alternate the two workers.
#[derive(Serialize)]
pub(crate) struct Comparison {
    pub(crate) smoke: bool,
    pub(crate) rounds: Vec<Round>,
    /// Median over rounds of foreign ÷ Rust throughput (target ≥ 0.9).
    pub(crate) throughput_ratio: f64,
    /// Median over rounds of the added handler-call p50, ms (target ≤ 0.3).
    pub(crate) added_dispatch_latency_ms_p50: f64,
}

/// Measures Rust's worker, then the one `command` starts, `rounds` times.
pub(crate) async fn compare(
    settings: &CompareSettings,
    command: &str,
    rounds: usize,
    smoke: bool,
) -> anyhow::Result<Comparison> {
    let mut measured = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let rust = measure_worker(settings, &WorkerUnderTest::Rust, "rust").await?;
        let foreign = measure_worker(
            settings,
            &WorkerUnderTest::Command(command.to_owned()),
            command,
        )
        .await?;
        measured.push(Round {
            throughput_ratio: foreign.throughput_steps_per_s / rust.throughput_steps_per_s,
            added_dispatch_latency_ms_p50: foreign.handler_call_ms_p50 - rust.handler_call_ms_p50,
            rust,
            foreign,
        });
    }
    let ratios: Vec<f64> = measured.iter().map(|r| r.throughput_ratio).collect();
    let added: Vec<f64> = measured
        .iter()
        .map(|r| r.added_dispatch_latency_ms_p50)
        .collect();
    Ok(Comparison {
        smoke,
        throughput_ratio: percentile(&ratios, 50.0),
        added_dispatch_latency_ms_p50: percentile(&added, 50.0),
        rounds: measured,
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
        let calls = handler_calls_ms(&bench).await?;
        say(&format!(
            "sustained throughput over {} s with {} diamond tasks in flight",
            settings.window.as_secs(),
            settings.in_flight
        ));
        let throughput = measure::throughput(&bench, settings.window, settings.in_flight).await?;
        let all_calls = handler_calls_ms(&bench).await?;
        let under_load = all_calls.get(calls.len()..).unwrap_or_default();
        Ok::<_, anyhow::Error>(WorkerFigures {
            worker: label.to_owned(),
            throughput_steps_per_s: throughput.steps_per_second,
            throughput_steps: throughput.steps,
            linear4_ms_p50: percentile(&linear, 50.0),
            handoff_ms_p50: percentile(&handoff, 50.0),
            handler_call_ms_p50: percentile(&calls, 50.0),
            handler_call_ms_p99: percentile(&calls, 99.0),
            handler_call_under_load_ms_p50: percentile(under_load, 50.0),
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

/// Every accepted attempt's handler call so far, as the runtime timed it,
/// in ms, oldest first.
async fn handler_calls_ms(bench: &Bench) -> anyhow::Result<Vec<f64>> {
    Ok(sqlx::query_scalar(
        "SELECT (extract(epoch FROM (finished_at - started_at)) * 1000)::float8
         FROM tasker.workflow_step_result_audit
         WHERE accepted AND started_at IS NOT NULL
         ORDER BY created_at, audit_uuid",
    )
    .fetch_all(&bench.pool)
    .await?)
}

/// The comparison as a table, one pair of columns per round.
pub(crate) fn print_table(c: &Comparison) {
    type Figure = fn(&WorkerFigures) -> f64;
    let rows: [(&str, Figure); 6] = [
        ("throughput (diamond, steps/s)", |w| {
            w.throughput_steps_per_s
        }),
        ("linear-4 create→complete p50 (ms)", |w| w.linear4_ms_p50),
        ("per-step handoff p50 (ms)", |w| w.handoff_ms_p50),
        ("handler call p50 (ms)", |w| w.handler_call_ms_p50),
        ("handler call p99 (ms)", |w| w.handler_call_ms_p99),
        ("handler call under load p50 (ms)", |w| {
            w.handler_call_under_load_ms_p50
        }),
    ];
    for (i, round) in c.rounds.iter().enumerate() {
        println!(
            "round {}: {:<25} {:>12} {:>12}",
            i + 1,
            "FIGURE",
            "RUST",
            "FOREIGN"
        );
        for (name, figure) in rows {
            println!(
                "         {name:<34} {:>12.3} {:>12.3}",
                figure(&round.rust),
                figure(&round.foreign)
            );
        }
        println!(
            "         throughput ratio {:.3}, added dispatch latency p50 {:.3} ms\n",
            round.throughput_ratio, round.added_dispatch_latency_ms_p50
        );
    }
    println!(
        "throughput ratio (foreign ÷ rust), median of {} round(s): {:.3}   target ≥ 0.9",
        c.rounds.len(),
        c.throughput_ratio
    );
    println!(
        "added dispatch latency p50, median: {:.3} ms   target ≤ 0.3 ms",
        c.added_dispatch_latency_ms_p50
    );
    if let Some(round) = c.rounds.first() {
        println!("foreign worker: {}", round.foreign.worker);
    }
    if c.smoke {
        println!("(smoke mode: figures are not meaningful)");
    }
}

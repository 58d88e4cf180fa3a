//! `tasker-bench`: measures the figures of SPEC §14 against real PostgreSQL
//! (`DATABASE_URL`, or a private cluster with fsync on) and prints a table,
//! or JSON with `--json`. `--smoke` runs everything with tiny counts in a few
//! seconds and no thresholds, so the harness never rots. See
//! `docs/benchmarks.md`.

mod analytics;
mod compare;
mod load;
mod measure;
mod stack;
mod stats;
mod telemetry;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::stats::percentile;

#[derive(Parser)]
#[command(
    name = "tasker-bench",
    about = "Measure Tasker's latency, throughput, database load and memory"
)]
struct Cli {
    /// Tiny counts and short windows: checks the harness, not the system.
    #[arg(long)]
    smoke: bool,
    /// Print machine-readable figures.
    #[arg(long)]
    json: bool,
    /// Port for the server under test.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Length of the throughput and idle windows, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Linear-4 tasks timed one at a time.
    #[arg(long, default_value_t = 200)]
    latency_tasks: usize,
    /// REST creations timed.
    #[arg(long, default_value_t = 300)]
    creates: usize,
    /// Diamond tasks kept in flight during the throughput run.
    #[arg(long, default_value_t = 400)]
    in_flight: i64,
    /// Keep the benchmark database afterwards (for EXPLAIN and profiling).
    #[arg(long)]
    keep_database: bool,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Compare a foreign-language worker's no-op handlers with Rust's in the
    /// same run: throughput ratio and added dispatch latency.
    Compare {
        /// Shell command that starts the worker to compare, serving
        /// `bench::noop` (it gets DATABASE_URL and TASKER_ENV=production),
        /// e.g. `python3 -m tasker worker --app workers.python.bench.noop`.
        #[arg(long)]
        worker: String,
        /// Rounds, each measuring Rust then the foreign worker; the ratio
        /// reported is the median over rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Time the analytics queries (`/v1/analytics/*`) on a fresh database
    /// of finished tasks spread over the last 24 hours; no server or worker.
    Analytics {
        /// Finished tasks to generate (about four steps and attempts each).
        #[arg(long, default_value_t = 100_000)]
        tasks: i64,
        /// Timed runs of each query per window and filter.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Load the REST API from concurrent clients on loopback (create, then
    /// get, as fast as they can) for `--seconds`: once with the default
    /// configuration, once with the backlog limits at `backlog_limit`.
    /// Counts every answer by kind and checks every accepted task completes.
    Load {
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Backlog limit (`max_pending_results`, `max_unclaimed_steps`) of
        /// the second run.
        #[arg(long, default_value_t = 50)]
        backlog_limit: u64,
    },
    /// What telemetry costs: one `/metrics` scrape with `--tasks` tasks in
    /// the database, and diamond throughput with info tracing exported over
    /// OTLP against the production defaults, in the same run.
    Telemetry {
        /// Tasks in the database while scraping.
        #[arg(long, default_value_t = 100_000)]
        tasks: i64,
        /// Timed scrapes.
        #[arg(long, default_value_t = 200)]
        scrapes: usize,
        /// Throughput rounds, each baseline then OTLP.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// (internal) Run the orchestration server under test.
    #[command(hide = true)]
    Serve,
    /// (internal) Run the worker under test.
    #[command(hide = true)]
    Work,
}

/// Every figure, as printed with `--json`.
#[derive(Serialize)]
struct Figures {
    smoke: bool,
    durable_postgres: bool,
    cpus: usize,
    postgres_commit_rate_per_s: f64,
    idle_transactions_per_s: f64,
    rest_create_ms: Percentiles,
    linear4_ms: Percentiles,
    handoff_ms_p50: f64,
    throughput_steps_per_s: f64,
    throughput_fraction_of_commit_rate: f64,
    transactions_per_step: f64,
    /// Row versions (inserted plus updated tuples, heap and queue tables)
    /// written per completed step over the throughput window.
    row_versions_per_step: f64,
    /// Tuples deleted per completed step (queue messages, mostly).
    rows_deleted_per_step: f64,
    /// Per table, what it wrote per completed step.
    row_writes_per_step: BTreeMap<String, PerStep>,
    throughput_steps: i64,
    throughput_seconds: f64,
    server_peak_rss_mib: Option<f64>,
}

/// One table's writes per completed step.
#[derive(Serialize)]
struct PerStep {
    inserted: f64,
    updated: f64,
    deleted: f64,
}

#[derive(Serialize)]
struct Percentiles {
    samples: usize,
    p50: f64,
    p95: f64,
    p99: f64,
}

impl Percentiles {
    fn of(samples: &[f64]) -> Self {
        Self {
            samples: samples.len(),
            p50: percentile(samples, 50.0),
            p95: percentile(samples, 95.0),
            p99: percentile(samples, 99.0),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.role {
        Some(Role::Serve) => runtime.block_on(serve()),
        Some(Role::Work) => runtime.block_on(work()),
        Some(Role::Compare { ref worker, rounds }) => {
            runtime.block_on(run_compare(&cli, worker, rounds))
        }
        Some(Role::Analytics { tasks, runs }) => {
            let settings = analytics::Settings {
                tasks: if cli.smoke { 2_000 } else { tasks },
                runs: if cli.smoke { 2 } else { runs },
                json: cli.json,
                keep_database: cli.keep_database,
            };
            runtime.block_on(analytics::run(&settings))
        }
        Some(Role::Load {
            clients,
            backlog_limit,
        }) => runtime.block_on(run_load(&cli, clients, backlog_limit)),
        Some(Role::Telemetry {
            tasks,
            scrapes,
            rounds,
        }) => runtime.block_on(run_telemetry(&cli, tasks, scrapes, rounds)),
        None => runtime.block_on(bench(cli)),
    }
}

async fn run_telemetry(cli: &Cli, tasks: i64, scrapes: usize, rounds: usize) -> anyhow::Result<()> {
    let settings = telemetry::Settings {
        port: cli.port,
        tasks: if cli.smoke { 2_000 } else { tasks },
        scrapes: if cli.smoke { 20 } else { scrapes },
        window: Duration::from_secs(if cli.smoke { 2 } else { cli.seconds }),
        in_flight: if cli.smoke { 20 } else { cli.in_flight },
        rounds: if cli.smoke { 1 } else { rounds.max(1) },
    };
    let figures = telemetry::run(&settings).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        telemetry::print_table(&figures);
    }
    Ok(())
}

async fn run_load(cli: &Cli, clients: usize, backlog_limit: u64) -> anyhow::Result<()> {
    let settings = load::LoadSettings {
        port: cli.port,
        window: Duration::from_secs(if cli.smoke { 2 } else { cli.seconds }),
        clients: if cli.smoke { 4 } else { clients },
    };
    let low = format!(
        "[backpressure]\nmax_pending_results = {backlog_limit}\nmax_unclaimed_steps = {backlog_limit}\nsample_interval_ms = 100\nretry_after_seconds = 1\n"
    );
    let runs = vec![
        load::run(&settings, "default limits", None).await?,
        load::run(
            &settings,
            &format!("backlog limit {backlog_limit}"),
            Some(&low),
        )
        .await?,
    ];
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        load::print_table(&runs);
    }
    let broken = runs.iter().any(|r| {
        r.server_errors > 0
            || r.refused_without_retry_after > 0
            || r.client_errors > 0
            || r.tasks_completed < r.tasks_accepted
    });
    anyhow::ensure!(
        !broken,
        "the API answered 5xx without Retry-After, 4xx, or lost an accepted task"
    );
    anyhow::ensure!(
        runs[0].refused_with_retry_after == 0,
        "with the default limits nothing may be refused"
    );
    Ok(())
}

async fn stop_on_sigterm() -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
        stop.cancel();
    });
    token
}

async fn serve() -> anyhow::Result<()> {
    let config = tasker_config::load()?;
    let telemetry = tasker_telemetry::init(
        &config.telemetry,
        "tasker-bench-server",
        tasker_telemetry::LogOutput::Stdout,
    )?;
    tasker_orchestration::server::serve(config, stop_on_sigterm().await).await?;
    telemetry.shutdown();
    Ok(())
}

async fn work() -> anyhow::Result<()> {
    let config = tasker_config::load()?;
    let telemetry = tasker_telemetry::init(
        &config.telemetry,
        "tasker-bench-worker",
        tasker_telemetry::LogOutput::Stdout,
    )?;
    let mut registry = tasker_worker::HandlerRegistry::with_builtins();
    registry.register_fn(stack::COMPARE_CALLABLE, |_| async {
        Ok(tasker_worker::Success::new(serde_json::json!({})))
    });
    let worker = tasker_worker::Worker::connect(config, registry).await?;
    worker.run(stop_on_sigterm().await).await?;
    telemetry.shutdown();
    Ok(())
}

async fn run_compare(cli: &Cli, worker: &str, rounds: usize) -> anyhow::Result<()> {
    let (seconds, latency_tasks, in_flight, rounds) = if cli.smoke {
        (2, 5, 20, 1)
    } else {
        (cli.seconds, cli.latency_tasks, cli.in_flight, rounds)
    };
    let settings = compare::CompareSettings {
        port: cli.port,
        window: Duration::from_secs(seconds),
        latency_tasks,
        in_flight,
        quiet: cli.json,
    };
    let comparison = compare::compare(&settings, worker, rounds, cli.smoke).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        compare::print_table(&comparison);
    }
    Ok(())
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let (seconds, latency_tasks, creates, in_flight) = if cli.smoke {
        (2, 5, 5, 20)
    } else {
        (cli.seconds, cli.latency_tasks, cli.creates, cli.in_flight)
    };
    let window = Duration::from_secs(seconds);
    let say = |what: &str| {
        if !cli.json {
            eprintln!("… {what}");
        }
    };
    let started = Instant::now();
    say("starting PostgreSQL, the server and a worker");
    let bench = stack::Bench::start(cli.port)
        .await
        .context("starting the system under test")?;
    let result = async {
        // Warm up: one task through the whole path.
        measure::linear_latency(&bench, 1).await?;
        // PostgreSQL flushes an idle backend's statistics up to 10 s late:
        // let the start-up work land before the idle window opens.
        if !cli.smoke {
            say("letting start-up statistics settle (11 s)");
            tokio::time::sleep(Duration::from_secs(11)).await;
        }
        say(&format!("idle load over {seconds} s"));
        let idle = measure::idle_load(&bench, window).await?;
        say("PostgreSQL single-row commit rate");
        let commit_rate =
            measure::commit_rate(&bench, Duration::from_secs(if cli.smoke { 1 } else { 5 }))
                .await?;
        say(&format!("REST creation latency ({creates} requests)"));
        let create = measure::rest_create(&bench, creates).await?;
        say(&format!(
            "linear-4 latency ({latency_tasks} tasks, one at a time)"
        ));
        let (linear, handoff) = measure::linear_latency(&bench, latency_tasks).await?;
        say(&format!(
            "sustained throughput over {seconds} s with {in_flight} diamond tasks in flight"
        ));
        let throughput = measure::throughput(&bench, window, in_flight).await?;
        let per_step = |n: i64| n as f64 / throughput.steps.max(1) as f64;
        Ok::<_, anyhow::Error>(Figures {
            smoke: cli.smoke,
            durable_postgres: bench.durable,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            postgres_commit_rate_per_s: commit_rate,
            idle_transactions_per_s: idle,
            rest_create_ms: Percentiles::of(&create),
            linear4_ms: Percentiles::of(&linear),
            handoff_ms_p50: percentile(&handoff, 50.0),
            throughput_steps_per_s: throughput.steps_per_second,
            throughput_fraction_of_commit_rate: throughput.steps_per_second / commit_rate,
            transactions_per_step: throughput.transactions_per_step,
            row_versions_per_step: per_step(
                throughput.row_writes.values().map(|w| w.versions()).sum(),
            ),
            rows_deleted_per_step: per_step(
                throughput.row_writes.values().map(|w| w.deleted).sum(),
            ),
            row_writes_per_step: throughput
                .row_writes
                .iter()
                .map(|(table, w)| {
                    let entry = PerStep {
                        inserted: per_step(w.inserted),
                        updated: per_step(w.updated),
                        deleted: per_step(w.deleted),
                    };
                    (table.clone(), entry)
                })
                .collect(),
            throughput_steps: throughput.steps,
            throughput_seconds: throughput.seconds,
            server_peak_rss_mib: bench.server_peak_rss_mib(),
        })
    }
    .await;
    if result.is_err() {
        eprintln!("logs of the system under test: {}", bench.logs.display());
    }
    let stop = bench.stop(cli.keep_database).await;
    let figures = result?;
    stop?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures, started.elapsed());
    }
    Ok(())
}

fn print_table(f: &Figures, took: Duration) {
    let rows: Vec<(&str, String, &str)> = vec![
        (
            "linear-4 create→complete p50",
            format!("{:.1} ms", f.linear4_ms.p50),
            "≤ 25 ms",
        ),
        (
            "linear-4 create→complete p95",
            format!("{:.1} ms", f.linear4_ms.p95),
            "",
        ),
        (
            "linear-4 create→complete p99",
            format!("{:.1} ms", f.linear4_ms.p99),
            "≤ 60 ms",
        ),
        (
            "per-step handoff p50",
            format!("{:.1} ms", f.handoff_ms_p50),
            "≤ 5 ms",
        ),
        (
            "REST task creation p50",
            format!("{:.1} ms", f.rest_create_ms.p50),
            "≤ 5 ms",
        ),
        (
            "REST task creation p99",
            format!("{:.1} ms", f.rest_create_ms.p99),
            "",
        ),
        (
            "sustained throughput (diamond)",
            format!("{:.0} steps/s", f.throughput_steps_per_s),
            "≥ 2000 steps/s",
        ),
        (
            "database transactions per step",
            format!("{:.2}", f.transactions_per_step),
            "≤ 2",
        ),
        (
            "row versions written per step",
            format!("{:.1}", f.row_versions_per_step),
            "≤ 10",
        ),
        (
            "rows deleted per step",
            format!("{:.1}", f.rows_deleted_per_step),
            "",
        ),
        (
            "idle database load",
            format!("{:.2} tx/s", f.idle_transactions_per_s),
            "≤ 1 tx/s",
        ),
        (
            "orchestration server peak RSS",
            f.server_peak_rss_mib
                .map_or_else(|| "n/a".into(), |m| format!("{m:.1} MiB")),
            "≤ 64 MB",
        ),
        (
            "PostgreSQL single-row commits",
            format!("{:.0} /s", f.postgres_commit_rate_per_s),
            "",
        ),
        (
            "throughput ÷ commit rate",
            format!("{:.2}", f.throughput_fraction_of_commit_rate),
            "",
        ),
    ];
    println!("{:<34} {:>16}  TARGET", "FIGURE", "MEASURED");
    for (name, value, target) in rows {
        println!("{name:<34} {value:>16}  {target}");
    }
    println!("\nrow writes per completed step, by table (inserted / updated / deleted):");
    for (table, w) in &f.row_writes_per_step {
        println!(
            "  {table:<44} {:>5.2} / {:>5.2} / {:>5.2}",
            w.inserted, w.updated, w.deleted
        );
    }
    println!(
        "\n{} CPUs, PostgreSQL fsync {}; {} steps in {:.1} s of throughput; run took {:.0} s{}",
        f.cpus,
        if f.durable_postgres {
            "on"
        } else {
            "OFF (figures not comparable)"
        },
        f.throughput_steps,
        f.throughput_seconds,
        took.as_secs_f64(),
        if f.smoke {
            " (smoke mode: figures are not meaningful)"
        } else {
            ""
        }
    );
}

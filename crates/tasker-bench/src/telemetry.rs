//! What telemetry costs (SPEC §11):
//!
//! - **scrape**: `GET /metrics` on a server whose database holds
//!   `--tasks` tasks (100,000 by default, written in one statement so the
//!   state counters see them as any write), timed over many scrapes; the
//!   background sample that refreshes `tasker_tasks` timed on its own, and
//!   its plan checked not to read the `tasks` table.
//! - **overhead**: diamond throughput with no-op handlers, alternately with
//!   the production defaults (logs at `warn`, no export) and with tracing at
//!   `info` exported over OTLP/gRPC to a receiver in this process, in the
//!   same run; the ratio is the figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use tonic::transport::server::TcpIncoming;

use crate::measure;
use crate::stack::{Bench, WorkerUnderTest};
use crate::stats::percentile;

/// What to run.
pub(crate) struct Settings {
    pub(crate) port: u16,
    pub(crate) tasks: i64,
    pub(crate) scrapes: usize,
    pub(crate) window: Duration,
    pub(crate) in_flight: i64,
    pub(crate) rounds: usize,
}

/// Every figure, as printed with `--json`.
#[derive(Serialize)]
pub(crate) struct TelemetryFigures {
    tasks_in_database: i64,
    /// `tasker_tasks` as scraped, summed over states (must equal the above).
    tasks_scraped: f64,
    scrapes: usize,
    scrape_ms_p50: f64,
    scrape_ms_p99: f64,
    scrape_bytes: usize,
    /// The background sample (fold the deltas, read the counts).
    sample_ms_p50: f64,
    sample_ms_p99: f64,
    /// Whether the sample's plan reads `tasker.tasks` (it must not).
    sample_reads_tasks_table: bool,
    /// Steps per second with the production defaults, one per round.
    baseline_steps_per_s: Vec<f64>,
    /// Steps per second with info tracing and OTLP export, one per round.
    otlp_steps_per_s: Vec<f64>,
    /// Spans the receiver got during the OTLP runs.
    spans_received: u64,
    /// Mean OTLP throughput over mean baseline throughput.
    otlp_ratio: f64,
    /// Each round's OTLP throughput over its baseline.
    round_ratios: Vec<f64>,
    /// The median of `round_ratios`.
    median_round_ratio: f64,
}

/// Counts the spans it is sent.
#[derive(Clone, Default)]
struct CountingReceiver(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for CountingReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Runs both parts.
pub(crate) async fn run(settings: &Settings) -> anyhow::Result<TelemetryFigures> {
    let mut figures = scrape(settings).await?;
    let receiver = CountingReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let otlp = format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n");
    for _ in 0..settings.rounds {
        figures
            .baseline_steps_per_s
            .push(throughput(settings, None, "warn").await?);
        figures
            .otlp_steps_per_s
            .push(throughput(settings, Some(&otlp), "info").await?);
    }
    figures.spans_received = receiver.0.load(Ordering::Relaxed);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    figures.otlp_ratio =
        mean(&figures.otlp_steps_per_s) / mean(&figures.baseline_steps_per_s).max(f64::EPSILON);
    figures.round_ratios = figures
        .otlp_steps_per_s
        .iter()
        .zip(&figures.baseline_steps_per_s)
        .map(|(otlp, base)| otlp / base.max(f64::EPSILON))
        .collect();
    figures.median_round_ratio = percentile(&figures.round_ratios, 50.0);
    ensure!(
        figures.spans_received > 0,
        "the OTLP runs exported no spans: telemetry was not on"
    );
    Ok(figures)
}

async fn throughput(
    settings: &Settings,
    overrides: Option<&str>,
    rust_log: &str,
) -> anyhow::Result<f64> {
    let bench = Bench::start_configured(
        settings.port,
        &WorkerUnderTest::Rust,
        "tasker::noop",
        overrides,
        rust_log,
    )
    .await?;
    let measured = measure::throughput(&bench, settings.window, settings.in_flight).await;
    bench.stop(false).await?;
    Ok(measured?.steps_per_second)
}

async fn scrape(settings: &Settings) -> anyhow::Result<TelemetryFigures> {
    let bench = Bench::start(settings.port).await?;
    let inserted = sqlx::query(
        "INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace, name, version, state,
                                   context, correlation_id, completed_at)
         SELECT gen_random_uuid(), nt.named_task_uuid, 'bench', 'diamond', '1.0.0',
                CASE WHEN g % 10 = 0 THEN 'error' ELSE 'complete' END, '{}'::jsonb,
                gen_random_uuid(), now()
         FROM generate_series(1, $1) g,
              (SELECT named_task_uuid FROM tasker.named_tasks WHERE name = 'diamond') nt",
    )
    .bind(settings.tasks)
    .execute(&bench.pool)
    .await?
    .rows_affected();
    let tasks = i64::try_from(inserted)?;
    let url = format!("http://127.0.0.1:{}/metrics", settings.port);
    let http = reqwest::Client::new();

    // The server samples every telemetry.metrics_sample_interval_ms.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tasks_scraped = loop {
        let text = http.get(&url).send().await?.text().await?;
        let scraped = tasks_gauge(&text);
        if scraped as i64 >= tasks || Instant::now() > deadline {
            break scraped;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut scrape_ms = Vec::with_capacity(settings.scrapes);
    let mut bytes = 0;
    for _ in 0..settings.scrapes {
        let started = Instant::now();
        let response = http.get(&url).send().await?;
        ensure!(
            response.status().is_success(),
            "/metrics answered {}",
            response.status()
        );
        bytes = response.bytes().await?.len();
        scrape_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let mut sample_ms = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        tasker_db::state_counts::fold_and_read(&bench.pool).await?;
        sample_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON) {}",
        tasker_db::state_counts::READ_COUNTS
    )))
    .fetch_one(&bench.pool)
    .await
    .context("explaining the sample")?;
    let reads_tasks = plan.to_string().contains("\"Relation Name\":\"tasks\"");
    bench.stop(false).await?;
    ensure!(
        tasks_scraped as i64 == tasks,
        "tasker_tasks summed to {tasks_scraped}, expected {tasks}"
    );
    Ok(TelemetryFigures {
        tasks_in_database: tasks,
        tasks_scraped,
        scrapes: settings.scrapes,
        scrape_ms_p50: percentile(&scrape_ms, 50.0),
        scrape_ms_p99: percentile(&scrape_ms, 99.0),
        scrape_bytes: bytes,
        sample_ms_p50: percentile(&sample_ms, 50.0),
        sample_ms_p99: percentile(&sample_ms, 99.0),
        sample_reads_tasks_table: reads_tasks,
        baseline_steps_per_s: Vec::new(),
        otlp_steps_per_s: Vec::new(),
        spans_received: 0,
        otlp_ratio: 0.0,
        round_ratios: Vec::new(),
        median_round_ratio: 0.0,
    })
}

/// `tasker_tasks{state=…}` summed over states.
fn tasks_gauge(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("tasker_tasks{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The figures as a table.
pub(crate) fn print_table(f: &TelemetryFigures) {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| tasks in the database (scraped) | {} ({}) | |",
        f.tasks_in_database, f.tasks_scraped
    );
    println!(
        "| one /metrics scrape, p50 / p99 ({} scrapes, {} bytes) | {:.2} / {:.2} ms | ≤ 5 ms |",
        f.scrapes, f.scrape_bytes, f.scrape_ms_p50, f.scrape_ms_p99
    );
    println!(
        "| background sample of tasker_tasks, p50 / p99 | {:.2} / {:.2} ms | |",
        f.sample_ms_p50, f.sample_ms_p99
    );
    println!(
        "| sample reads the tasks table | {} | no |",
        if f.sample_reads_tasks_table {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "| throughput, production defaults (steps/s) | {} | |",
        list(&f.baseline_steps_per_s)
    );
    println!(
        "| throughput, info tracing + OTLP export (steps/s) | {} | |",
        list(&f.otlp_steps_per_s)
    );
    println!("| spans received over OTLP | {} | |", f.spans_received);
    println!(
        "| OTLP ÷ baseline, per round | {} | |",
        ratios(&f.round_ratios)
    );
    println!(
        "| OTLP ÷ baseline: mean over mean / median of rounds | {:.3} / {:.3} | ≥ 0.95 |",
        f.otlp_ratio, f.median_round_ratio
    );
}

fn ratios(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

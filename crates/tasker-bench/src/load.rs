//! `tasker-bench load` (SPEC §12): create and read tasks over REST as fast
//! as a fixed number of concurrent clients on loopback can, for a fixed
//! time, and count every answer by kind — with the default configuration
//! (target: no 5xx at all), then with the backlog limits set low (target:
//! 503s with `Retry-After`, never a 500, and every task that was accepted
//! completes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::stack::{Bench, WorkerUnderTest};
use crate::stats::percentile;

/// How one load run goes.
pub(crate) struct LoadSettings {
    pub(crate) port: u16,
    pub(crate) window: Duration,
    pub(crate) clients: usize,
}

/// What one load run saw.
#[derive(Debug, Default, Serialize)]
pub(crate) struct LoadFigures {
    pub(crate) label: String,
    pub(crate) requests: usize,
    pub(crate) requests_per_s: f64,
    pub(crate) create_p50_ms: f64,
    pub(crate) create_p99_ms: f64,
    pub(crate) get_p50_ms: f64,
    pub(crate) get_p99_ms: f64,
    /// 2xx answers.
    pub(crate) ok: usize,
    /// 503s that carried `Retry-After`.
    pub(crate) refused_with_retry_after: usize,
    /// 503s without it (target 0).
    pub(crate) refused_without_retry_after: usize,
    /// Other 5xx (target 0).
    pub(crate) server_errors: usize,
    /// 4xx (target 0: every request is valid).
    pub(crate) client_errors: usize,
    /// Transport failures (target 0).
    pub(crate) transport_errors: usize,
    pub(crate) tasks_accepted: usize,
    /// Accepted tasks that completed afterwards (target: all).
    pub(crate) tasks_completed: usize,
}

#[derive(Default)]
struct Tally {
    create_ms: Vec<f64>,
    get_ms: Vec<f64>,
    ok: usize,
    refused_with: usize,
    refused_without: usize,
    server_errors: usize,
    client_errors: usize,
    transport: usize,
    accepted: usize,
}

impl Tally {
    fn count(&mut self, status: reqwest::StatusCode, retry_after: bool) {
        if status.is_success() {
            self.ok += 1;
        } else if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            if retry_after {
                self.refused_with += 1;
            } else {
                self.refused_without += 1;
            }
        } else if status.is_server_error() {
            self.server_errors += 1;
        } else {
            self.client_errors += 1;
        }
    }
}

/// One run: a fresh system with `overrides` layered on its configuration.
pub(crate) async fn run(
    settings: &LoadSettings,
    label: &str,
    overrides: Option<&str>,
) -> anyhow::Result<LoadFigures> {
    let bench = Bench::start_configured(
        settings.port,
        &WorkerUnderTest::Rust,
        "tasker::noop",
        overrides,
        "warn",
    )
    .await?;
    let base = format!("http://127.0.0.1:{}", settings.port);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + settings.window;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..settings.clients {
        let (http, base, tally) = (http.clone(), base.clone(), tally.clone());
        clients.spawn(async move {
            let body = serde_json::json!({"namespace": "bench", "name": "linear4", "context": {}});
            while Instant::now() < deadline {
                let sent = Instant::now();
                let created = http
                    .post(format!("{base}/v1/tasks"))
                    .json(&body)
                    .send()
                    .await;
                let created_ms = sent.elapsed().as_secs_f64() * 1e3;
                let Ok(created) = created else {
                    tally.lock().await.transport += 1;
                    continue;
                };
                let status = created.status();
                let retry_after = created.headers().contains_key(reqwest::header::RETRY_AFTER);
                let view: serde_json::Value = created.json().await.unwrap_or_default();
                {
                    let mut t = tally.lock().await;
                    t.count(status, retry_after);
                    t.create_ms.push(created_ms);
                }
                let Some(task) = view["task_uuid"].as_str().filter(|_| status.is_success()) else {
                    // Refused: wait as asked (capped), like a polite client.
                    if retry_after {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    continue;
                };
                tally.lock().await.accepted += 1;
                let sent = Instant::now();
                match http.get(format!("{base}/v1/tasks/{task}")).send().await {
                    Ok(got) => {
                        let retry_after = got.headers().contains_key(reqwest::header::RETRY_AFTER);
                        let mut t = tally.lock().await;
                        t.count(got.status(), retry_after);
                        t.get_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    Err(_) => tally.lock().await.transport += 1,
                }
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let tally = std::mem::take(&mut *tally.lock().await);
    // Every accepted task must finish: wait for the backlog to drain.
    let drained = Instant::now();
    let open = loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasker.tasks WHERE state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')",
        )
        .fetch_one(&bench.pool)
        .await?;
        if open == 0 || drained.elapsed() > Duration::from_secs(300) {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let complete: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker.tasks WHERE state = 'complete'")
            .fetch_one(&bench.pool)
            .await?;
    if open > 0 {
        eprintln!("{open} tasks still open after the drain");
    }
    // Stopped and dropped before the next run starts on the same port and
    // database name.
    bench.stop(false).await?;
    let requests = tally.ok
        + tally.refused_with
        + tally.refused_without
        + tally.server_errors
        + tally.client_errors;
    Ok(LoadFigures {
        label: label.to_owned(),
        requests,
        requests_per_s: requests as f64 / elapsed,
        create_p50_ms: percentile(&tally.create_ms, 50.0),
        create_p99_ms: percentile(&tally.create_ms, 99.0),
        get_p50_ms: percentile(&tally.get_ms, 50.0),
        get_p99_ms: percentile(&tally.get_ms, 99.0),
        ok: tally.ok,
        refused_with_retry_after: tally.refused_with,
        refused_without_retry_after: tally.refused_without,
        server_errors: tally.server_errors,
        client_errors: tally.client_errors,
        transport_errors: tally.transport,
        tasks_accepted: tally.accepted,
        tasks_completed: usize::try_from(complete).unwrap_or(0),
    })
}

/// Prints runs side by side.
pub(crate) fn print_table(runs: &[LoadFigures]) {
    println!(
        "| figure | {} |",
        runs.iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(runs.len()));
    let row = |name: &str, value: &dyn Fn(&LoadFigures) -> String| {
        println!(
            "| {name} | {} |",
            runs.iter().map(value).collect::<Vec<_>>().join(" | ")
        );
    };
    row("requests", &|r| r.requests.to_string());
    row("requests/s", &|r| format!("{:.0}", r.requests_per_s));
    row("create p50 / p99 ms", &|r| {
        format!("{:.1} / {:.1}", r.create_p50_ms, r.create_p99_ms)
    });
    row("get p50 / p99 ms", &|r| {
        format!("{:.1} / {:.1}", r.get_p50_ms, r.get_p99_ms)
    });
    row("2xx", &|r| r.ok.to_string());
    row("503 with Retry-After", &|r| {
        r.refused_with_retry_after.to_string()
    });
    row("503 without Retry-After", &|r| {
        r.refused_without_retry_after.to_string()
    });
    row("other 5xx", &|r| r.server_errors.to_string());
    row("4xx", &|r| r.client_errors.to_string());
    row("transport errors", &|r| r.transport_errors.to_string());
    row("tasks accepted / completed", &|r| {
        format!("{} / {}", r.tasks_accepted, r.tasks_completed)
    });
}

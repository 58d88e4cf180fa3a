//! SPEC §12: a PostgreSQL restart is survived. The test runs a private
//! PostgreSQL cluster of its own (so stopping it disturbs no other test),
//! an orchestration server with its REST API and a worker, starts tasks
//! whose steps take a while, and stops PostgreSQL while they run. Then:
//! the database breaker opens, the API answers 503 with `Retry-After`
//! (and the client, after its bounded retries, reports `circuit_open`),
//! readiness turns unready. When PostgreSQL is back everything resumes by
//! itself: readiness turns ready, every task completes, and no step ran
//! twice or had a result accepted twice.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::dev_cluster::DevCluster;
use tasker_orchestration::Orchestrator;
use tasker_orchestration::server::Server;
use tasker_types::api::TaskRequest;
use tasker_types::breaker::BreakerState;
use tasker_worker::{HandlerRegistry, Worker};
use tokio_util::sync::CancellationToken;

const TASKS: usize = 12;

const TEMPLATE: &str = r#"
name: slow_line
namespace_name: restart
version: 1.0.0
steps:
  - name: first
    handler: { callable: "tasker::sleep", initialization: { ms: 400 } }
  - name: second
    handler: { callable: "tasker::sleep", initialization: { ms: 400 } }
    dependencies: [first]
  - name: third
    handler: { callable: "tasker::sleep", initialization: { ms: 400 } }
    dependencies: [second]
"#;

fn config(url: &str) -> TaskerConfig {
    let set = |key: &str, value: toml::Value| (key.to_owned(), value);
    let overrides = [
        set("database.url", url.into()),
        // Fail fast while the server is down, rather than queue on the pool.
        set("database.acquire_timeout_ms", 1000.into()),
        set("circuit_breakers.database.failure_threshold", 2.into()),
        set("circuit_breakers.database.open_ms", 300.into()),
        // Leases outlast the outage: a step held across it runs once.
        set("worker.lease_ms", 60_000.into()),
        set("worker.lease_renew_interval_ms", 1000.into()),
        set("web.bind_address", "127.0.0.1:0".into()),
        set("grpc.enabled", false.into()),
        set("messaging.backend", "pgmq".into()),
    ];
    let mut loader = ConfigLoader::new().environment("test").vars(|_| None);
    for (key, value) in overrides {
        loader = loader.set(key, value);
    }
    loader.load().unwrap()
}

async fn start_cluster(dir: PathBuf) -> DevCluster {
    tokio::task::spawn_blocking(move || DevCluster::start(&dir))
        .await
        .unwrap()
        .unwrap()
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_survived_and_nothing_runs_twice() {
    let dir = std::env::temp_dir().join(format!("tasker-restart-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = start_cluster(dir.clone()).await;
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE DATABASE tasker")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let config = config(&cluster.url("tasker"));

    let orchestrator = Orchestrator::connect(config.clone()).await.unwrap();
    tasker_db::migrate(orchestrator.pool()).await.unwrap();
    let pool = orchestrator.pool().clone();
    tasker_worker::register_template_sources(
        &pool,
        orchestrator.queue().as_ref(),
        &[("slow_line.yaml".to_owned(), TEMPLATE.to_owned())],
    )
    .await
    .unwrap();
    let breakers = orchestrator.breakers().clone();
    let server = Server::bind(orchestrator, &config).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let worker = Worker::connect(config.clone(), HandlerRegistry::with_builtins())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(server.run(shutdown.clone()));
    let working = tokio::spawn({
        let worker = worker.clone();
        let stop = shutdown.clone();
        async move { worker.serve(stop).await }
    });

    let client = tasker_client::Client::new(&base).unwrap();
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let request = TaskRequest::new("restart", "slow_line", json!({ "i": i }));
        tasks.push(client.create_task(&request).await.unwrap().task_uuid);
    }
    // Let the first steps start, then take PostgreSQL away under them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir_again = dir.clone();
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
    let outage_began = Instant::now();

    // The API fails fast with Retry-After once the breaker has opened.
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/tasks/{}", tasks[0]);
    let (retry_after, code) = eventually("a circuit_open refusal", Duration::from_secs(20), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let reply = http.get(&url).send().await.ok()?;
            assert!(
                reply.status() == 503 || reply.status() == 200,
                "only 503s (or answers from before the outage), got {}",
                reply.status()
            );
            let retry_after = reply
                .headers()
                .get("retry-after")?
                .to_str()
                .ok()?
                .to_owned();
            let body: serde_json::Value = reply.json().await.ok()?;
            let code = body["error"]["code"].as_str()?.to_owned();
            (code == "circuit_open").then_some((retry_after, code))
        }
    })
    .await;
    assert_eq!(code, "circuit_open");
    assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
    assert_ne!(breakers.database.state(), BreakerState::Closed);

    // The client retries a refusal a bounded number of times, then says why.
    let impatient = tasker_client::Client::new(&base)
        .unwrap()
        .with_retry_policy(tasker_client::RetryPolicy {
            max_retries: 1,
            max_wait: Duration::from_millis(200),
        });
    let refused = impatient.get_task(tasks[0]).await.unwrap_err();
    assert_eq!(refused.code(), Some("circuit_open"), "{refused}");

    // Readiness is unready, naming the breaker.
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        report["checks"]["circuit_breaker_database"]["status"], "failing",
        "{report}"
    );
    assert_eq!(
        report["checks"]["database"]["status"], "failing",
        "{report}"
    );

    // PostgreSQL comes back after a while; nothing needs a nudge.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut cluster = start_cluster(dir_again).await;
    let outage = outage_began.elapsed();
    eventually("readiness again", Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{base}/health/ready");
        async move { (http.get(&url).send().await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    assert_eq!(breakers.database.state(), BreakerState::Closed);

    for task in &tasks {
        let task = *task;
        let client = client.clone();
        eventually("every task to complete", Duration::from_secs(60), || {
            let client = client.clone();
            async move {
                let view = client.get_task(task).await.ok()?;
                assert_ne!(view.state.to_string(), "error", "task {task} failed");
                (view.state.to_string() == "complete").then_some(())
            }
        })
        .await;
    }

    // Each step ran once, and its one result was accepted.
    let (steps, audits, accepted): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tasker.workflow_steps), \
                count(*), count(*) FILTER (WHERE accepted) \
         FROM tasker.workflow_step_result_audit",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(steps, (TASKS * 3) as i64);
    assert_eq!(accepted, steps, "every step's result accepted exactly once");
    assert_eq!(
        audits, steps,
        "no step ran twice (outage lasted {outage:?})"
    );

    shutdown.cancel();
    served.await.unwrap().unwrap();
    working.await.unwrap();
    pool.close().await;
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("lock"));
}

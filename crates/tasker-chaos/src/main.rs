//! `tasker-chaos`: the crash suite (SPEC §15). Starts a private PostgreSQL
//! cluster, two `tasker-server` and two `rust-worker` processes, registers
//! random DAG templates whose results are known in advance, and creates
//! tasks while it SIGKILLs servers and workers at random and restarts
//! PostgreSQL once. Then it checks every task and every step: tasks lost,
//! wrong results, results accepted twice, tasks finalized twice, steps
//! re-attempted, and the time from the last fault to the last completion.
//! A second phase stops one server and one worker with SIGTERM under load:
//! their running handlers must finish, so no step runs twice.
//!
//! ```sh
//! cargo build -p tasker-orchestration -p tasker-rust-worker -p tasker-chaos
//! target/debug/tasker-chaos                      # the short run CI does
//! target/release/tasker-chaos --tasks 2000 --storm-seconds 300 --report docs/crash-suite.md
//! ```
//!
//! Exits non-zero when anything was lost, doubled or wrong.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Parser;
use sqlx::Connection as _;
use tasker_client::{Client, ClientError, RetryPolicy};
use tasker_db::dev_cluster::DevCluster;
use tasker_types::api::TaskRequest;

use tasker_chaos::dag::Shape;
use tasker_chaos::fleet::{Fleet, Role};
use tasker_chaos::report::{self, Figures, Tracked};

/// The crash suite's knobs; the defaults are the short run CI does.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Tasker's crash suite: SIGKILLs, a PostgreSQL restart, and an exact check of every result"
)]
struct Args {
    /// Tasks created during the storm.
    #[arg(long, default_value_t = 200)]
    tasks: usize,
    /// How long processes are killed at random.
    #[arg(long, default_value_t = 20)]
    storm_seconds: u64,
    /// Shortest and longest pause between two kills, in milliseconds.
    #[arg(long, default_value_t = 700)]
    kill_min_ms: u64,
    #[arg(long, default_value_t = 2500)]
    kill_max_ms: u64,
    /// Typical duration of the sleeping steps (±50 %).
    #[arg(long, default_value_t = 300)]
    sleep_ms: u64,
    /// Random DAG templates to draw from.
    #[arg(long, default_value_t = 8)]
    shapes: usize,
    /// Tasks in flight when the graceful-stop phase sends SIGTERM.
    #[arg(long, default_value_t = 40)]
    graceful_tasks: usize,
    /// Seed for shapes, inputs and the kill schedule (random when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Longest wait for every task to finish after the storm.
    #[arg(long, default_value_t = 180)]
    settle_seconds: u64,
    /// Where tasker-server and rust-worker are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write the report (Markdown) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keep the work directory (cluster, templates, process logs) after a
    /// successful run too.
    #[arg(long)]
    keep: bool,
}

/// The lease the suite runs with: a killed worker's step runs again
/// within one lease plus a re-drive sweep.
const LEASE_MS: u64 = 3000;

fn lock(fleet: &Mutex<Fleet>) -> MutexGuard<'_, Fleet> {
    // Fleet operations are single calls on child processes; a panic in one
    // leaves the others usable.
    fleet.lock().unwrap_or_else(PoisonError::into_inner)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary has no directory")?
            .to_path_buf(),
    };
    let work = std::env::temp_dir().join(format!("tasker-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    println!(
        "tasker-chaos: seed {seed}, work directory {}",
        work.display()
    );

    let cluster_dir = work.join("pg");
    let mut cluster = start_cluster(&cluster_dir).await?;
    let url = cluster.url("tasker");
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    sqlx::raw_sql("CREATE DATABASE tasker")
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await?;
    tasker_db::migrate(&pool).await?;

    let shapes: Vec<Shape> = (0..args.shapes)
        .map(|i| Shape::random(&mut rng, i, args.sleep_ms))
        .collect();
    let templates = work.join("templates");
    std::fs::create_dir_all(&templates)?;
    for shape in &shapes {
        std::fs::write(templates.join(format!("{}.yaml", shape.name)), shape.yaml())?;
    }
    let config_dir = work.join("config");
    std::fs::create_dir_all(config_dir.join("base"))?;
    std::fs::write(config_dir.join("base/chaos.toml"), chaos_config())?;
    let env = vec![
        ("DATABASE_URL".to_owned(), url.clone()),
        ("TASKER_ENV".to_owned(), "test".to_owned()),
        (
            "TASKER_CONFIG_DIR".to_owned(),
            config_dir.display().to_string(),
        ),
        (
            "TASKER_TEMPLATE_PATH".to_owned(),
            templates.display().to_string(),
        ),
        ("TASKER_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let fleet = Arc::new(Mutex::new(Fleet::new(&bin_dir, &logs, env, 2, 2)?));
    lock(&fleet).start_all()?;
    let urls = lock(&fleet).server_urls();
    let clients: Vec<Client> = urls
        .iter()
        .map(|u| {
            Client::with_timeout(u, Duration::from_secs(5)).map(|c| {
                c.with_retry_policy(RetryPolicy {
                    max_retries: 0,
                    max_wait: Duration::ZERO,
                })
            })
        })
        .collect::<Result<_, _>>()?;
    wait_until_ready(&clients, &shapes).await?;

    let supervising = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let supervisor = tokio::spawn({
        let fleet = fleet.clone();
        let on = supervising.clone();
        async move {
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(err) = lock(&fleet).supervise() {
                    eprintln!("supervisor: {err:#}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Phase 1: create tasks through the whole storm while processes die
    // (so tasks are in flight at the last fault), and restart PostgreSQL
    // once in the middle.
    let storm = Duration::from_secs(args.storm_seconds);
    let started = Instant::now();
    let creating = tokio::spawn(create_tasks(
        clients.clone(),
        shapes.len(),
        args.tasks,
        storm,
        seed,
        "storm",
    ));
    let mut kills = 0;
    let mut last_fault: Option<DateTime<Utc>> = None;
    let mut restarted_postgres = false;
    while started.elapsed() < storm {
        let pause = rng.u64(args.kill_min_ms..=args.kill_max_ms.max(args.kill_min_ms));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        // No fault after the window: tasks are still being created until
        // it closes, so the last fault always finds some in flight.
        if started.elapsed() >= storm {
            break;
        }
        if !restarted_postgres && started.elapsed() >= storm / 2 {
            restarted_postgres = true;
            println!(
                "  {:>5.1} s  restarting PostgreSQL",
                started.elapsed().as_secs_f64()
            );
            cluster = restart_cluster(cluster, &cluster_dir).await?;
            last_fault = Some(Utc::now());
            continue;
        }
        let victim = rng.usize(0..lock(&fleet).procs.len());
        let role = lock(&fleet).procs[victim].role;
        lock(&fleet).kill(victim)?;
        kills += 1;
        last_fault = Some(Utc::now());
        println!(
            "  {:>5.1} s  SIGKILL {role:?} {victim}",
            started.elapsed().as_secs_f64()
        );
    }
    let storm_tasks = creating.await??;
    println!(
        "storm over: {kills} kills, PostgreSQL restarted, {} tasks created; waiting for them to finish",
        storm_tasks.len()
    );
    settle(
        &pool,
        &storm_tasks,
        Duration::from_secs(args.settle_seconds),
    )
    .await?;
    let storm_figures = report::measure(&pool, &shapes, &storm_tasks, last_fault).await?;

    // Phase 2: SIGTERM one worker and one server while handlers run.
    supervising.store(false, std::sync::atomic::Ordering::Relaxed);
    supervisor.await?;
    lock(&fleet).start_all()?;
    wait_until_ready(&clients, &shapes).await?;
    let graceful = tokio::spawn(create_tasks(
        clients.clone(),
        shapes.len(),
        args.graceful_tasks,
        Duration::from_millis(500),
        seed ^ 0x5eed,
        "graceful",
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut exits = Vec::new();
    for role in [Role::Worker, Role::Server] {
        let victim = lock(&fleet)
            .procs
            .iter()
            .position(|p| p.role == role)
            .context("no such process")?;
        let fleet = fleet.clone();
        let status = tokio::task::spawn_blocking(move || {
            lock(&fleet).terminate(victim, Duration::from_secs(20))
        })
        .await??;
        println!("SIGTERM {role:?} {victim}: exited {status:?}");
        exits.push((role, status.is_some_and(|s| s.success())));
    }
    lock(&fleet).start_all()?;
    let graceful_tasks = graceful.await??;
    settle(
        &pool,
        &graceful_tasks,
        Duration::from_secs(args.settle_seconds),
    )
    .await?;
    let graceful_figures = report::measure(&pool, &shapes, &graceful_tasks, None).await?;
    lock(&fleet).kill_all();

    let starts: Vec<u32> = lock(&fleet).procs.iter().map(|p| p.starts).collect();
    let text = render(
        &args,
        seed,
        kills,
        &starts,
        &storm_figures,
        &graceful_figures,
        &exits,
    );
    println!("\n{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    pool.close().await;
    tokio::task::spawn_blocking(move || cluster.stop()).await??;
    let ok = storm_figures.correct()
        && graceful_figures.correct()
        && graceful_figures.reattempted == 0
        && exits.iter().all(|(_, clean)| *clean);
    if ok {
        if !args.keep {
            let _ = std::fs::remove_dir_all(&work);
        }
        Ok(())
    } else {
        anyhow::bail!(
            "the crash suite found a problem; logs are in {}",
            logs.display()
        )
    }
}

/// Settings layered over the test environment for every process.
fn chaos_config() -> String {
    format!(
        "[grpc]\nenabled = false\n\n\
         [worker]\nlease_ms = {LEASE_MS}\nlease_renew_interval_ms = 1000\n\n\
         [database]\nmax_connections = 8\nacquire_timeout_ms = 2000\n"
    )
}

async fn start_cluster(dir: &Path) -> anyhow::Result<DevCluster> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || DevCluster::start(&dir))
        .await?
        .context("starting the private PostgreSQL cluster")
}

async fn restart_cluster(mut cluster: DevCluster, dir: &Path) -> anyhow::Result<DevCluster> {
    tokio::task::spawn_blocking(move || cluster.stop()).await??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    start_cluster(dir).await
}

/// Waits until every server is ready and the workers registered the shapes.
async fn wait_until_ready(clients: &[Client], shapes: &[Shape]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for client in clients {
        loop {
            let ready = client.health().await.is_ok_and(|r| r.status == "healthy");
            let registered = match shapes.last() {
                Some(shape) => client
                    .get_template("chaos", &shape.name, "1.0.0")
                    .await
                    .is_ok(),
                None => true,
            };
            if ready && registered {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the servers did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Creates `count` tasks spread over `over`, each through whichever server
/// answers; an idempotency key makes a retried creation safe.
async fn create_tasks(
    clients: Vec<Client>,
    shapes: usize,
    count: usize,
    over: Duration,
    seed: u64,
    label: &'static str,
) -> anyhow::Result<Vec<Tracked>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pause = over / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let started = tokio::time::Instant::now();
    let mut tracked = Vec::with_capacity(count);
    for i in 0..count {
        // On a schedule, so the last task is created as the window closes
        // however long each creation took.
        tokio::time::sleep_until(started + pause * u32::try_from(i).unwrap_or(u32::MAX)).await;
        let shape = rng.usize(0..shapes);
        let input = rng.i64(-100..=100);
        let mut request = TaskRequest::new(
            "chaos",
            format!("shape_{shape}"),
            serde_json::json!({ "value": input }),
        );
        request.idempotency_key = Some(format!("{label}-{seed}-{i}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let task = loop {
            let client = &clients[rng.usize(0..clients.len())];
            match client.create_task(&request).await {
                Ok(view) => break view.task_uuid.to_string(),
                Err(ClientError::Api { code, details, .. }) if code == "duplicate_task" => {
                    break details["task_uuid"].as_str().unwrap_or_default().to_owned();
                }
                Err(err) => {
                    anyhow::ensure!(Instant::now() < deadline, "cannot create a task: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        tracked.push(Tracked { task, shape, input });
    }
    Ok(tracked)
}

/// Waits until every task is in a terminal state, or `limit` passed.
async fn settle(pool: &sqlx::PgPool, tasks: &[Tracked], limit: Duration) -> anyhow::Result<()> {
    let ids: Vec<String> = tasks.iter().map(|t| t.task.clone()).collect();
    let deadline = Instant::now() + limit;
    loop {
        let states = report::states(pool, &ids).await;
        if let Ok(states) = states {
            let open = ids
                .iter()
                .filter(|id| {
                    !states.get(*id).is_some_and(|t| {
                        matches!(
                            t.state.as_str(),
                            "complete" | "error" | "cancelled" | "resolved_manually"
                        )
                    })
                })
                .count();
            if open == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                println!("{open} tasks still open after {limit:?}");
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn render(
    args: &Args,
    seed: u64,
    kills: usize,
    starts: &[u32],
    storm: &Figures,
    graceful: &Figures,
    exits: &[(Role, bool)],
) -> String {
    let restarts: u32 = starts.iter().map(|s| s.saturating_sub(1)).sum();
    let exits: Vec<String> = exits
        .iter()
        .map(|(role, clean)| {
            format!(
                "{role:?} {}",
                if *clean {
                    "exited 0"
                } else {
                    "did NOT exit cleanly"
                }
            )
        })
        .collect();
    format!(
        "## Crash suite run\n\n\
         `tasker-chaos --tasks {} --storm-seconds {} --kill-min-ms {} --kill-max-ms {} --sleep-ms {} --seed {seed}`: \
         2 servers and 2 workers, {kills} SIGKILLs ({restarts} process restarts), one PostgreSQL restart, \
         {} random DAG templates, lease {LEASE_MS} ms.\n\n\
         ### Storm (SIGKILL and a PostgreSQL restart)\n\n| figure | value |\n|---|---|\n{storm}\n\n\
         ### Graceful stop (SIGTERM of a worker and a server under load)\n\n\
         {}.\n\n| figure | value |\n|---|---|\n{graceful}\n\n\
         Targets: 0 lost, 0 wrong, 0 accepted twice, 0 finalized twice; the tasks in flight at the last fault \
         complete within about one lease of it; under SIGTERM 0 steps re-attempted.\n",
        args.tasks,
        args.storm_seconds,
        args.kill_min_ms,
        args.kill_max_ms,
        args.sleep_ms,
        args.shapes,
        exits.join(", "),
    )
}

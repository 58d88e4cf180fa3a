//! The system under test: a fresh database (on `DATABASE_URL`, or on a
//! private cluster with `fsync` on), and the orchestration server and a
//! worker as separate processes — this binary re-run as `serve` and `work` —
//! so the server's memory can be measured on its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tasker_client::Client;
use tasker_db::dev_cluster::{DevCluster, default_data_dir};
use tasker_types::template::TaskTemplate;

/// Templates the benchmark runs: four no-op steps in a line, and a diamond,
/// every step running `callable`.
fn templates(callable: &str) -> Vec<String> {
    let step = |name: &str, deps: &str| {
        format!("  - {{ name: {name}, handler: {{ callable: \"{callable}\" }}{deps} }}\n")
    };
    let header = |name: &str| {
        format!(
            "name: {name}\nnamespace_name: bench\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n"
        )
    };
    vec![
        header("linear4")
            + &step("s1", "")
            + &step("s2", ", dependencies: [s1]")
            + &step("s3", ", dependencies: [s2]")
            + &step("s4", ", dependencies: [s3]"),
        header("diamond")
            + &step("start", "")
            + &step("left", ", dependencies: [start]")
            + &step("right", ", dependencies: [start]")
            + &step("end", ", dependencies: [left, right]"),
    ]
}

/// The callable the no-op handlers of a comparison run are registered
/// under, in Rust (`tasker-bench work`) and in the foreign worker alike.
pub(crate) const COMPARE_CALLABLE: &str = "bench::noop";

/// Which worker process serves the benchmark's steps.
#[derive(Clone, Debug)]
pub(crate) enum WorkerUnderTest {
    /// This binary's `work` role: Rust no-op handlers.
    Rust,
    /// A shell command that starts a worker serving [`COMPARE_CALLABLE`]
    /// (e.g. the Python worker), run with the same environment.
    Command(String),
}

/// The running system.
pub(crate) struct Bench {
    pub(crate) pool: PgPool,
    pub(crate) client: Client,
    pub(crate) database: String,
    pub(crate) durable: bool,
    pub(crate) server_pid: u32,
    admin_url: String,
    children: Vec<Child>,
    cluster: Option<DevCluster>,
    pub(crate) logs: PathBuf,
}

/// `base` (a server URL) with its database replaced by `database`.
pub(crate) fn database_url(base: &str, database: &str) -> String {
    let (url, query) = base.split_once('?').map_or((base, ""), |(u, q)| (u, q));
    let host_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[host_start..]
        .find('/')
        .map_or(url.len(), |i| host_start + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{database}{query}", &url[..path_start])
}

impl Bench {
    pub(crate) async fn start(port: u16) -> anyhow::Result<Self> {
        Self::start_with(port, &WorkerUnderTest::Rust, "tasker::noop").await
    }

    /// The system with `worker` serving templates whose steps run `callable`.
    pub(crate) async fn start_with(
        port: u16,
        worker: &WorkerUnderTest,
        callable: &str,
    ) -> anyhow::Result<Self> {
        Self::start_configured(port, worker, callable, None, "warn").await
    }

    /// As [`Bench::start_with`], with `overrides` (TOML) layered over the
    /// configuration of both processes (through `TASKER_CONFIG_DIR`) and
    /// their log filter set to `rust_log`.
    pub(crate) async fn start_configured(
        port: u16,
        worker: &WorkerUnderTest,
        callable: &str,
        overrides: Option<&str>,
        rust_log: &str,
    ) -> anyhow::Result<Self> {
        let (admin_url, cluster) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let dir = default_data_dir("bench-cluster");
                let cluster =
                    tokio::task::spawn_blocking(move || DevCluster::start_with(&dir, true))
                        .await??;
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let database = format!("tasker_bench_{}", std::process::id());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await?;
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&mut admin)
            .await?;
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut admin)
            .await?;
        admin.close().await?;

        let url = database_url(&admin_url, &database);
        let options: PgConnectOptions = url.parse()?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        tasker_db::migrate(&pool).await?;
        let mut conn = pool.acquire().await?;
        for text in templates(callable) {
            let template = TaskTemplate::from_yaml(&text, Some("bench"))?;
            tasker_db::named_task::register(&mut conn, &template).await?;
        }
        drop(conn);

        let logs = std::env::temp_dir().join(format!("tasker-bench-logs-{}", std::process::id()));
        std::fs::create_dir_all(&logs)?;
        let config_dir = logs.join("config");
        if let Some(overrides) = overrides {
            std::fs::create_dir_all(config_dir.join("base"))?;
            std::fs::write(config_dir.join("base/overrides.toml"), overrides)?;
        }
        let exe = std::env::current_exe()?;
        let spawn = |role: &str, program: &Path, args: &[&str]| -> anyhow::Result<Child> {
            let log = std::fs::File::create(logs.join(format!("{role}.log")))?;
            let mut command = Command::new(program);
            if overrides.is_some() {
                command.env("TASKER_CONFIG_DIR", &config_dir);
            }
            Ok(command
                .args(args)
                .env("DATABASE_URL", &url)
                .env("TASKER_ENV", "production")
                .env("TASKER_WEB_BIND_ADDRESS", format!("127.0.0.1:{port}"))
                // Nothing here speaks gRPC: take any free port, so that a
                // bench never collides with another one or a running `dev`.
                .env("TASKER_GRPC_BIND_ADDRESS", "127.0.0.1:0")
                .env("TASKER_LOG_FORMAT", "json")
                .env("RUST_LOG", rust_log)
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()?)
        };
        let server = spawn("serve", &exe, &["serve"])?;
        let server_pid = server.id();
        let worker = match worker {
            WorkerUnderTest::Rust => spawn("work", &exe, &["work"])?,
            // `exec`, so the signal that stops it reaches the worker itself.
            WorkerUnderTest::Command(command) => {
                spawn("work", Path::new("sh"), &["-c", &format!("exec {command}")])?
            }
        };
        let client = Client::new(&format!("http://127.0.0.1:{port}"))?;
        let bench = Self {
            pool,
            client,
            database,
            durable: fsync == "on" && sync == "on",
            server_pid,
            admin_url,
            children: vec![server, worker],
            cluster,
            logs,
        };
        bench.wait_ready().await?;
        Ok(bench)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(report) = self.client.health().await
                && report.status == "healthy"
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the server did not become ready; see {}",
                    self.logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server process's peak resident memory (`VmHWM`), in MiB.
    pub(crate) fn server_peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server_pid)).ok()?;
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Stops the processes (SIGTERM, then kill) and drops the database
    /// unless `keep` (then the cluster keeps running too).
    pub(crate) async fn stop(mut self, keep: bool) -> anyhow::Result<()> {
        for child in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for mut child in self.children.drain(..) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.pool.close().await;
        if keep {
            eprintln!("kept database {} on {}", self.database, self.admin_url);
            if let Some(cluster) = self.cluster.take() {
                drop(cluster.keep_running());
            }
            return Ok(());
        }
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        if let Some(mut cluster) = self.cluster.take() {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        let _ = std::fs::remove_dir_all(&self.logs);
        Ok(())
    }
}

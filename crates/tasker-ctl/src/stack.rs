//! A complete local stack in this process (SPEC §13): PostgreSQL (the
//! configured one, or a private cluster), orchestration, the REST API and a
//! Rust worker with the built-in and example handlers and templates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::Connection;
use tasker_client::Client;
use tasker_config::TaskerConfig;
use tasker_db::dev_cluster::DevCluster;
use tasker_orchestration::Orchestrator;
use tasker_orchestration::server::Server;
use tasker_worker::Worker;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the private cluster keeps its data.
pub(crate) enum ClusterDir {
    /// Kept between runs (`tasker-ctl dev`).
    Persistent(PathBuf),
    /// Created for this run and removed afterwards (`tasker-ctl demo`).
    Throwaway,
}

/// A running stack.
pub(crate) struct Stack {
    pub(crate) client: Client,
    pub(crate) addr: SocketAddr,
    /// Where the gRPC API listens, unless configuration disables it.
    pub(crate) grpc_addr: Option<SocketAddr>,
    pub(crate) database: String,
    shutdown: CancellationToken,
    running: Vec<JoinHandle<()>>,
    cluster: Option<DevCluster>,
    throwaway: Option<PathBuf>,
}

impl Stack {
    /// Starts everything and waits until the API reports ready.
    pub(crate) async fn start(
        mut config: TaskerConfig,
        bind: SocketAddr,
        dir: ClusterDir,
    ) -> anyhow::Result<Self> {
        let use_private = std::env::var("DATABASE_URL").map_or(true, |u| u.is_empty());
        let (mut cluster, mut throwaway) = (None, None);
        if use_private {
            let data_dir = match dir {
                ClusterDir::Persistent(path) => path,
                ClusterDir::Throwaway => {
                    let path =
                        std::env::temp_dir().join(format!("tasker-demo-{}", std::process::id()));
                    throwaway = Some(path.clone());
                    path
                }
            };
            let started = tokio::task::spawn_blocking({
                let data_dir = data_dir.clone();
                move || DevCluster::start(&data_dir)
            })
            .await
            .context("starting the private PostgreSQL cluster")??;
            create_database(&started.url("postgres"), "tasker").await?;
            config.database.url = started.url("tasker");
            cluster = Some(started);
        }
        let database = tasker_config::redact_url_password(&config.database.url);
        let pool = tasker_db::connect(&config.database, "tasker-ctl")
            .await
            .with_context(|| format!("connecting to {database}"))?;
        tasker_db::migrate(&pool)
            .await
            .context("migrating the database")?;
        // The configured provider, one value shared by the orchestrator and
        // the worker (so even `in_memory` works within this process), as are
        // the circuit breakers: one process, one view of the database.
        let breakers = tasker_db::breakers::breakers(&config.circuit_breakers);
        let queue =
            tasker_messaging::connect_guarded(&config.messaging, &pool, &breakers.messaging);
        let examples: Vec<(String, String)> = tasker_rust_worker::examples::TEMPLATES
            .iter()
            .map(|(name, text)| (format!("examples/{name}"), (*text).to_owned()))
            .collect();
        tasker_worker::register_template_sources(&pool, queue.as_ref(), &examples)
            .await
            .context("registering the example templates")?;

        config.web.bind_address = bind;
        // A throwaway stack (the demo, tests) takes any free gRPC port too,
        // so it never collides with a running `dev`.
        if bind.port() == 0 {
            config.grpc.bind_address.set_port(0);
        }
        let orchestrator = Orchestrator::with_breakers(
            pool.clone(),
            queue.clone(),
            config.clone(),
            breakers.clone(),
        );
        let server = Server::bind(orchestrator, &config).await?;
        let addr = server
            .local_addr()
            .context("the REST API is disabled in configuration")?;
        let grpc_addr = server.grpc_addr();
        let worker = Worker::with_breakers(
            pool,
            queue,
            config,
            tasker_rust_worker::registry(),
            breakers,
        );

        let shutdown = CancellationToken::new();
        let running = vec![
            tokio::spawn({
                let stop = shutdown.clone();
                async move {
                    if let Err(err) = server.run(stop).await {
                        tracing::error!(error = %err, "orchestration stopped");
                    }
                }
            }),
            tokio::spawn({
                let stop = shutdown.clone();
                async move {
                    if let Err(err) = worker.run(stop).await {
                        tracing::error!(error = %err, "worker stopped");
                    }
                }
            }),
        ];
        let client = Client::new(&format!("http://{addr}"))?;
        let stack = Self {
            client,
            addr,
            grpc_addr,
            database,
            shutdown,
            running,
            cluster,
            throwaway,
        };
        stack.wait_ready().await?;
        Ok(stack)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(report) = self.client.health().await
                && report.status == "healthy"
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the local stack did not become ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the stack runs on a private cluster (and where).
    pub(crate) fn cluster_dir(&self) -> Option<PathBuf> {
        self.cluster.as_ref().map(|c| c.data_dir().to_path_buf())
    }

    /// Stops everything: intake, orchestration, the worker, then PostgreSQL.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for handle in self.running.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(60), handle).await;
        }
        if let Some(mut cluster) = self.cluster.take() {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        if let Some(dir) = self.throwaway.take() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            let _ = std::fs::remove_file(dir.with_extension("lock"));
        }
        Ok(())
    }
}

async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to the private cluster")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

//! `tasker-server` as a library: migrate, then run orchestration, the REST
//! API and the gRPC API side by side until shutdown, stopping intake first
//! and then letting orchestration finish what it holds.

use std::net::SocketAddr;
use std::sync::Arc;

use tasker_config::TaskerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Orchestrator;
use crate::auth::Authenticator;
use crate::error::OrchestrationError;
use crate::grpc::GrpcState;
use crate::services::health::HealthState;
use crate::services::watch::WatchHub;
use crate::telemetry::metrics::MetricsHandle;
use crate::web::{AppState, app};

/// A server with its listener bound (so callers can learn the port).
pub struct Server {
    orchestrator: Orchestrator,
    listener: Option<TcpListener>,
    grpc_listener: Option<TcpListener>,
    state: AppState,
    watch: WatchHub,
    grpc_max_message_bytes: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .field("grpc_addr", &self.grpc_addr())
            .finish()
    }
}

impl Server {
    /// Binds the REST listener (when `[web] enabled`) and the gRPC one
    /// (when `[grpc] enabled`) for `orchestrator`, and sets up auth.
    ///
    /// # Errors
    /// [`OrchestrationError::BadRequest`] when an address cannot be bound
    /// or the auth settings cannot be used (an unreadable key file, say).
    pub async fn bind(
        orchestrator: Orchestrator,
        config: &TaskerConfig,
    ) -> Result<Self, OrchestrationError> {
        let auth = Authenticator::from_config(&config.auth)
            .map_err(|e| OrchestrationError::BadRequest(format!("auth settings: {e}")))?;
        let listener = if config.web.enabled {
            Some(listen(config.web.bind_address).await?)
        } else {
            None
        };
        let grpc_listener = if config.grpc.enabled {
            Some(listen(config.grpc.bind_address).await?)
        } else {
            None
        };
        let state = AppState {
            orchestrator: orchestrator.clone(),
            health: HealthState::default(),
            web: config.web.clone(),
            metrics: MetricsHandle::global(),
            auth: Arc::new(auth),
        };
        Ok(Self {
            orchestrator,
            listener,
            grpc_listener,
            state,
            watch: WatchHub::new(&config.grpc),
            grpc_max_message_bytes: config.grpc.max_message_bytes,
        })
    }

    /// Where the REST API listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where the gRPC API listens.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The watch registry (tests check that streams clean up after themselves).
    pub fn watch_hub(&self) -> WatchHub {
        self.watch.clone()
    }

    /// Runs until `shutdown`.
    ///
    /// # Errors
    /// [`OrchestrationError`] when orchestration cannot start.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), OrchestrationError> {
        let health = self.state.health.clone();
        let addr = self.local_addr();
        let http = self.listener.map(|listener| {
            let app = app(self.state.clone());
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "REST server failed");
                }
            })
        });
        if let Some(addr) = addr {
            tracing::info!(%addr, "REST API listening");
        }
        let grpc_addr = self
            .grpc_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok());
        let grpc = self.grpc_listener.map(|listener| {
            let state = GrpcState {
                orchestrator: self.orchestrator.clone(),
                auth: self.state.auth.clone(),
                watch: self.watch.clone(),
                health: health.clone(),
                max_message_bytes: self.grpc_max_message_bytes,
            };
            let stop = shutdown.clone();
            let notices = tokio::spawn(
                self.watch
                    .clone()
                    .run(self.orchestrator.pool().clone(), shutdown.clone()),
            );
            tokio::spawn(async move {
                if let Err(err) = crate::grpc::serve(listener, state, stop).await {
                    tracing::error!(error = %err, "gRPC server failed");
                }
                let _ = notices.await;
            })
        });
        if let Some(addr) = grpc_addr {
            tracing::info!(%addr, "gRPC API listening");
        }
        health.set_orchestration_running(true);
        let result = self.orchestrator.run(shutdown).await;
        health.set_orchestration_running(false);
        if let Some(http) = http {
            let _ = http.await;
        }
        if let Some(grpc) = grpc {
            let _ = grpc.await;
        }
        result
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, OrchestrationError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| OrchestrationError::BadRequest(format!("cannot listen on {addr}: {e}")))
}

/// Connects with `config`, migrates, and serves until `shutdown`.
///
/// # Errors
/// [`OrchestrationError`] when the database is unreachable or migrations fail.
pub async fn serve(
    config: TaskerConfig,
    shutdown: CancellationToken,
) -> Result<(), OrchestrationError> {
    let orchestrator = Orchestrator::connect(config.clone()).await?;
    tasker_db::migrate(orchestrator.pool()).await?;
    Server::bind(orchestrator, &config)
        .await?
        .run(shutdown)
        .await
}

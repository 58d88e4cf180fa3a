//! `tasker-server` as a library: migrate, then run orchestration and the
//! REST API side by side until shutdown, stopping intake first and then
//! letting orchestration finish what it holds.

use std::net::SocketAddr;

use tasker_config::TaskerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Orchestrator;
use crate::error::OrchestrationError;
use crate::services::health::HealthState;
use crate::telemetry::metrics::MetricsHandle;
use crate::web::{AppState, app};

/// A server with its listener bound (so callers can learn the port).
pub struct Server {
    orchestrator: Orchestrator,
    listener: Option<TcpListener>,
    state: AppState,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .finish()
    }
}

impl Server {
    /// Binds the REST listener (when `[web] enabled`) for `orchestrator`.
    ///
    /// # Errors
    /// [`OrchestrationError::BadRequest`] when the address cannot be bound.
    pub async fn bind(
        orchestrator: Orchestrator,
        config: &TaskerConfig,
    ) -> Result<Self, OrchestrationError> {
        let listener = if config.web.enabled {
            Some(
                TcpListener::bind(config.web.bind_address)
                    .await
                    .map_err(|e| {
                        OrchestrationError::BadRequest(format!(
                            "cannot listen on {}: {e}",
                            config.web.bind_address
                        ))
                    })?,
            )
        } else {
            None
        };
        let state = AppState {
            orchestrator: orchestrator.clone(),
            health: HealthState::default(),
            web: config.web.clone(),
            metrics: MetricsHandle::global(),
        };
        Ok(Self {
            orchestrator,
            listener,
            state,
        })
    }

    /// Where the REST API listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
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
        health.set_orchestration_running(true);
        let result = self.orchestrator.run(shutdown).await;
        health.set_orchestration_running(false);
        if let Some(http) = http {
            let _ = http.await;
        }
        result
    }
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

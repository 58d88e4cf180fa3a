//! The worker's own HTTP port (`worker.metrics_bind`): `GET /metrics` in
//! Prometheus text and `GET /health` as JSON — 200 while the worker can
//! reach PostgreSQL and its queues, 503 while a circuit breaker is open.
//! It reads memory only, so a scrape costs the worker nothing measurable.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tasker_telemetry::metrics::MetricsHandle;
use tasker_types::breaker::BreakerState;
use tokio_util::sync::CancellationToken;

use super::shared::WorkerShared;

/// What `/health` answers.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    worker_id: String,
    /// Attempts held now.
    in_flight: usize,
    /// Each breaker's state (`closed`, `half_open`, `open`).
    circuit_breakers: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Clone)]
struct Observed {
    shared: Arc<WorkerShared>,
    metrics: MetricsHandle,
}

/// Binds `address` and serves until `shutdown`. A port that cannot be
/// bound is logged and the worker runs on without it.
pub(crate) async fn serve(
    shared: Arc<WorkerShared>,
    address: SocketAddr,
    shutdown: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(%address, error = %err, "cannot bind the worker's metrics port; serving without it");
            return;
        }
    };
    let bound = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %bound, "worker metrics and health listening");
    let state = Observed {
        shared,
        metrics: MetricsHandle::global(),
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(state);
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(error = %err, "worker metrics port stopped");
    }
}

async fn metrics(State(state): State<Observed>) -> impl IntoResponse {
    tasker_telemetry::metrics::export_breakers(&state.shared.breakers);
    metrics::gauge!("tasker_worker_in_flight").set(state.shared.in_flight.len() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn health(State(state): State<Observed>) -> impl IntoResponse {
    let shared = &state.shared;
    let snapshots = shared.breakers.snapshots();
    let open = snapshots.iter().any(|s| s.state == BreakerState::Open);
    let body = Health {
        status: if open { "unhealthy" } else { "healthy" },
        worker_id: shared.worker_id.clone(),
        in_flight: shared.in_flight.len(),
        circuit_breakers: snapshots
            .iter()
            .map(|s| (s.component, s.state.to_string()))
            .collect(),
    };
    let code = if open {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body))
}

//! The gRPC API (SPEC §8.2): package `tasker.v1` over plain HTTP/2, with
//! the standard health service and server reflection.
//!
//! Every handler is an adapter, like the REST ones: authenticate
//! ([`auth`]), convert the request (`tasker_proto` conversions), call one
//! service function, convert the answer. Service errors become gRPC
//! statuses in one place ([`status`]), by kind, as REST maps the same kinds
//! to HTTP statuses; permissions are checked by the services themselves.

mod analytics;
mod auth;
mod dlq;
mod health;
mod input;
mod status;
mod steps;
mod tasks;
mod templates;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::Orchestrator;
use crate::auth::Authenticator;
use crate::services::health::HealthState;
use crate::services::watch::WatchHub;

/// What every gRPC handler can reach (cheap to clone).
#[derive(Clone)]
pub struct GrpcState {
    /// The engine.
    pub orchestrator: Orchestrator,
    /// Checks the credentials in request metadata.
    pub auth: Arc<Authenticator>,
    /// Open `WatchTask` streams and the notifications that feed them.
    pub watch: WatchHub,
    /// Readiness facts, mirrored into the gRPC health service.
    pub health: HealthState,
    /// Largest request message accepted (`grpc.max_message_bytes`, like
    /// REST's body limit); larger ones are refused `OUT_OF_RANGE`.
    pub max_message_bytes: usize,
}

/// Serves the Tasker services, health and reflection on `listener` until
/// `shutdown`, then stops taking calls and lets open ones finish.
///
/// # Errors
/// [`tonic::transport::Error`] when the server fails.
pub async fn serve(
    listener: TcpListener,
    state: GrpcState,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let follower = tokio::spawn(health::follow_readiness(
        reporter,
        state.clone(),
        shutdown.clone(),
    ));
    let served = Server::builder()
        .add_service(health_service)
        .add_optional_service(health::reflection())
        .add_service(tasks::service(state.clone()))
        .add_service(steps::service(state.clone()))
        .add_service(templates::service(state.clone()))
        .add_service(dlq::service(state.clone()))
        .add_service(analytics::service(state.clone()))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await;
    follower.abort();
    served
}

/// The full method path (`/tasker.v1.TaskService/CreateTask`) of every RPC
/// of package `tasker.v1`, read from the descriptor set the server
/// reflects, so a test can check that each one has an operation-table
/// entry. Empty only if the descriptor set is corrupt, which its own unit
/// test in `tasker-proto` rules out.
pub fn rpc_names() -> Vec<String> {
    tasker_proto::rpc_names().unwrap_or_default()
}

//! The standard `grpc.health.v1.Health` service, following readiness, and
//! server reflection. Both are public, like REST's `/health`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::GrpcState;

/// How often the health service looks at the orchestration loop's flag.
const REFRESH: Duration = Duration::from_secs(1);

/// Keeps the overall status (`""`) and every Tasker service's status in
/// step with whether orchestration runs, until `shutdown`. They start
/// `SERVING` — the server is up and orchestration is being started beside
/// it. Only the in-process flag is read: querying the database here would
/// cost an idle server transactions every period (SPEC §14's idle-load
/// budget is 1 per second); the database and schema checks are REST's
/// `/health/ready`, which runs them when asked.
pub(super) async fn follow_readiness(
    reporter: HealthReporter,
    state: GrpcState,
    shutdown: CancellationToken,
) {
    let services = tasker_proto::service_names().unwrap_or_default();
    let mut current = None;
    let mut status = ServingStatus::Serving;
    loop {
        if current != Some(status) {
            for name in services.iter().map(String::as_str).chain([""]) {
                reporter.set_service_status(name, status).await;
            }
            current = Some(status);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFRESH) => {}
        }
        status = if state.health.orchestration_running() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
    }
}

/// Server reflection (v1) over the Tasker package and the health service,
/// so `grpcurl` and similar tools need no `.proto` files. `None`, logged,
/// if the descriptor sets do not decode — a build bug that should not take
/// the API down with it.
pub(super) fn reflection() -> Option<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tasker_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .inspect_err(|err| tracing::error!(error = %err, "gRPC reflection unavailable"))
        .ok()
}

//! What every REST handler can reach.

use std::sync::Arc;

use tasker_config::WebConfig;

use crate::Orchestrator;
use crate::auth::Authenticator;
use crate::services::health::HealthState;
use crate::telemetry::metrics::MetricsHandle;

/// Shared by all handlers (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub orchestrator: Orchestrator,
    /// Liveness and readiness facts.
    pub health: HealthState,
    /// Limits and timeouts.
    pub web: WebConfig,
    /// The Prometheus registry.
    pub metrics: MetricsHandle,
    /// Checks credentials (a pass-through when auth is off).
    pub auth: Arc<Authenticator>,
}

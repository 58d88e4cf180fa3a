//! Health checks: liveness, readiness (database reachable, schema current,
//! orchestration running) and a detailed report with queue depths.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tasker_db::named_task;
use tasker_types::api::{HealthCheck, HealthReport};
use tasker_types::breaker::{BreakerSnapshot, BreakerState};
use tasker_types::messages::QueueName;

use crate::Orchestrator;

/// How long a check may take before it counts as failing.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the health endpoints know beyond the database.
#[derive(Clone, Debug)]
pub struct HealthState {
    started: Instant,
    orchestration_running: Arc<AtomicBool>,
}

impl Default for HealthState {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            orchestration_running: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl HealthState {
    /// Records whether the orchestration loop is running.
    pub fn set_orchestration_running(&self, running: bool) {
        self.orchestration_running.store(running, Ordering::SeqCst);
    }

    /// Whether the orchestration loop is running (no I/O).
    pub fn orchestration_running(&self) -> bool {
        self.orchestration_running.load(Ordering::SeqCst)
    }

    fn report(
        &self,
        healthy: bool,
        checks: BTreeMap<String, HealthCheck>,
        queues: BTreeMap<String, u64>,
    ) -> HealthReport {
        HealthReport {
            status: if healthy { "healthy" } else { "unhealthy" }.to_owned(),
            checks,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            queues,
        }
    }
}

/// The process is up.
pub fn live(state: &HealthState) -> HealthReport {
    state.report(true, BTreeMap::new(), BTreeMap::new())
}

async fn check<F, Fut>(f: F) -> HealthCheck
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, f())
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    HealthCheck {
        status: if outcome.is_ok() { "ok" } else { "failing" }.to_owned(),
        message: outcome.err(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Whether the server can do its job: the database answers, its schema is
/// current, and the orchestration loop runs.
pub async fn ready(orchestrator: &Orchestrator, state: &HealthState) -> HealthReport {
    let checks = readiness_checks(orchestrator, state).await;
    let healthy = checks.values().all(|c| c.status == "ok");
    state.report(healthy, checks, BTreeMap::new())
}

async fn readiness_checks(
    orchestrator: &Orchestrator,
    state: &HealthState,
) -> BTreeMap<String, HealthCheck> {
    let pool = orchestrator.pool().clone();
    let mut checks = BTreeMap::new();
    checks.insert(
        "database".to_owned(),
        check(|| async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await,
    );
    let pool = orchestrator.pool().clone();
    checks.insert(
        "migrations".to_owned(),
        check(|| async move {
            let latest = tasker_db::MIGRATOR
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
            if applied == Some(latest) {
                Ok(())
            } else {
                Err(format!(
                    "schema at {applied:?}, expected {latest}: run `tasker-server migrate`"
                ))
            }
        })
        .await,
    );
    for snapshot in orchestrator.breakers().snapshots() {
        checks.insert(
            format!("circuit_breaker_{}", snapshot.component),
            breaker_check(&snapshot),
        );
    }
    let running = state.orchestration_running.load(Ordering::SeqCst);
    checks.insert(
        "orchestration".to_owned(),
        HealthCheck {
            status: if running { "ok" } else { "failing" }.to_owned(),
            message: (!running).then(|| "the orchestration loop is not running".to_owned()),
            duration_ms: 0,
        },
    );
    checks
}

/// A breaker as a check: ready only while closed.
fn breaker_check(snapshot: &BreakerSnapshot) -> HealthCheck {
    let closed = snapshot.state == BreakerState::Closed;
    HealthCheck {
        status: if closed { "ok" } else { "failing" }.to_owned(),
        message: Some(format!(
            "{}; {} outages in a row, opened {} times, {} calls refused",
            snapshot.state, snapshot.failures_in_a_row, snapshot.times_opened, snapshot.rejected
        )),
        duration_ms: 0,
    }
}

/// Readiness plus pool and queue details.
pub async fn detailed(orchestrator: &Orchestrator, state: &HealthState) -> HealthReport {
    let mut checks = readiness_checks(orchestrator, state).await;
    let healthy = checks.values().all(|c| c.status == "ok");
    let pool = orchestrator.pool();
    checks.insert(
        "database_pool".to_owned(),
        HealthCheck {
            status: "ok".to_owned(),
            message: Some(format!("{} open, {} idle", pool.size(), pool.num_idle())),
            duration_ms: 0,
        },
    );
    let mut queues = BTreeMap::new();
    let mut names = vec![QueueName::step_results()];
    // Every worker pool's queue (routing by step), the default ones included.
    if let Ok(pools) = named_task::callables_by_pool(pool).await {
        names.extend(
            pools
                .iter()
                .filter_map(|p| QueueName::worker_pool(&p.namespace, p.pool.as_deref()).ok()),
        );
    }
    let queue = orchestrator.queue();
    for name in names {
        if let Ok(Ok(depth)) = tokio::time::timeout(CHECK_TIMEOUT, queue.depth(&name)).await {
            queues.insert(name.to_string(), depth.total);
        }
    }
    state.report(healthy, checks, queues)
}

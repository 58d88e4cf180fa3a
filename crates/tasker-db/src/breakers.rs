//! The circuit breakers (SPEC §12) a process builds from
//! `[circuit_breakers]` (one for PostgreSQL, one for the queue provider),
//! and the probe that closes the database one when PostgreSQL is back.

use std::time::Duration;

use sqlx::PgPool;
use tasker_config::{BreakerConfig, CircuitBreakersConfig};
use tasker_types::breaker::{BreakerSettings, BreakerState, Breakers, CircuitBreaker};

use crate::error::DbError;

fn settings(enabled: bool, config: &BreakerConfig) -> BreakerSettings {
    BreakerSettings {
        enabled,
        failure_threshold: config.failure_threshold,
        open_for: config.open_for,
        half_open_probes: config.half_open_probes,
    }
}

/// Closed breakers configured as `config` says.
pub fn breakers(config: &CircuitBreakersConfig) -> Breakers {
    Breakers::new(
        settings(config.enabled, &config.database),
        settings(config.enabled, &config.messaging),
    )
}

/// Closes the database breaker again once PostgreSQL answers: while it is
/// not closed, probes with `SELECT 1` each time the breaker admits a probe
/// (so "ready again by itself" needs no traffic), until `shutdown`
/// resolves. Other callers only fail fast while it is open.
pub async fn probe_database(
    pool: PgPool,
    breaker: CircuitBreaker,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let wait = if breaker.state() == BreakerState::Closed {
            poll
        } else {
            match breaker.admit() {
                Ok(()) => {
                    let answered = sqlx::query("SELECT 1").execute(&pool).await;
                    let outcome = answered.map(|_| ()).map_err(DbError::from);
                    breaker.record(&outcome);
                    if breaker.state() == BreakerState::Closed {
                        tracing::info!("PostgreSQL answers again: database circuit breaker closed");
                    }
                    poll
                }
                Err(retry_after) => retry_after.min(poll),
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

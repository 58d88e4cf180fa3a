//! Background maintenance that one orchestrator at a time performs (by
//! advisory lock): the staleness detector (SPEC §4.10) and the re-drive
//! sweep (ADR 010).

pub(crate) mod redrive;
pub(crate) mod staleness;

use std::time::Duration;

use sqlx::PgConnection;
use tasker_types::breaker::CircuitBreaker;
use tokio_util::sync::CancellationToken;

/// Runs `sweep` every `interval` (never, for `None`) until `shutdown`. The
/// first tick is skipped so that start-up stays quiet; a sweep that runs
/// long delays the next instead of bunching them; no sweep starts while
/// the database breaker is not closed (its probe brings it back).
pub(crate) async fn every<F, Fut>(
    breaker: &CircuitBreaker,
    interval: Option<Duration>,
    shutdown: CancellationToken,
    mut sweep: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(interval) = interval else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if breaker.not_closed().is_none() {
                    sweep().await;
                }
            }
        }
    }
}

/// Whether this process leads the sweep named by `key` for as long as
/// `conn`'s transaction lasts (a transaction-scoped advisory lock).
pub(crate) async fn lead(conn: &mut PgConnection, key: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await
}

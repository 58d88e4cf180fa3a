//! How far behind orchestration and the workers are (SPEC §12
//! backpressure), measured by one bounded query over the partial index of
//! steps waiting for a pointer — its cost is capped by `limit`, however
//! large the backlog.

use sqlx::PgPool;

use crate::error::DbError;

/// Steps waiting on someone, counted up to a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Results written by workers and not yet applied by orchestration.
    pub pending_results: u64,
    /// Steps dispatched to a worker queue and not yet claimed.
    pub unclaimed_steps: u64,
    /// Whether the count stopped at the limit (both figures are then
    /// lower bounds, and their sum is the limit).
    pub truncated: bool,
}

/// Counts waiting steps, reading at most `limit` index entries.
///
/// # Errors
/// [`DbError`] when PostgreSQL fails.
pub async fn measure(pool: &PgPool, limit: u64) -> Result<Backlog, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (results, unclaimed, seen): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state <> 'enqueued'), \
                count(*) FILTER (WHERE state = 'enqueued'), \
                count(*) \
         FROM (SELECT state FROM tasker.workflow_steps \
               WHERE state IN ('enqueued', 'enqueued_for_orchestration', \
                               'enqueued_as_error_for_orchestration') \
               LIMIT $1) waiting",
    )
    .bind(limit)
    .fetch_one(pool)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Backlog {
        pending_results: count(results),
        unclaimed_steps: count(unclaimed),
        truncated: seen >= limit,
    })
}

//! Tasks by state and DLQ entries by status, for metrics (SPEC §11),
//! without counting the big tables: triggers append each statement's net
//! change to `tasker.state_count_deltas` (migration `…_telemetry.sql`), and
//! [`fold_and_read`] folds those into `tasker.state_counts` and reads the
//! totals — a handful of rows, whatever the number of tasks.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::error::DbError;

/// Serialises folding between processes; readers never wait for it.
const FOLD_LOCK: i64 = 0x7461_736b_6572_0011;

/// The statement that reads the counts: the totals plus the deltas not
/// folded yet (public so a benchmark can show its plan).
pub const READ_COUNTS: &str = "SELECT kind, state, sum(n)::int8 FROM ( \
     SELECT kind, state, n FROM tasker.state_counts \
     UNION ALL SELECT kind, state, delta FROM tasker.state_count_deltas) all_counts \
     GROUP BY kind, state";

/// Current counts, by state (tasks) and by status (DLQ entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Tasks per state; states with no task are absent or zero.
    pub tasks: BTreeMap<String, i64>,
    /// DLQ entries per status.
    pub dlq: BTreeMap<String, i64>,
}

/// Folds pending deltas into the totals (unless another process is doing
/// so right now) and returns the totals plus whatever deltas remain, in one
/// transaction.
///
/// # Errors
/// [`DbError`] when PostgreSQL fails.
pub async fn fold_and_read(pool: &PgPool) -> Result<StateCounts, DbError> {
    let mut tx = pool.begin().await?;
    let folding: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(FOLD_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if folding {
        // Rows committed after this statement's snapshot stay for the next
        // fold; ORDER BY keeps the upserts' lock order fixed.
        sqlx::query(
            "WITH moved AS (DELETE FROM tasker.state_count_deltas RETURNING kind, state, delta) \
             INSERT INTO tasker.state_counts AS c (kind, state, n) \
             SELECT kind, state, sum(delta) FROM moved GROUP BY kind, state ORDER BY kind, state \
             ON CONFLICT (kind, state) DO UPDATE SET n = c.n + EXCLUDED.n",
        )
        .execute(&mut *tx)
        .await?;
    }
    let rows: Vec<(String, String, i64)> = sqlx::query_as(READ_COUNTS).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let mut counts = StateCounts::default();
    for (kind, state, n) in rows {
        let into = if kind == "dlq" {
            &mut counts.dlq
        } else {
            &mut counts.tasks
        };
        into.insert(state, n);
    }
    Ok(counts)
}

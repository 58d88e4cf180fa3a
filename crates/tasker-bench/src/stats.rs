//! Small statistics and database counters.

use std::collections::BTreeMap;

use sqlx::PgPool;

/// The `q`-th percentile (0–100) of `samples`, by nearest rank.
pub(crate) fn percentile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Committed plus rolled-back transactions of `database` so far
/// (`pg_stat_database`, as the issue defines the figure). Statistics reach
/// the view with a delay of up to a second under load.
pub(crate) async fn transactions(pool: &PgPool, database: &str) -> anyhow::Result<i64> {
    // A fresh snapshot, not the one cached for this transaction.
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::int8 FROM pg_stat_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_one(pool)
    .await?;
    Ok(total)
}

/// Row versions written to each table of the connected database so far:
/// inserted plus updated tuples (`pg_stat_user_tables`; an update, HOT or
/// not, writes a new version), and deleted tuples apart, since a delete
/// marks a version dead without writing one. Counters lag like
/// [`transactions`].
pub(crate) async fn row_writes(pool: &PgPool) -> anyhow::Result<BTreeMap<String, RowWrites>> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del
         FROM pg_stat_user_tables",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(table, inserted, updated, deleted)| {
            (
                table,
                RowWrites {
                    inserted,
                    updated,
                    deleted,
                },
            )
        })
        .collect())
}

/// Tuples a table had inserted, updated and deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct RowWrites {
    pub(crate) inserted: i64,
    pub(crate) updated: i64,
    pub(crate) deleted: i64,
}

impl RowWrites {
    /// New row versions: inserts plus updates.
    pub(crate) fn versions(&self) -> i64 {
        self.inserted + self.updated
    }
}

/// What each table wrote between two [`row_writes`] readings; tables that
/// wrote nothing are left out.
pub(crate) fn row_writes_between(
    before: &BTreeMap<String, RowWrites>,
    after: &BTreeMap<String, RowWrites>,
) -> BTreeMap<String, RowWrites> {
    after
        .iter()
        .filter_map(|(table, a)| {
            let b = before.get(table).copied().unwrap_or_default();
            let delta = RowWrites {
                inserted: a.inserted - b.inserted,
                updated: a.updated - b.updated,
                deleted: a.deleted - b.deleted,
            };
            (delta != RowWrites::default()).then(|| (table.clone(), delta))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&samples, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn row_writes_between_keeps_only_tables_that_wrote() {
        let w = |inserted, updated, deleted| RowWrites {
            inserted,
            updated,
            deleted,
        };
        let before = BTreeMap::from([("a".to_owned(), w(1, 2, 3)), ("b".to_owned(), w(5, 5, 5))]);
        let after = BTreeMap::from([
            ("a".to_owned(), w(4, 2, 4)),
            ("b".to_owned(), w(5, 5, 5)),
            ("c".to_owned(), w(2, 0, 0)),
        ]);
        let delta = row_writes_between(&before, &after);
        assert_eq!(
            delta,
            BTreeMap::from([("a".to_owned(), w(3, 0, 1)), ("c".to_owned(), w(2, 0, 0))])
        );
        assert_eq!(delta["a"].versions(), 3);
    }
}

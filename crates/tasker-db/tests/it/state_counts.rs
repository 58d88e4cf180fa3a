//! Tasks by state and DLQ entries by status, kept by triggers and folded
//! by `state_counts::fold_and_read`: right after inserts, updates (many
//! rows per statement, concurrent writers), deletes and cascades, and
//! whatever the folding order.

use std::collections::BTreeMap;

use tasker_db::state_counts::{StateCounts, fold_and_read};
use tasker_db::testing::TestDb;

use crate::support::create_diamond;

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

/// Drops zero entries (a state emptied again reads 0, not absent).
fn nonzero(map: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    map.iter()
        .filter(|(_, n)| **n != 0)
        .map(|(s, n)| (s.clone(), *n))
        .collect()
}

async fn read(db: &TestDb) -> StateCounts {
    fold_and_read(db.pool()).await.unwrap()
}

#[tokio::test]
async fn counts_follow_every_kind_of_write_without_counting_tasks() {
    let db = TestDb::new().await.unwrap();
    assert_eq!(read(&db).await, StateCounts::default());
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create_diamond(db.pool()).await.task.task_uuid);
    }
    assert_eq!(nonzero(&read(&db).await.tasks), counts(&[("pending", 5)]));

    // One statement moving three rows, and two writers at once.
    sqlx::query("UPDATE tasker.tasks SET state = 'steps_in_process' WHERE task_uuid = ANY($1)")
        .bind(created[..3].iter().map(|t| t.as_uuid()).collect::<Vec<_>>())
        .execute(db.pool())
        .await
        .unwrap();
    let finish = |task: tasker_types::ids::TaskUuid, state: &'static str| {
        let pool = db.pool().clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("UPDATE tasker.tasks SET state = $2 WHERE task_uuid = $1")
                .bind(task.as_uuid())
                .bind(state)
                .execute(&mut *tx)
                .await
                .unwrap();
            // A fold running meanwhile must neither lose nor double this.
            fold_and_read(&pool).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    tokio::join!(finish(created[0], "complete"), finish(created[1], "error"));
    // A statement that writes a task without moving it changes nothing.
    sqlx::query("UPDATE tasker.tasks SET priority = 3")
        .execute(db.pool())
        .await
        .unwrap();
    let now = read(&db).await;
    assert_eq!(
        nonzero(&now.tasks),
        counts(&[
            ("complete", 1),
            ("error", 1),
            ("pending", 2),
            ("steps_in_process", 1)
        ])
    );
    assert_eq!(now.tasks.values().sum::<i64>(), 5);

    // DLQ entries by status, and a task's delete cascading to its entry.
    sqlx::query(
        "INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, reason, original_state, snapshot)
         SELECT gen_random_uuid(), task_uuid, 'manual_dlq', state, '{}' FROM tasker.tasks
         WHERE state IN ('error', 'pending')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE tasker.tasks_dlq SET status = 'investigating' WHERE task_uuid = $1")
        .bind(created[1].as_uuid())
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(
        nonzero(&read(&db).await.dlq),
        counts(&[("investigating", 1), ("pending", 2)])
    );
    sqlx::query("DELETE FROM tasker.tasks WHERE task_uuid = $1")
        .bind(created[1].as_uuid())
        .execute(db.pool())
        .await
        .unwrap();
    let after = read(&db).await;
    assert_eq!(nonzero(&after.dlq), counts(&[("pending", 2)]));
    assert_eq!(
        nonzero(&after.tasks),
        counts(&[("complete", 1), ("pending", 2), ("steps_in_process", 1)])
    );

    // The truth, counted the slow way, agrees; and every delta was folded.
    let truth: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM tasker.tasks GROUP BY state")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(nonzero(&after.tasks), truth.into_iter().collect());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.state_count_deltas")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

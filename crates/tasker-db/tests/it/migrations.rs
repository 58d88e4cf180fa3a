use tasker_db::testing::TestDb;

#[tokio::test]
async fn migrate_is_idempotent_and_installs_pgmq_and_the_schema() {
    let db = TestDb::new().await.unwrap();
    // The template database is already migrated; a second run is a no-op.
    tasker_db::migrate(db.pool()).await.unwrap();
    let pgmq_versions: Vec<String> =
        sqlx::query_scalar("SELECT version FROM pgmq.__pgmq_migrations")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        pgmq_versions,
        ["1.13.0"],
        "the bundled pgmq SQL is installed once"
    );
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'tasker' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "message_outbox",
            "named_tasks",
            "state_count_deltas",
            "state_counts",
            "task_namespaces",
            "task_transitions",
            "task_watches",
            "tasks",
            "tasks_dlq",
            "workflow_step_edges",
            "workflow_step_result_audit",
            "workflow_step_transitions",
            "workflow_steps"
        ]
    );
    let has_send: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = 'pgmq' AND p.proname = 'send_batch')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(has_send, "pgmq functions are installed");
    let no_extension: bool =
        sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(
        no_extension,
        "pgmq runs as plain SQL, not a server extension"
    );
}

#[tokio::test]
async fn migrating_concurrently_from_several_processes_is_safe() {
    let db = TestDb::new().await.unwrap();
    let runs = (0..4).map(|_| {
        let pool = db.pool().clone();
        tokio::spawn(async move { tasker_db::migrate(&pool).await })
    });
    for run in runs {
        run.await.unwrap().unwrap();
    }
}

#[test]
fn the_pgmq_version_constant_matches_the_lockfile() {
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"pgmq\""))
        .unwrap();
    assert!(
        entry.contains(&format!("version = \"{}\"", tasker_db::PGMQ_CRATE_VERSION)),
        "{entry}"
    );
}

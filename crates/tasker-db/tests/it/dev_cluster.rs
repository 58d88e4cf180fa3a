//! The private cluster starts, serves connections on its own socket, and stops.

use std::time::Duration;

use sqlx::Connection;
use tasker_db::dev_cluster::DevCluster;

#[tokio::test]
async fn the_private_cluster_starts_serves_and_stops() {
    let dir = std::env::temp_dir().join(format!("tasker-cluster-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || DevCluster::start(&dir)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(cluster.started_here());
    assert!(
        dir.join(".s.PGSQL.5432").exists(),
        "its socket lives in its data directory"
    );

    let url = cluster.url("postgres");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        listen, "",
        "no TCP listener: it never touches another server"
    );
    // Tasker's schema installs into it like into any server.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    tasker_db::migrate(&pool).await.unwrap();
    pool.close().await;
    conn.close().await.unwrap();

    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
    let refused =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "the server is gone after stop"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(dir.with_extension("lock")).unwrap();
}

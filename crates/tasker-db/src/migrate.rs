//! Schema installation: PGMQ from the `pgmq` crate's bundled SQL (no server
//! extension), then Tasker's own migrations. Safe to run from several
//! processes at once, and a no-op when everything is installed.

use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::error::DbError;

/// Tasker's migrations (`crates/tasker-db/migrations`), embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// The `pgmq` crate whose bundled SQL is installed; kept equal to the
/// workspace's pin by a test, so test templates are rebuilt when it changes.
pub const PGMQ_CRATE_VERSION: &str = "0.34.0-alpha.7";

/// An arbitrary, fixed advisory-lock key that serializes migrators.
const MIGRATE_LOCK_KEY: i64 = 0x7461_736B_6572_0001;

/// Installs PGMQ into schema `pgmq` and applies every pending migration.
///
/// # Errors
/// [`DbError`] when PostgreSQL is unreachable or a script fails; a failed
/// script leaves the database as it was before that script.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    // The pgmq installer is not safe against concurrent runs; hold a session
    // advisory lock on a connection of our own while it and sqlx run.
    let mut lock = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *lock)
        .await?;
    let result = install(pool).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *lock)
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn install(pool: &PgPool) -> Result<(), DbError> {
    pgmq::install::install_sql_from_embedded(pool)
        .await
        .map_err(|err| DbError::PgmqInstall(err.to_string()))?;
    MIGRATOR.run(pool).await?;
    Ok(())
}

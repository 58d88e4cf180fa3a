//! Connection pools built from `[database]` configuration.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tasker_config::DatabaseConfig;

use crate::error::DbError;

/// Opens a pool as `config` describes. Connections identify themselves as
/// `application_name` in `pg_stat_activity`.
///
/// # Errors
/// [`DbError`] when the URL is malformed or PostgreSQL is unreachable.
pub async fn connect(config: &DatabaseConfig, application_name: &str) -> Result<PgPool, DbError> {
    let mut options: PgConnectOptions = config
        .url
        .parse()
        .map_err(|err: sqlx::Error| DbError::Database(err))?;
    options = options.application_name(application_name);
    if let Some(timeout) = config.statement_timeout {
        options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Some(config.idle_timeout))
        .connect_with(options)
        .await?;
    Ok(pool)
}

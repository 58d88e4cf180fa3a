//! `[database]`: the PostgreSQL connection pool.

use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    url: String,
    max_connections: u32,
    min_connections: u32,
    acquire_timeout_ms: u64,
    idle_timeout_ms: u64,
    statement_timeout_ms: u64,
}

/// How to reach PostgreSQL, and how many connections to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Connection string (secret: may contain a password).
    pub url: String,
    /// Most connections one process opens.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
    /// Idle connections above the minimum close after this long.
    pub idle_timeout: Duration,
    /// Server-side limit on one statement; `None` when disabled.
    pub statement_timeout: Option<Duration>,
}

impl RawDatabase {
    pub(crate) fn validate(self) -> Result<DatabaseConfig, ConfigError> {
        let scheme_ok =
            self.url.starts_with("postgres://") || self.url.starts_with("postgresql://");
        if !scheme_ok {
            return Err(ConfigError::Invalid {
                key: "database.url".into(),
                message: "must be a postgres:// or postgresql:// URL".into(),
            });
        }
        let max_connections = in_range("database.max_connections", self.max_connections, 1, 1000)?;
        let min_connections = in_range(
            "database.min_connections",
            self.min_connections,
            0,
            max_connections,
        )?;
        Ok(DatabaseConfig {
            url: self.url,
            max_connections,
            min_connections,
            acquire_timeout: millis(
                "database.acquire_timeout_ms",
                self.acquire_timeout_ms,
                1,
                600_000,
            )?,
            idle_timeout: millis(
                "database.idle_timeout_ms",
                self.idle_timeout_ms,
                1_000,
                86_400_000,
            )?,
            statement_timeout: match self.statement_timeout_ms {
                0 => None,
                ms => Some(millis("database.statement_timeout_ms", ms, 1, 86_400_000)?),
            },
        })
    }
}

impl DatabaseConfig {
    /// The URL with any password replaced by `***`, for logs and `config show`.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgresql://app:s3cr3t@db:5432/tasker"),
            "postgresql://app:***@db:5432/tasker"
        );
        assert_eq!(
            redact_url_password("postgresql://app@db/tasker"),
            "postgresql://app@db/tasker"
        );
    }
}

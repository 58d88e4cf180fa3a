//! `[messaging]`: which queue provider carries Tasker's pointer messages.

use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMessaging {
    backend: String,
}

/// The queue provider (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagingBackend {
    /// PGMQ in the same PostgreSQL database (sends join state-change transactions).
    Pgmq,
    /// In process memory; for tests of a single process only.
    InMemory,
}

impl MessagingBackend {
    /// The backend's name as written in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessagingBackend::Pgmq => "pgmq",
            MessagingBackend::InMemory => "in_memory",
        }
    }
}

/// Messaging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagingConfig {
    /// The provider.
    pub backend: MessagingBackend,
}

impl RawMessaging {
    pub(crate) fn validate(self) -> Result<MessagingConfig, ConfigError> {
        let backend = match self.backend.as_str() {
            "pgmq" => MessagingBackend::Pgmq,
            "in_memory" => MessagingBackend::InMemory,
            other => {
                return Err(ConfigError::Invalid {
                    key: "messaging.backend".into(),
                    message: format!("unknown backend `{other}`: expected `pgmq` or `in_memory`"),
                });
            }
        };
        Ok(MessagingConfig { backend })
    }
}

//! `[messaging]`: which queue provider carries Tasker's pointer messages.

use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMessaging {
    backend: String,
    rabbitmq: RawRabbit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRabbit {
    url: String,
    prefetch: u32,
    queue_prefix: String,
}

/// The queue provider (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagingBackend {
    /// PGMQ in the same PostgreSQL database (sends join state-change transactions).
    Pgmq,
    /// RabbitMQ (`[messaging.rabbitmq]`); sends inside state changes go
    /// through the outbox table.
    RabbitMq,
    /// In process memory; for tests of a single process only.
    InMemory,
}

impl MessagingBackend {
    /// The backend's name as written in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessagingBackend::Pgmq => "pgmq",
            MessagingBackend::RabbitMq => "rabbitmq",
            MessagingBackend::InMemory => "in_memory",
        }
    }
}

/// Messaging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagingConfig {
    /// The provider.
    pub backend: MessagingBackend,
    /// How to reach RabbitMQ (used when `backend` is RabbitMQ).
    pub rabbitmq: RabbitConfig,
}

/// `[messaging.rabbitmq]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RabbitConfig {
    /// `amqp://user:password@host:port/vhost` (`RABBITMQ_URL`).
    pub url: String,
    /// Most unacknowledged deliveries per queue consumer.
    pub prefetch: u16,
    /// Prepended to every queue name, so installations can share a broker.
    pub queue_prefix: String,
}

impl std::fmt::Debug for RabbitConfig {
    // The URL carries a password: show only where it points.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.url.rsplit('@').next().unwrap_or_default();
        f.debug_struct("RabbitConfig")
            .field("url", &format_args!("amqp://…@{host}"))
            .field("prefetch", &self.prefetch)
            .field("queue_prefix", &self.queue_prefix)
            .finish()
    }
}

impl RawMessaging {
    pub(crate) fn validate(self) -> Result<MessagingConfig, ConfigError> {
        let backend = match self.backend.as_str() {
            "pgmq" => MessagingBackend::Pgmq,
            "rabbitmq" => MessagingBackend::RabbitMq,
            "in_memory" => MessagingBackend::InMemory,
            other => {
                return Err(ConfigError::Invalid {
                    key: "messaging.backend".into(),
                    message: format!(
                        "unknown backend `{other}`: expected `pgmq`, `rabbitmq` or `in_memory`"
                    ),
                });
            }
        };
        Ok(MessagingConfig {
            backend,
            rabbitmq: self.rabbitmq.validate()?,
        })
    }
}

impl RawRabbit {
    fn validate(self) -> Result<RabbitConfig, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("messaging.rabbitmq.{key}"),
            message,
        };
        if self.url.starts_with("amqps://") {
            return Err(invalid(
                "url",
                "amqps:// is not supported: this build speaks plain AMQP (amqp://); \
                 terminate TLS in front of the broker or on a local proxy"
                    .into(),
            ));
        }
        if !self.url.starts_with("amqp://") {
            return Err(invalid("url", "must start with amqp://".into()));
        }
        let prefetch = u16::try_from(self.prefetch)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("prefetch", format!("{} is not in 1..=65535", self.prefetch)))?;
        let prefix_ok = !self.queue_prefix.is_empty()
            && self.queue_prefix.len() <= 64
            && self
                .queue_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !prefix_ok {
            return Err(invalid(
                "queue_prefix",
                format!(
                    "`{}` must be 1-64 characters of letters, digits, `_`, `-` and `.`",
                    self.queue_prefix
                ),
            ));
        }
        Ok(RabbitConfig {
            url: self.url,
            prefetch,
            queue_prefix: self.queue_prefix,
        })
    }
}

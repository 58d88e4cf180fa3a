//! The one place that picks a queue provider from configuration.

use std::sync::Arc;

use sqlx::PgPool;
use tasker_config::{MessagingBackend, MessagingConfig};
use tasker_types::breaker::CircuitBreaker;

use crate::guarded::Guarded;
use crate::in_memory::InMemoryQueue;
use crate::outbox::Outboxed;
use crate::pgmq::PgmqQueue;
use crate::queue::MessageQueue;
use crate::rabbitmq::{RabbitQueue, RabbitSettings};

/// Wake-ups an in-memory subscriber can hold before it is told it may have
/// missed some (it then checks every queue).
const IN_MEMORY_WAKE_CAPACITY: usize = 1024;

/// The provider `config` names, with transactional send: PGMQ over `pool`;
/// RabbitMQ behind the outbox in `pool`'s database; or a queue in this
/// process's memory behind the outbox (a new one per call: only components
/// handed the same value share it). Does no I/O: RabbitMQ connects on
/// first use.
pub fn connect(config: &MessagingConfig, pool: &PgPool) -> Arc<dyn MessageQueue> {
    build(config, pool, None)
}

/// As [`connect`], with `breaker` in front of the provider (SPEC §12).
/// Behind the outbox, the breaker guards the broker and not the outbox
/// writes: a result still commits while the broker is down, and is relayed
/// when it is back.
pub fn connect_guarded(
    config: &MessagingConfig,
    pool: &PgPool,
    breaker: &CircuitBreaker,
) -> Arc<dyn MessageQueue> {
    build(config, pool, Some(breaker))
}

fn build(
    config: &MessagingConfig,
    pool: &PgPool,
    breaker: Option<&CircuitBreaker>,
) -> Arc<dyn MessageQueue> {
    let guard = |inner: Arc<dyn MessageQueue>| -> Arc<dyn MessageQueue> {
        match breaker {
            Some(breaker) => Arc::new(Guarded::new(inner, breaker.clone())),
            None => inner,
        }
    };
    match config.backend {
        MessagingBackend::Pgmq => guard(Arc::new(PgmqQueue::new(pool.clone()))),
        MessagingBackend::RabbitMq => {
            let rabbit = RabbitQueue::new(RabbitSettings {
                url: config.rabbitmq.url.clone(),
                prefetch: config.rabbitmq.prefetch,
                queue_prefix: config.rabbitmq.queue_prefix.clone(),
                queue_expires: None,
            });
            Arc::new(Outboxed::new(guard(Arc::new(rabbit)), pool.clone()))
        }
        MessagingBackend::InMemory => Arc::new(Outboxed::new(
            guard(Arc::new(InMemoryQueue::new(IN_MEMORY_WAKE_CAPACITY))),
            pool.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_config::RabbitConfig;

    #[tokio::test]
    async fn the_configured_backend_is_the_provider_and_sends_are_transactional() {
        // Never connected: choosing a provider does no I/O.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgresql://nobody@127.0.0.1:1/none")
            .unwrap();
        for (backend, name) in [
            (MessagingBackend::Pgmq, "pgmq"),
            (MessagingBackend::RabbitMq, "rabbitmq"),
            (MessagingBackend::InMemory, "in_memory"),
        ] {
            let config = MessagingConfig {
                backend,
                rabbitmq: RabbitConfig {
                    url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
                    prefetch: 10,
                    queue_prefix: "t".into(),
                },
            };
            let queue = connect(&config, &pool);
            assert_eq!(queue.provider(), name);
            assert!(queue.capabilities().transactional_send);
            assert!(queue.capabilities().delayed_send);
        }
    }
}

//! The one place that picks a queue provider from configuration.

use std::sync::Arc;

use sqlx::PgPool;
use tasker_config::{MessagingBackend, MessagingConfig};

use crate::in_memory::InMemoryQueue;
use crate::pgmq::PgmqQueue;
use crate::queue::MessageQueue;

/// Wake-ups an in-memory subscriber can hold before it is told it may have
/// missed some (it then checks every queue).
const IN_MEMORY_WAKE_CAPACITY: usize = 1024;

/// The provider `config` names: PGMQ over `pool`, or a queue in this
/// process's memory (a new one per call: only components handed the same
/// value share it).
pub fn connect(config: &MessagingConfig, pool: &PgPool) -> Arc<dyn MessageQueue> {
    match config.backend {
        MessagingBackend::Pgmq => Arc::new(PgmqQueue::new(pool.clone())),
        MessagingBackend::InMemory => Arc::new(InMemoryQueue::new(IN_MEMORY_WAKE_CAPACITY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_configured_backend_is_the_provider() {
        // Never connected: choosing a provider does no I/O.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgresql://nobody@127.0.0.1:1/none")
            .unwrap();
        for (backend, name) in [
            (MessagingBackend::Pgmq, "pgmq"),
            (MessagingBackend::InMemory, "in_memory"),
        ] {
            let queue = connect(&MessagingConfig { backend }, &pool);
            assert_eq!(queue.provider(), name);
        }
    }
}

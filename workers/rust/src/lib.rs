//! Example handlers for the templates in `config/tasks/`, written the way a
//! Tasker user writes theirs. [`register_examples`] adds them to a registry;
//! the `rust-worker` binary runs them with the built-in `tasker::*` handlers.

mod approvals;
pub mod csv;
mod ecommerce;
pub mod examples;
mod numbers;
mod parity;

use tasker_worker::HandlerRegistry;

/// A registry with the built-in handlers and every example handler.
pub fn registry() -> HandlerRegistry {
    let mut registry = HandlerRegistry::with_builtins();
    register_examples(&mut registry);
    registry
}

/// Adds every example handler to `registry`.
pub fn register_examples(registry: &mut HandlerRegistry) {
    numbers::register(registry);
    ecommerce::register(registry);
    approvals::register(registry);
    csv::register(registry);
    parity::register(registry);
}

//! Handlers by `callable`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::context::StepContext;
use crate::handler::{HandlerResult, StepHandler};

/// The handlers a worker can run, keyed by `callable`.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn StepHandler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.handlers.keys().collect();
        names.sort();
        f.debug_struct("HandlerRegistry")
            .field("callables", &names)
            .finish()
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in `tasker::*` handlers.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        crate::builtins::register(&mut registry);
        registry
    }

    /// Registers `handler` under `callable`, replacing any earlier one.
    pub fn register(
        &mut self,
        callable: impl Into<String>,
        handler: impl StepHandler,
    ) -> &mut Self {
        self.handlers.insert(callable.into(), Arc::new(handler));
        self
    }

    /// Registers an async function as a handler.
    ///
    /// ```
    /// use tasker_worker::{HandlerRegistry, Success};
    ///
    /// let mut registry = HandlerRegistry::new();
    /// registry.register_fn("greet::hello", |ctx| async move {
    ///     Ok(Success::new(serde_json::json!({ "hello": ctx.context["name"] })))
    /// });
    /// assert!(registry.contains("greet::hello"));
    /// ```
    pub fn register_fn<F, Fut>(&mut self, callable: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.register(callable, FnHandler(f))
    }

    /// The handler for `callable`.
    pub fn get(&self, callable: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(callable).cloned()
    }

    /// Whether `callable` has a handler.
    pub fn contains(&self, callable: &str) -> bool {
        self.handlers.contains_key(callable)
    }

    /// Every registered callable, sorted.
    pub fn callables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.handlers.keys().cloned().collect();
        names.sort();
        names
    }
}

struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> StepHandler for FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        (self.0)(ctx).await
    }
}

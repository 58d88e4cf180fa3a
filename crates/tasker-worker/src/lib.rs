//! Tasker's worker runtime, shared by every handler language (SPEC §7).
//!
//! Write a [`StepHandler`] (or an async function), register it under its
//! `callable` in a [`HandlerRegistry`], and run a [`Worker`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tasker_worker::{HandlerError, HandlerRegistry, Success, Worker};
//! use tokio_util::sync::CancellationToken;
//!
//! let mut registry = HandlerRegistry::with_builtins();
//! registry.register_fn("payments::charge", |ctx| async move {
//!     let amount = ctx.context["amount"].as_i64().ok_or_else(|| HandlerError::permanent("amount missing"))?;
//!     Ok(Success::new(serde_json::json!({ "charged": amount })))
//! });
//! let worker = Worker::connect(tasker_config::load()?, registry).await?;
//! worker.run(CancellationToken::new()).await?;
//! # Ok(()) }
//! ```
//!
//! The worker claims a step with a compare-and-set, runs its handler under
//! the step's timeout with a lease it renews, turns panics and overruns into
//! failures, and writes outcomes in batches. If it dies, its lease expires
//! and another worker re-claims the step as a new attempt; the dead
//! attempt's late result is rejected. Handlers should be idempotent.

//!
//! Handlers in other languages run on the same runtime through the
//! [`dispatch`] surface: the Python, Ruby and TypeScript workers are thin
//! bindings over [`dispatch::EmbeddedWorker`].

mod attempt;
mod builtins;
mod context;
pub mod dispatch;
mod error;
pub mod events;
mod handler;
mod registry;
mod runtime;

pub use context::{StepContext, StepContextData};
pub use error::WorkerError;
pub use handler::{HandlerError, HandlerResult, StepHandler, Success, from_outcome, to_outcome};
pub use registry::HandlerRegistry;
pub use runtime::Worker;
pub use runtime::templates::{register_template_files, register_template_sources};

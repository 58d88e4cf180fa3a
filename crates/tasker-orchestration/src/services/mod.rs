//! The service layer: one function per API operation, shared by every
//! adapter (REST now, gRPC later). Adapters convert input, call a service,
//! convert output — no rules and no SQL in them.

pub mod dlq;
pub mod health;
pub mod steps;
pub mod tasks;
pub mod templates;
mod views;

pub use views::{execution_status, step_view, task_view};

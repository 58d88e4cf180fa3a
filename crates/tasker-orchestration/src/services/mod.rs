//! The service layer: one function per API operation, shared by every
//! adapter (REST and gRPC). Each takes the calling [`Principal`] and checks
//! the permission it needs; each fails with a [`ServiceError`]. Adapters
//! authenticate, convert input, call a service, convert output — no rules
//! and no SQL in them.
//!
//! [`Principal`]: crate::auth::Principal
//! [`ServiceError`]: error::ServiceError

pub mod analytics;
pub mod dlq;
pub mod error;
pub mod health;
pub mod steps;
pub mod tasks;
pub mod templates;
mod views;
pub mod watch;

pub use views::{execution_status, step_view, task_view};

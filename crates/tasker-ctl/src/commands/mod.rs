//! One module per command group.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod dev;
pub(crate) mod dlq;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod task;
pub(crate) mod template;

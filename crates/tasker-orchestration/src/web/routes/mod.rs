//! REST handlers: adapters that convert input, call one service, convert output.

pub(crate) mod analytics;
pub(crate) mod dlq;
pub(crate) mod health;
pub(crate) mod steps;
pub(crate) mod tasks;
pub(crate) mod templates;

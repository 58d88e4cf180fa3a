//! Metrics: the recorder and catalogue live in [`tasker_telemetry`];
//! [`gauges`] refreshes the ones read from the database.

pub mod gauges;
pub use tasker_telemetry::metrics;

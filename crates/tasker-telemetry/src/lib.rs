//! Telemetry for every Tasker process (SPEC §11), set up in one place so the
//! server, the CLI, the Rust worker and the Python, Ruby and TypeScript
//! workers' Rust cores log, trace and count alike.
//!
//! - [`init`]: the tracing subscriber — readable on a terminal, JSON
//!   otherwise (or as `[telemetry] log_format` says), filtered by `RUST_LOG`
//!   or `log_level` — plus OTLP trace export over gRPC when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (`[telemetry] otlp_endpoint`) is set. The
//!   returned [`Telemetry`] flushes spans when shut down or dropped.
//! - [`propagation`]: a span's W3C trace context to and from
//!   [`TraceParent`](tasker_types::trace::TraceParent), the form stored with
//!   tasks and carried in queue messages.
//! - [`metrics`]: the process-wide Prometheus recorder and the metric
//!   catalogue (`docs/metrics.md`).
//! - [`shutdown`]: SIGINT/SIGTERM as a cancellation token.

pub mod metrics;
pub mod propagation;
pub mod shutdown;
mod subscriber;

pub use subscriber::{LogOutput, Telemetry, TelemetryError, flush_process, init, init_process};

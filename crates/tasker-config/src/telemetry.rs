//! `[telemetry]`: logging, trace export and metric sampling.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    log_format: String,
    log_level: String,
    otlp_endpoint: String,
    metrics_sample_interval_ms: u64,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Readable text.
    Pretty,
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Format.
    pub log_format: LogFormat,
    /// Default filter (`RUST_LOG` wins).
    pub log_level: String,
    /// OTLP/gRPC collector to export spans to (`OTEL_EXPORTER_OTLP_ENDPOINT`);
    /// `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// How often gauges read from the database (tasks by state, DLQ size,
    /// queue depths) are refreshed.
    pub metrics_sample_interval: Duration,
}

impl RawTelemetry {
    pub(crate) fn validate(self) -> Result<TelemetryConfig, ConfigError> {
        let log_format = match self.log_format.as_str() {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::Invalid {
                    key: "telemetry.log_format".into(),
                    message: format!(
                        "unknown format `{other}`: expected `auto`, `json` or `pretty`"
                    ),
                });
            }
        };
        if self.log_level.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "telemetry.log_level".into(),
                message: "must not be empty (e.g. `info` or `info,sqlx=warn`)".into(),
            });
        }
        let endpoint = self.otlp_endpoint.trim();
        let otlp_endpoint = if endpoint.is_empty() {
            None
        } else if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            Some(endpoint.to_owned())
        } else {
            return Err(ConfigError::Invalid {
                key: "telemetry.otlp_endpoint".into(),
                message: format!(
                    "`{endpoint}` is not an http:// or https:// URL (e.g. http://localhost:4317)"
                ),
            });
        };
        if self.metrics_sample_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "telemetry.metrics_sample_interval_ms".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(TelemetryConfig {
            log_format,
            log_level: self.log_level,
            otlp_endpoint,
            metrics_sample_interval: Duration::from_millis(self.metrics_sample_interval_ms),
        })
    }
}

//! `[telemetry]`: logging.

use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    log_format: String,
    log_level: String,
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
        Ok(TelemetryConfig {
            log_format,
            log_level: self.log_level,
        })
    }
}

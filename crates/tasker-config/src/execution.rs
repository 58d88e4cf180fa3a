//! `[execution]`: defaults for running steps.

use std::time::Duration;

use serde::Deserialize;

use crate::check::in_range;
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExecution {
    default_timeout_seconds: u32,
    backoff_jitter_percent: u32,
}

/// How steps run when their template does not say.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionConfig {
    /// Per-attempt timeout for steps without `timeout_seconds`.
    pub default_timeout: Duration,
    /// ± spread of retry delays as a fraction (0.15 for 15 %).
    pub backoff_jitter: f64,
}

impl RawExecution {
    pub(crate) fn validate(self) -> Result<ExecutionConfig, ConfigError> {
        let timeout = in_range(
            "execution.default_timeout_seconds",
            self.default_timeout_seconds,
            1,
            86_400,
        )?;
        let jitter = in_range(
            "execution.backoff_jitter_percent",
            self.backoff_jitter_percent,
            0,
            100,
        )?;
        Ok(ExecutionConfig {
            default_timeout: Duration::from_secs(u64::from(timeout)),
            backoff_jitter: f64::from(jitter) / 100.0,
        })
    }
}

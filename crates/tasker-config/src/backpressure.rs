//! `[backpressure]`: when the API refuses new tasks because orchestration
//! is behind (SPEC §12).

use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackpressure {
    max_pending_results: u64,
    max_unclaimed_steps: u64,
    sample_interval_ms: u64,
    retry_after_seconds: u64,
}

/// Limits on the orchestration backlog beyond which task creation is
/// answered 503 with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackpressureConfig {
    /// Most step results waiting for orchestration; `None`: no limit.
    pub max_pending_results: Option<u64>,
    /// Most steps dispatched and not yet claimed by a worker; `None`: no limit.
    pub max_unclaimed_steps: Option<u64>,
    /// How often the backlog is measured (never per request).
    pub sample_interval: Duration,
    /// The `Retry-After` a refused request is given.
    pub retry_after: Duration,
}

impl BackpressureConfig {
    /// Whether any limit is set.
    pub fn limits(&self) -> bool {
        self.max_pending_results.is_some() || self.max_unclaimed_steps.is_some()
    }
}

impl RawBackpressure {
    pub(crate) fn validate(self) -> Result<BackpressureConfig, ConfigError> {
        let k = |name: &str| format!("backpressure.{name}");
        let limit = |name: &str, value: u64| -> Result<Option<u64>, ConfigError> {
            if value == 0 {
                Ok(None)
            } else {
                in_range(&k(name), value, 1, 100_000_000).map(Some)
            }
        };
        Ok(BackpressureConfig {
            max_pending_results: limit("max_pending_results", self.max_pending_results)?,
            max_unclaimed_steps: limit("max_unclaimed_steps", self.max_unclaimed_steps)?,
            sample_interval: millis(
                &k("sample_interval_ms"),
                self.sample_interval_ms,
                10,
                60_000,
            )?,
            retry_after: Duration::from_secs(in_range(
                &k("retry_after_seconds"),
                self.retry_after_seconds,
                1,
                3_600,
            )?),
        })
    }
}

//! `[orchestration]`: the result loop, retry timers and shutdown.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;
use crate::event_system::{self, EventSystemConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrchestration {
    processor_id: String,
    result_batch_size: usize,
    result_visibility_timeout_ms: u64,
    result_processors: usize,
    deployment_mode: String,
    polling_interval_ms: u64,
    fallback_poll_interval_ms: u64,
    retry_timer_slack_ms: u64,
    shutdown_timeout_ms: u64,
    max_steps_per_decision: usize,
    max_decision_depth: usize,
    max_batches_per_step: usize,
}

/// How the orchestration loops run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrchestrationConfig {
    /// This process's id in transition rows (`None`: generated at start).
    pub processor_id: Option<String>,
    /// Result pointers read per query.
    pub result_batch_size: NonZeroUsize,
    /// Invisibility of read result pointers.
    pub result_visibility_timeout: Duration,
    /// Most writers taking and applying batches at once (they join in as
    /// the backlog grows).
    pub result_processors: NonZeroUsize,
    /// How the result loop learns of new work.
    pub events: EventSystemConfig,
    /// Delay added to retry timers.
    pub retry_timer_slack: Duration,
    /// Soft-shutdown budget.
    pub shutdown_timeout: Duration,
    /// What one decision or batch outcome may create.
    pub expansion: ExpansionLimitsConfig,
}

/// Limits on what one decision or batchable outcome may create (SPEC §4.6–§4.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpansionLimitsConfig {
    /// Most steps one decision outcome may create.
    pub max_steps_per_decision: usize,
    /// Deepest nesting of decision steps.
    pub max_decision_depth: usize,
    /// Most batches one batchable outcome may create.
    pub max_batches_per_step: usize,
}

pub(crate) fn non_zero(key: &str, value: usize, hi: usize) -> Result<NonZeroUsize, ConfigError> {
    let value = in_range(key, value, 1, hi)?;
    NonZeroUsize::new(value).ok_or_else(|| ConfigError::Invalid {
        key: key.to_owned(),
        message: "must not be 0".into(),
    })
}

impl RawOrchestration {
    pub(crate) fn validate(self) -> Result<OrchestrationConfig, ConfigError> {
        let k = |name: &str| format!("orchestration.{name}");
        Ok(OrchestrationConfig {
            processor_id: Some(self.processor_id).filter(|p| !p.is_empty()),
            result_batch_size: non_zero(&k("result_batch_size"), self.result_batch_size, 10_000)?,
            result_visibility_timeout: millis(
                &k("result_visibility_timeout_ms"),
                self.result_visibility_timeout_ms,
                1_000,
                3_600_000,
            )?,
            result_processors: non_zero(&k("result_processors"), self.result_processors, 64)?,
            events: event_system::parse(
                "orchestration",
                &self.deployment_mode,
                self.polling_interval_ms,
                self.fallback_poll_interval_ms,
            )?,
            retry_timer_slack: millis(
                &k("retry_timer_slack_ms"),
                self.retry_timer_slack_ms,
                0,
                1_000,
            )?,
            shutdown_timeout: millis(
                &k("shutdown_timeout_ms"),
                self.shutdown_timeout_ms,
                0,
                3_600_000,
            )?,
            expansion: ExpansionLimitsConfig {
                max_steps_per_decision: non_zero(
                    &k("max_steps_per_decision"),
                    self.max_steps_per_decision,
                    10_000,
                )?
                .get(),
                max_decision_depth: non_zero(
                    &k("max_decision_depth"),
                    self.max_decision_depth,
                    100,
                )?
                .get(),
                max_batches_per_step: non_zero(
                    &k("max_batches_per_step"),
                    self.max_batches_per_step,
                    100_000,
                )?
                .get(),
            },
        })
    }
}

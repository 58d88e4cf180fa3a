//! `[staleness]`: the detector that finds tasks that stopped making progress
//! and records them in the DLQ (SPEC §4.10).

use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;
use crate::orchestration::non_zero;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaleness {
    check_interval_ms: u64,
    batch_size: usize,
    max_waiting_for_dependencies_minutes: u32,
    max_waiting_for_retry_minutes: u32,
    max_steps_in_process_minutes: u32,
    max_duration_minutes: u32,
}

/// When a task counts as stale. A threshold of 0 is off; a template's
/// `lifecycle` block overrides each one for its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StalenessConfig {
    /// How often one orchestrator looks; `None` turns the detector off.
    pub check_interval: Option<Duration>,
    /// Most tasks acted on per sweep.
    pub batch_size: std::num::NonZeroUsize,
    /// Longest a task may wait for dependencies without progress.
    pub max_waiting_for_dependencies_minutes: u32,
    /// Longest a task may wait for a retry without progress.
    pub max_waiting_for_retry_minutes: u32,
    /// Longest a task may have steps in process (or be blocked) without progress.
    pub max_steps_in_process_minutes: u32,
    /// Longest a task may run in total.
    pub max_duration_minutes: u32,
}

/// Upper bound of every threshold: a year, as for template `lifecycle`.
const MAX_MINUTES: u32 = 525_600;

impl RawStaleness {
    pub(crate) fn validate(self) -> Result<StalenessConfig, ConfigError> {
        let k = |name: &str| format!("staleness.{name}");
        let interval = if self.check_interval_ms == 0 {
            None
        } else {
            Some(millis(
                &k("check_interval_ms"),
                self.check_interval_ms,
                100,
                86_400_000,
            )?)
        };
        let minutes = |name: &str, value: u32| in_range(&k(name), value, 0, MAX_MINUTES);
        Ok(StalenessConfig {
            check_interval: interval,
            batch_size: non_zero(&k("batch_size"), self.batch_size, 10_000)?,
            max_waiting_for_dependencies_minutes: minutes(
                "max_waiting_for_dependencies_minutes",
                self.max_waiting_for_dependencies_minutes,
            )?,
            max_waiting_for_retry_minutes: minutes(
                "max_waiting_for_retry_minutes",
                self.max_waiting_for_retry_minutes,
            )?,
            max_steps_in_process_minutes: minutes(
                "max_steps_in_process_minutes",
                self.max_steps_in_process_minutes,
            )?,
            max_duration_minutes: minutes("max_duration_minutes", self.max_duration_minutes)?,
        })
    }
}

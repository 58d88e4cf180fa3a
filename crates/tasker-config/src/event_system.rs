//! How a loop learns of new work (SPEC §6): notifications, polling, or both.

use std::time::Duration;

use crate::check::millis;
use crate::error::ConfigError;

/// Deployment mode of an event system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentMode {
    /// Poll every `polling_interval`; no LISTEN connection.
    PollingOnly,
    /// Wake on notifications only (plus after a lost connection).
    EventDrivenOnly,
    /// Wake on notifications, with a slow fallback poll (the default).
    Hybrid,
}

/// An event system's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSystemConfig {
    /// The mode.
    pub mode: DeploymentMode,
    /// Poll interval in `polling_only` mode.
    pub polling_interval: Duration,
    /// Fallback poll interval in `hybrid` mode.
    pub fallback_poll_interval: Duration,
}

impl EventSystemConfig {
    /// Whether to LISTEN for notifications.
    pub fn listens(&self) -> bool {
        self.mode != DeploymentMode::PollingOnly
    }

    /// How often to poll, if at all.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self.mode {
            DeploymentMode::PollingOnly => Some(self.polling_interval),
            DeploymentMode::Hybrid => Some(self.fallback_poll_interval),
            DeploymentMode::EventDrivenOnly => None,
        }
    }
}

pub(crate) fn parse(
    section: &str,
    mode: &str,
    polling_interval_ms: u64,
    fallback_poll_interval_ms: u64,
) -> Result<EventSystemConfig, ConfigError> {
    let mode = match mode {
        "hybrid" => DeploymentMode::Hybrid,
        "event_driven_only" => DeploymentMode::EventDrivenOnly,
        "polling_only" => DeploymentMode::PollingOnly,
        other => {
            return Err(ConfigError::Invalid {
                key: format!("{section}.deployment_mode"),
                message: format!(
                    "unknown mode `{other}`: expected `hybrid`, `event_driven_only` or `polling_only`"
                ),
            });
        }
    };
    Ok(EventSystemConfig {
        mode,
        polling_interval: millis(
            &format!("{section}.polling_interval_ms"),
            polling_interval_ms,
            1,
            3_600_000,
        )?,
        fallback_poll_interval: millis(
            &format!("{section}.fallback_poll_interval_ms"),
            fallback_poll_interval_ms,
            10,
            3_600_000,
        )?,
    })
}

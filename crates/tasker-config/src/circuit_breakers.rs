//! `[circuit_breakers]`: fail fast while PostgreSQL or the queue provider
//! is down (SPEC §12), one breaker per component.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCircuitBreakers {
    enabled: bool,
    database: RawBreaker,
    messaging: RawBreaker,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    failure_threshold: u32,
    open_ms: u64,
    half_open_probes: u32,
}

/// One component's breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Transient failures in a row that open it.
    pub failure_threshold: NonZeroU32,
    /// How long it stays open before probing.
    pub open_for: Duration,
    /// Probe calls per `open_for` while half-open, and the successes that
    /// close it.
    pub half_open_probes: NonZeroU32,
}

/// The breakers every process keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreakersConfig {
    /// `false`: breakers never open.
    pub enabled: bool,
    /// Guards PostgreSQL.
    pub database: BreakerConfig,
    /// Guards the queue provider.
    pub messaging: BreakerConfig,
}

fn positive(key: &str, value: u32, hi: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(in_range(key, value, 1, hi)?).ok_or_else(|| ConfigError::Invalid {
        key: key.to_owned(),
        message: "must not be 0".into(),
    })
}

impl RawBreaker {
    fn validate(self, component: &str) -> Result<BreakerConfig, ConfigError> {
        let k = |name: &str| format!("circuit_breakers.{component}.{name}");
        Ok(BreakerConfig {
            failure_threshold: positive(&k("failure_threshold"), self.failure_threshold, 10_000)?,
            open_for: millis(&k("open_ms"), self.open_ms, 10, 600_000)?,
            half_open_probes: positive(&k("half_open_probes"), self.half_open_probes, 1_000)?,
        })
    }
}

impl RawCircuitBreakers {
    pub(crate) fn validate(self) -> Result<CircuitBreakersConfig, ConfigError> {
        Ok(CircuitBreakersConfig {
            enabled: self.enabled,
            database: self.database.validate("database")?,
            messaging: self.messaging.validate("messaging")?,
        })
    }
}

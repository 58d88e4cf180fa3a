//! `[redrive]`: the sweep that re-sends the pointers of steps that waited
//! too long for theirs (ADR 010).

use std::time::Duration;

use serde::Deserialize;

use crate::check::millis;
use crate::error::ConfigError;
use crate::orchestration::non_zero;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedrive {
    check_interval_ms: u64,
    after_ms: u64,
    batch_size: usize,
    outbox_after_ms: u64,
}

/// When a step's pointer counts as lost and is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedriveConfig {
    /// How often one orchestrator looks; `None` turns the sweep off.
    pub check_interval: Option<Duration>,
    /// How long a step may wait — `enqueued` and unclaimed, awaiting
    /// orchestration, past its lease or its retry's due time — before its
    /// pointer is re-sent; and the least time between two re-sends.
    pub after: Duration,
    /// Most steps re-driven per sweep (and outbox rows relayed).
    pub batch_size: std::num::NonZeroUsize,
    /// How old an outbox row must be before the sweep relays it: its
    /// writer died between its commit and its own send.
    pub outbox_after: Duration,
}

impl RawRedrive {
    pub(crate) fn validate(self) -> Result<RedriveConfig, ConfigError> {
        let k = |name: &str| format!("redrive.{name}");
        let check_interval = if self.check_interval_ms == 0 {
            None
        } else {
            Some(millis(
                &k("check_interval_ms"),
                self.check_interval_ms,
                50,
                86_400_000,
            )?)
        };
        Ok(RedriveConfig {
            check_interval,
            after: millis(&k("after_ms"), self.after_ms, 100, 86_400_000)?,
            batch_size: non_zero(&k("batch_size"), self.batch_size, 100_000)?,
            outbox_after: millis(&k("outbox_after_ms"), self.outbox_after_ms, 100, 86_400_000)?,
        })
    }
}

//! `[worker]`: how a worker claims, runs and completes steps.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::check::millis;
use crate::error::ConfigError;
use crate::event_system::{self, EventSystemConfig};
use crate::orchestration::non_zero;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorker {
    worker_id: String,
    namespaces: Vec<String>,
    template_paths: Vec<String>,
    concurrency: usize,
    lease_ms: u64,
    lease_renew_interval_ms: u64,
    deployment_mode: String,
    polling_interval_ms: u64,
    fallback_poll_interval_ms: u64,
    completion_channel_capacity: usize,
    completion_batch_size: usize,
    completion_flush_interval_ms: u64,
    domain_event_capacity: usize,
    shutdown_timeout_ms: u64,
    metrics_bind: String,
}

/// How a worker runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// This worker's id (`None`: generated at start).
    pub worker_id: Option<String>,
    /// Namespaces to serve; empty means discover them.
    pub namespaces: Vec<String>,
    /// Template files or directories to register at startup.
    pub template_paths: Vec<PathBuf>,
    /// Handlers running at once.
    pub concurrency: NonZeroUsize,
    /// Lease (and message invisibility) of a claimed step.
    pub lease: Duration,
    /// How often running steps' leases are renewed.
    pub lease_renew_interval: Duration,
    /// How the worker learns of new work.
    pub events: EventSystemConfig,
    /// Capacity of the executor → completer channel.
    pub completion_channel_capacity: NonZeroUsize,
    /// Most outcomes per completion transaction.
    pub completion_batch_size: NonZeroUsize,
    /// Longest an outcome waits for companions.
    pub completion_flush_interval: Duration,
    /// Fast domain events each in-process subscriber can fall behind by
    /// before the oldest are dropped (and counted).
    pub domain_event_capacity: NonZeroUsize,
    /// Soft-shutdown budget.
    pub shutdown_timeout: Duration,
    /// Where the worker serves `/metrics` and `/health`; `None` serves
    /// neither.
    pub metrics_bind: Option<std::net::SocketAddr>,
}

impl RawWorker {
    pub(crate) fn validate(
        self,
        template_path_var: Option<String>,
    ) -> Result<WorkerConfig, ConfigError> {
        let k = |name: &str| format!("worker.{name}");
        for (i, ns) in self.namespaces.iter().enumerate() {
            let ok = !ns.is_empty()
                && ns.len() <= 29
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(ConfigError::Invalid {
                    key: format!("worker.namespaces[{i}]"),
                    message: format!(
                        "`{ns}` is not a namespace (1 to 29 characters from a-z, 0-9 and _)"
                    ),
                });
            }
        }
        let lease = millis(&k("lease_ms"), self.lease_ms, 1_000, 3_600_000)?;
        let renew = millis(
            &k("lease_renew_interval_ms"),
            self.lease_renew_interval_ms,
            100,
            3_600_000,
        )?;
        if renew >= lease {
            return Err(ConfigError::Invalid {
                key: k("lease_renew_interval_ms"),
                message: format!(
                    "must be shorter than worker.lease_ms ({}) so leases are renewed before they expire",
                    self.lease_ms
                ),
            });
        }
        let mut template_paths: Vec<PathBuf> =
            self.template_paths.into_iter().map(PathBuf::from).collect();
        if let Some(var) = template_path_var {
            template_paths.extend(var.split(':').filter(|p| !p.is_empty()).map(PathBuf::from));
        }
        let bind = self.metrics_bind.trim();
        let metrics_bind = if bind.is_empty() {
            None
        } else {
            Some(bind.parse().map_err(|e| ConfigError::Invalid {
                key: k("metrics_bind"),
                message: format!("`{bind}` is not an address such as 0.0.0.0:9090: {e}"),
            })?)
        };
        Ok(WorkerConfig {
            metrics_bind,
            worker_id: Some(self.worker_id).filter(|w| !w.is_empty()),
            namespaces: self.namespaces,
            template_paths,
            concurrency: non_zero(&k("concurrency"), self.concurrency, 10_000)?,
            lease,
            lease_renew_interval: renew,
            events: event_system::parse(
                "worker",
                &self.deployment_mode,
                self.polling_interval_ms,
                self.fallback_poll_interval_ms,
            )?,
            completion_channel_capacity: non_zero(
                &k("completion_channel_capacity"),
                self.completion_channel_capacity,
                1_000_000,
            )?,
            completion_batch_size: non_zero(
                &k("completion_batch_size"),
                self.completion_batch_size,
                10_000,
            )?,
            completion_flush_interval: millis(
                &k("completion_flush_interval_ms"),
                self.completion_flush_interval_ms,
                0,
                10_000,
            )?,
            domain_event_capacity: non_zero(
                &k("domain_event_capacity"),
                self.domain_event_capacity,
                1_000_000,
            )?,
            shutdown_timeout: millis(
                &k("shutdown_timeout_ms"),
                self.shutdown_timeout_ms,
                0,
                3_600_000,
            )?,
        })
    }
}

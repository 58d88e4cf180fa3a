//! Prometheus metrics (SPEC §11). Names, all prefixed `tasker_`:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `tasker_http_requests_total` | counter | `method`, `route`, `status` |
//! | `tasker_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `tasker_tasks_created_total` | counter | `namespace` |
//! | `tasker_tasks_finished_total` | counter | `namespace`, `state` |
//! | `tasker_task_duration_seconds` | histogram | `namespace`, `state` |
//! | `tasker_step_results_total` | counter | `outcome` (`complete`, `retry`, `error`, `refused`, `ignored`) |
//! | `tasker_orchestration_batch_size` | histogram | — |
//! | `tasker_orchestration_batch_duration_seconds` | histogram | — |
//! | `tasker_steps_enqueued_total` | counter | — |
//! | `tasker_redriven_steps_total` | counter | `kind` (`dispatch`, `lease_expired`, `result`, `retry`) |
//! | `tasker_stale_tasks_total` | counter | `reason` |
//! | `tasker_operator_actions_total` | counter | `action` |
//!
//! Every value is recorded where the event happens; nothing is counted with
//! a table scan at scrape time.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for durations in seconds: 1 ms to 5 minutes.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Renders the process's metrics.
#[derive(Clone, Debug)]
pub struct MetricsHandle(Arc<Option<PrometheusHandle>>);

impl MetricsHandle {
    /// Installs the process-wide recorder on first use and returns its
    /// handle. If another recorder was installed first, metrics are not
    /// exported (and `render` says so).
    pub fn global() -> Self {
        let handle = HANDLE.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS));
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "Prometheus recorder not installed; /metrics will be empty");
                    None
                }
            }
        });
        Self(Arc::new(handle.clone()))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        match self.0.as_ref() {
            Some(handle) => handle.render(),
            None => "# metrics recorder unavailable in this process\n".to_owned(),
        }
    }
}

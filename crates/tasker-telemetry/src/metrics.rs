//! Prometheus metrics (SPEC §11): the process-wide recorder and the
//! catalogue of every metric Tasker exports. `docs/metrics.md` documents the
//! same list; a test keeps the three (this catalogue, the document and a
//! real scrape) equal.
//!
//! Every value is recorded where its event happens, or sampled in the
//! background from counters the database maintains incrementally; a scrape
//! only renders what is in memory.

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
    /// Installs the process-wide recorder on first use (describing every
    /// catalogued metric) and returns its handle. If another recorder was
    /// installed first, metrics are not exported (and `render` says so).
    pub fn global() -> Self {
        let handle = HANDLE.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
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

/// A metric's Prometheus type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The name in `# TYPE` lines and the catalogue.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Which processes export a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// The orchestration server (`/metrics` on the REST port).
    Server,
    /// Workers (`/metrics` on `worker.metrics_bind`).
    Worker,
    /// Both.
    Both,
}

impl Exporter {
    /// Whether `process` exports metrics marked `self`.
    pub const fn includes(self, process: Exporter) -> bool {
        matches!(
            (self, process),
            (Exporter::Both, _)
                | (Exporter::Server, Exporter::Server)
                | (Exporter::Worker, Exporter::Worker)
        )
    }

    /// The name in the catalogue.
    pub const fn as_str(self) -> &'static str {
        match self {
            Exporter::Server => "server",
            Exporter::Worker => "worker",
            Exporter::Both => "both",
        }
    }
}

/// One catalogued metric.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// Full name, `tasker_…`.
    pub name: &'static str,
    /// Prometheus type.
    pub kind: Kind,
    /// Label names.
    pub labels: &'static [&'static str],
    /// Who exports it.
    pub exporter: Exporter,
    /// What it measures (the `# HELP` text).
    pub help: &'static str,
    /// Label values exported as zero from the start, so a rare event's
    /// series exists (and `rate()` works) before it first happens.
    pub zero: &'static [&'static [&'static str]],
}

const fn m(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        exporter,
        help,
        zero: &[],
    }
}

const fn zero(metric: Metric, zero: &'static [&'static [&'static str]]) -> Metric {
    Metric { zero, ..metric }
}

use Exporter::{Both, Server, Worker};
use Kind::{Counter, Gauge, Histogram};

/// Every metric Tasker exports.
pub const CATALOGUE: &[Metric] = &[
    m(
        "tasker_http_requests_total",
        Counter,
        &["method", "route", "status"],
        Server,
        "REST requests answered, by route template and status code.",
    ),
    m(
        "tasker_http_request_duration_seconds",
        Histogram,
        &["method", "route"],
        Server,
        "REST request latency.",
    ),
    m(
        "tasker_tasks_created_total",
        Counter,
        &["namespace"],
        Server,
        "Tasks created.",
    ),
    m(
        "tasker_tasks_finished_total",
        Counter,
        &["namespace", "template", "state"],
        Server,
        "Tasks that reached a terminal state.",
    ),
    m(
        "tasker_task_duration_seconds",
        Histogram,
        &["namespace", "template", "state"],
        Server,
        "Time from a task's creation to its terminal state.",
    ),
    m(
        "tasker_tasks",
        Gauge,
        &["state"],
        Server,
        "Tasks in each state (from counters the database maintains per statement; sampled every telemetry.metrics_sample_interval_ms).",
    ),
    zero(
        m(
            "tasker_step_results_total",
            Counter,
            &["outcome"],
            Server,
            "Step results applied by orchestration: complete, retry (scheduled), error (permanent), refused (bad outcome envelope), ignored (duplicate or stale).",
        ),
        &[
            &["complete"],
            &["retry"],
            &["error"],
            &["refused"],
            &["ignored"],
        ],
    ),
    m(
        "tasker_steps_enqueued_total",
        Counter,
        &[],
        Server,
        "Step pointers sent to worker queues.",
    ),
    m(
        "tasker_orchestration_batch_size",
        Histogram,
        &[],
        Server,
        "Messages applied per orchestration batch.",
    ),
    m(
        "tasker_orchestration_batch_duration_seconds",
        Histogram,
        &[],
        Server,
        "Time to apply one orchestration batch (one transaction).",
    ),
    zero(
        m(
            "tasker_orchestration_conflicts_total",
            Counter,
            &[],
            Server,
            "Batches evaluated again because a concurrent change moved a step or task first (finalization contention).",
        ),
        &[&[]],
    ),
    zero(
        m(
            "tasker_redriven_steps_total",
            Counter,
            &["kind"],
            Server,
            "Pointers sent again by the redrive sweep.",
        ),
        &[&["dispatch"], &["lease_expired"], &["result"], &["retry"]],
    ),
    zero(
        m(
            "tasker_outbox_relayed_total",
            Counter,
            &[],
            Server,
            "Outbox rows a sweep relayed to the broker after their sender died.",
        ),
        &[&[]],
    ),
    zero(
        m(
            "tasker_stale_tasks_total",
            Counter,
            &["reason"],
            Server,
            "Tasks moved to the DLQ by the staleness detector.",
        ),
        &[&["staleness_timeout"], &["worker_unavailable"]],
    ),
    m(
        "tasker_dlq_entries",
        Gauge,
        &["status"],
        Server,
        "DLQ entries by status (open ones are pending and investigating); sampled like tasker_tasks.",
    ),
    zero(
        m(
            "tasker_operator_actions_total",
            Counter,
            &["action"],
            Server,
            "Operator repairs of steps.",
        ),
        &[
            &["reset_for_retry"],
            &["resolve_manually"],
            &["complete_manually"],
        ],
    ),
    m(
        "tasker_queue_messages",
        Gauge,
        &["queue"],
        Server,
        "Messages in each queue Tasker uses (PGMQ or RabbitMQ), sampled in the background.",
    ),
    m(
        "tasker_backlog_pending_results",
        Gauge,
        &[],
        Server,
        "Results waiting for orchestration (bounded count, sampled for backpressure).",
    ),
    m(
        "tasker_backlog_unclaimed_steps",
        Gauge,
        &[],
        Server,
        "Steps dispatched and not yet claimed (bounded count, sampled for backpressure).",
    ),
    zero(
        m(
            "tasker_circuit_breaker_state",
            Gauge,
            &["component"],
            Both,
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        ),
        &[&["database"], &["messaging"]],
    ),
    zero(
        m(
            "tasker_circuit_breaker_opened_total",
            Counter,
            &["component"],
            Both,
            "Times a circuit breaker opened.",
        ),
        &[&["database"], &["messaging"]],
    ),
    zero(
        m(
            "tasker_circuit_breaker_rejected_total",
            Counter,
            &["component"],
            Both,
            "Calls refused while a breaker was open.",
        ),
        &[&["database"], &["messaging"]],
    ),
    m(
        "tasker_channel_saturation",
        Gauge,
        &["channel"],
        Both,
        "How full a bounded in-process channel was at its last send, 0 to 1.",
    ),
    m(
        "tasker_worker_steps_claimed_total",
        Counter,
        &["namespace"],
        Worker,
        "Steps a worker claimed.",
    ),
    zero(
        m(
            "tasker_worker_claim_conflicts_total",
            Counter,
            &[],
            Worker,
            "Step pointers whose step another worker had already claimed, or that was no longer enqueued (duplicate or late message).",
        ),
        &[&[]],
    ),
    m(
        "tasker_handler_duration_seconds",
        Histogram,
        &["callable", "outcome"],
        Worker,
        "Handler run time per callable, by outcome (success, failure, timeout, cancelled).",
    ),
    m(
        "tasker_step_duration_seconds",
        Histogram,
        &["namespace", "template", "outcome"],
        Worker,
        "Time from a step's claim to its stored result.",
    ),
    zero(
        m(
            "tasker_worker_stale_results_total",
            Counter,
            &[],
            Worker,
            "Results a worker could not store because the attempt was no longer its own (lease lost, step cancelled).",
        ),
        &[&[]],
    ),
    zero(
        m(
            "tasker_worker_in_flight",
            Gauge,
            &[],
            Worker,
            "Attempts this worker holds now: running, or their result being written (read at scrape time).",
        ),
        &[&[]],
    ),
];

/// Gives every catalogued metric its `# HELP` text.
fn describe() {
    for metric in CATALOGUE {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

/// Installs the recorder (if nothing has yet) and exports zero for every
/// catalogued series `process` declares up front (see [`Metric::zero`]).
/// Counters are only raised from zero, never reset.
pub fn register_zeroes(process: Exporter) {
    let _ = MetricsHandle::global();
    for metric in CATALOGUE.iter().filter(|m| m.exporter.includes(process)) {
        for values in metric.zero {
            let labels: Vec<(&'static str, &'static str)> = metric
                .labels
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect();
            match metric.kind {
                Kind::Counter => metrics::counter!(metric.name, &labels).increment(0),
                Kind::Gauge => metrics::gauge!(metric.name, &labels).increment(0.0),
                Kind::Histogram => {}
            }
        }
    }
}

/// Records how full a bounded channel is after a send (capacity left out of
/// the most it holds).
pub fn channel_saturation(channel: &'static str, remaining: usize, max: usize) {
    let full = if max == 0 {
        0.0
    } else {
        1.0 - remaining as f64 / max as f64
    };
    metrics::gauge!("tasker_channel_saturation", "channel" => channel).set(full);
}

/// Publishes circuit breakers' states (memory only; called on each scrape).
pub fn export_breakers(breakers: &tasker_types::breaker::Breakers) {
    for snapshot in breakers.snapshots() {
        let component = snapshot.component;
        metrics::gauge!("tasker_circuit_breaker_state", "component" => component)
            .set(snapshot.state.gauge());
        metrics::counter!("tasker_circuit_breaker_opened_total", "component" => component)
            .absolute(snapshot.times_opened);
        metrics::counter!("tasker_circuit_breaker_rejected_total", "component" => component)
            .absolute(snapshot.rejected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_names_each_metric_once_with_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for metric in CATALOGUE {
            assert!(seen.insert(metric.name), "{} twice", metric.name);
            assert!(metric.name.starts_with("tasker_"), "{}", metric.name);
            assert_eq!(
                metric.kind == Kind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters, and only counters, end in _total",
                metric.name
            );
            for values in metric.zero {
                assert_eq!(values.len(), metric.labels.len(), "{}", metric.name);
            }
            assert!(!metric.help.is_empty());
        }
    }

    /// The catalogue as docs/metrics.md tabulates it.
    fn table() -> String {
        let mut out = String::from(
            "| metric | type | labels | exported by | meaning |\n|---|---|---|---|---|\n",
        );
        for m in CATALOGUE {
            let labels = if m.labels.is_empty() {
                "—".to_owned()
            } else {
                m.labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                m.name,
                m.kind.as_str(),
                labels,
                m.exporter.as_str(),
                m.help
            ));
        }
        out
    }

    #[test]
    fn docs_metrics_md_tabulates_the_catalogue() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/metrics.md"
        ))
        .unwrap();
        let table = table();
        assert!(
            doc.contains(&table),
            "docs/metrics.md must contain the catalogue table, exactly:\n\n{table}"
        );
    }

    #[test]
    fn the_grafana_dashboard_charts_every_catalogued_metric_and_nothing_else() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/grafana-dashboard.json"
        ))
        .unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut used = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                // Metric names: `tasker_` and what follows of [a-z_].
                let mut rest = expr;
                while let Some(at) = rest.find("tasker_") {
                    let tail = &rest[at..];
                    let end = tail
                        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                        .unwrap_or(tail.len());
                    let name = &tail[..end];
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name);
                    used.insert(base.to_owned());
                    rest = &tail[end..];
                }
            }
        }
        let catalogued: std::collections::BTreeSet<String> =
            CATALOGUE.iter().map(|m| m.name.to_owned()).collect();
        assert_eq!(used, catalogued);
    }

    #[test]
    fn exporters_include_themselves_and_both() {
        assert!(Both.includes(Server) && Both.includes(Worker));
        assert!(Server.includes(Server) && !Server.includes(Worker));
        assert!(!Worker.includes(Server));
    }
}

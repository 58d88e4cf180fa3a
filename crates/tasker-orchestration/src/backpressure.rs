//! Backpressure (SPEC §12): the API refuses work with 503 and
//! `Retry-After` — instead of queueing without bound or timing out — while
//! a circuit breaker is not closed, and refuses *new tasks* while the
//! orchestration backlog is beyond `[backpressure]`. The backlog is
//! sampled in the background by one bounded query; requests only read the
//! last sample. [`refusal`] is the decision, pure; the adapters apply it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tasker_config::BackpressureConfig;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// The backlog as last measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BacklogSample {
    /// Step results waiting for orchestration (a lower bound when capped).
    pub pending_results: u64,
    /// Steps dispatched and not yet claimed (a lower bound when capped).
    pub unclaimed_steps: u64,
    /// Whether a measurement has succeeded yet.
    pub measured: bool,
}

/// The last sample, shared between the sampler and request handlers.
#[derive(Debug, Default)]
pub(crate) struct BacklogGauge {
    pending_results: AtomicU64,
    unclaimed_steps: AtomicU64,
    measured: AtomicBool,
    /// Work arrived or was applied here since the last sample.
    active: AtomicBool,
}

impl BacklogGauge {
    /// Notes that this process took or applied work, so the next tick
    /// measures.
    pub(crate) fn touch(&self) {
        self.active.store(true, Ordering::Relaxed);
    }

    /// Whether the next tick should measure: after activity here, until a
    /// first measurement succeeds, and while the last one saw a backlog (so
    /// it is followed down to zero). An idle process measures nothing —
    /// the backlog only matters to requests, and a request is activity.
    fn due(&self) -> bool {
        let active = self.active.swap(false, Ordering::Relaxed);
        let last = self.get();
        active || !last.measured || last.pending_results > 0 || last.unclaimed_steps > 0
    }

    pub(crate) fn get(&self) -> BacklogSample {
        BacklogSample {
            pending_results: self.pending_results.load(Ordering::Relaxed),
            unclaimed_steps: self.unclaimed_steps.load(Ordering::Relaxed),
            measured: self.measured.load(Ordering::Relaxed),
        }
    }

    fn set(&self, pending_results: u64, unclaimed_steps: u64) {
        self.pending_results
            .store(pending_results, Ordering::Relaxed);
        self.unclaimed_steps
            .store(unclaimed_steps, Ordering::Relaxed);
        self.measured.store(true, Ordering::Relaxed);
    }
}

/// What a request is: refusing reads would only hide the state from an
/// operator, so the backlog limits apply to new work alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intake {
    /// Creates a task (REST `POST /v1/tasks`, gRPC `CreateTask`).
    NewTask,
    /// Anything else under `/v1` (reads, cancels, repairs, templates).
    Other,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Stable error code: `circuit_open` or `backpressure`.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// What the caller is told to wait (whole seconds, at least one).
    pub retry_after: Duration,
}

impl Refusal {
    /// `retry_after` in whole seconds, rounded up, at least one.
    pub fn retry_after_seconds(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// Decides whether a request of kind `intake` is refused, given how long
/// each breaker has been not closed (`None`: closed) and the last backlog
/// sample.
pub fn refusal(
    intake: Intake,
    database: Option<Duration>,
    messaging: Option<Duration>,
    config: &BackpressureConfig,
    backlog: BacklogSample,
) -> Option<Refusal> {
    for (component, not_closed) in [("database", database), ("messaging", messaging)] {
        if let Some(wait) = not_closed {
            return Some(Refusal {
                code: "circuit_open",
                message: format!(
                    "the {component} is unavailable (circuit breaker open); retry shortly"
                ),
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
    }
    if intake != Intake::NewTask || !backlog.measured {
        return None;
    }
    let over = [
        (
            "step results waiting for orchestration",
            backlog.pending_results,
            config.max_pending_results,
        ),
        (
            "steps waiting for a worker",
            backlog.unclaimed_steps,
            config.max_unclaimed_steps,
        ),
    ]
    .into_iter()
    .find_map(|(what, count, limit)| limit.filter(|l| count > *l).map(|l| (what, count, l)));
    over.map(|(what, count, limit)| Refusal {
        code: "backpressure",
        message: format!("orchestration is behind ({count}+ {what}, limit {limit}); retry shortly"),
        retry_after: config.retry_after,
    })
}

/// [`refusal`] for `intake`, on `shared`'s breakers and last sample.
pub(crate) fn check(shared: &Shared, intake: Intake) -> Option<Refusal> {
    if intake == Intake::NewTask {
        shared.backlog.touch();
    }
    refusal(
        intake,
        shared.breakers.database.not_closed(),
        shared.breakers.messaging.not_closed(),
        &shared.config.backpressure,
        shared.backlog.get(),
    )
}

/// Measures the backlog every `sample_interval` until `shutdown` (only
/// while a limit is set, not while the database breaker is open, and only
/// when due: see `BacklogGauge::due`).
pub(crate) async fn sample(shared: Arc<Shared>, shutdown: CancellationToken) {
    let config = shared.config.backpressure;
    if !config.limits() {
        return;
    }
    // Enough rows to tell whether either limit is passed (see Backlog).
    let cap = config.max_pending_results.unwrap_or(0) + config.max_unclaimed_steps.unwrap_or(0) + 2;
    let breaker = &shared.breakers.database;
    let measure = || async {
        if !shared.backlog.due() {
            return;
        }
        let measured = tasker_db::backlog::measure(&shared.pool, cap).await;
        breaker.record(&measured);
        match measured {
            Ok(backlog) => {
                shared
                    .backlog
                    .set(backlog.pending_results, backlog.unclaimed_steps);
                metrics::gauge!("tasker_backlog_pending_results")
                    .set(backlog.pending_results as f64);
                metrics::gauge!("tasker_backlog_unclaimed_steps")
                    .set(backlog.unclaimed_steps as f64);
            }
            Err(err) => tracing::debug!(error = %err, "measuring the backlog failed"),
        }
    };
    // Once at start, then on every tick.
    measure().await;
    crate::maintenance::every(breaker, Some(config.sample_interval), shutdown, measure).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(results: Option<u64>, unclaimed: Option<u64>) -> BackpressureConfig {
        BackpressureConfig {
            max_pending_results: results,
            max_unclaimed_steps: unclaimed,
            sample_interval: Duration::from_secs(1),
            retry_after: Duration::from_secs(3),
        }
    }

    fn backlog(pending_results: u64, unclaimed_steps: u64) -> BacklogSample {
        BacklogSample {
            pending_results,
            unclaimed_steps,
            measured: true,
        }
    }

    #[test]
    fn an_open_breaker_refuses_everything_with_its_remaining_time() {
        let c = config(None, None);
        let r = refusal(
            Intake::Other,
            Some(Duration::from_millis(1500)),
            None,
            &c,
            backlog(0, 0),
        )
        .unwrap();
        assert_eq!(r.code, "circuit_open");
        assert_eq!(r.retry_after_seconds(), 2);
        assert!(r.message.contains("database"));
        let r = refusal(
            Intake::NewTask,
            None,
            Some(Duration::ZERO),
            &c,
            backlog(0, 0),
        )
        .unwrap();
        assert_eq!(r.retry_after_seconds(), 1);
        assert!(r.message.contains("messaging"));
    }

    #[test]
    fn a_backlog_beyond_a_limit_refuses_new_tasks_only() {
        let c = config(Some(10), Some(100));
        assert_eq!(
            refusal(Intake::NewTask, None, None, &c, backlog(10, 100)),
            None
        );
        let r = refusal(Intake::NewTask, None, None, &c, backlog(11, 0)).unwrap();
        assert_eq!(r.code, "backpressure");
        assert_eq!(r.retry_after_seconds(), 3);
        assert!(r.message.contains("step results"), "{}", r.message);
        let r = refusal(Intake::NewTask, None, None, &c, backlog(0, 101)).unwrap();
        assert!(r.message.contains("worker"), "{}", r.message);
        assert_eq!(
            refusal(Intake::Other, None, None, &c, backlog(1000, 1000)),
            None
        );
    }

    #[test]
    fn no_limit_or_no_sample_refuses_nothing() {
        assert_eq!(
            refusal(
                Intake::NewTask,
                None,
                None,
                &config(None, None),
                backlog(u64::MAX, u64::MAX)
            ),
            None
        );
        let unmeasured = BacklogSample {
            measured: false,
            ..backlog(1000, 1000)
        };
        assert_eq!(
            refusal(
                Intake::NewTask,
                None,
                None,
                &config(Some(1), Some(1)),
                unmeasured
            ),
            None
        );
    }

    #[test]
    fn an_idle_process_stops_measuring_once_the_backlog_reads_zero() {
        let gauge = BacklogGauge::default();
        assert!(gauge.due(), "never measured");
        gauge.set(3, 0);
        assert!(gauge.due(), "a backlog is followed down");
        gauge.set(0, 0);
        assert!(!gauge.due(), "idle and empty: nothing to measure");
        assert!(!gauge.due());
        gauge.touch();
        assert!(gauge.due(), "work arrived");
        assert!(!gauge.due(), "activity is consumed by one tick");
    }
}

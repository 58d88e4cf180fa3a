//! Circuit breakers (SPEC §12): after `failure_threshold` outages in a
//! row a component's breaker **opens**, and callers fail fast
//! (the API answers 503 with `Retry-After`, loops wait) instead of piling
//! onto a database or broker that is down. After `open_for` it is
//! **half-open**: up to `half_open_probes` calls go through per `open_for`
//! window; that many successes close it, one failure opens it again.
//!
//! Only outages count ([`Outage`]: connection refused or lost, pool
//! timeout, server shutting down): a duplicate task, a missing row or a
//! serialization failure means the component answered, so it counts as a
//! success.
//!
//! [`BreakerCore`] is the pure state machine, driven with explicit
//! instants so tests are exact; [`CircuitBreaker`] is the shared handle the
//! processes use.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How one breaker behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// `false`: the breaker never opens (every call is admitted).
    pub enabled: bool,
    /// Outages in a row that open the breaker.
    pub failure_threshold: NonZeroU32,
    /// How long it stays open before probing.
    pub open_for: Duration,
    /// Calls admitted per `open_for` while half-open, and the successes
    /// that close it.
    pub half_open_probes: NonZeroU32,
}

/// The three states of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast until `open_for` has passed.
    Open,
    /// A few probe calls go through to see whether the component is back.
    HalfOpen,
}

impl BreakerState {
    /// The state's name, as health reports and metrics spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The state as a metric value: 0 closed, 1 half-open, 2 open.
    pub const fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a call may go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: go ahead as a probe, and report how it went.
    Probe,
    /// Open (or half-open with its probes taken): fail fast, and try again
    /// after `retry_after`.
    Rejected {
        /// When the breaker will next admit a call.
        retry_after: Duration,
    },
}

/// A breaker's state machine, driven with explicit instants.
#[derive(Clone, Debug)]
pub struct BreakerCore {
    settings: BreakerSettings,
    state: BreakerState,
    failures_in_a_row: u32,
    /// When it opened (open) or when the current probe window began (half-open).
    since: Option<Instant>,
    probes_admitted: u32,
    probe_successes: u32,
    times_opened: u64,
}

impl BreakerCore {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: BreakerState::Closed,
            failures_in_a_row: 0,
            since: None,
            probes_admitted: 0,
            probe_successes: 0,
            times_opened: 0,
        }
    }

    /// The state at `now` (an open breaker whose time is up reads half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match (self.state, self.since) {
            (BreakerState::Open, Some(since)) if now >= since + self.settings.open_for => {
                BreakerState::HalfOpen
            }
            (state, _) => state,
        }
    }

    /// `None` while closed; otherwise how long until it probes (zero once
    /// it is half-open). Admits nothing: for callers that refuse work
    /// while the breaker is not closed and leave probing to others.
    pub fn not_closed(&self, now: Instant) -> Option<Duration> {
        match (self.state(now), self.since) {
            (BreakerState::Closed, _) => None,
            (BreakerState::Open, Some(since)) => {
                Some((since + self.settings.open_for).saturating_duration_since(now))
            }
            _ => Some(Duration::ZERO),
        }
    }

    /// Outages in a row so far.
    pub fn failures_in_a_row(&self) -> u32 {
        self.failures_in_a_row
    }

    /// How many times it has opened.
    pub fn times_opened(&self) -> u64 {
        self.times_opened
    }

    /// Decides whether a call at `now` may go ahead, and counts it if it is
    /// a probe.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if !self.settings.enabled {
            return Admission::Allowed;
        }
        let open_for = self.settings.open_for;
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => {
                let since = self.since.unwrap_or(now);
                let reopens = since + open_for;
                if now < reopens {
                    return Admission::Rejected {
                        retry_after: reopens - now,
                    };
                }
                self.half_open(now);
                self.probes_admitted = 1;
                Admission::Probe
            }
            BreakerState::HalfOpen => {
                let since = self.since.unwrap_or(now);
                // A probe whose caller never reported (its future was
                // dropped) must not wedge the breaker: each window admits
                // a fresh set.
                if now >= since + open_for {
                    self.half_open(now);
                }
                if self.probes_admitted < self.settings.half_open_probes.get() {
                    self.probes_admitted += 1;
                    Admission::Probe
                } else {
                    let window_ends = self.since.unwrap_or(now) + open_for;
                    Admission::Rejected {
                        retry_after: window_ends.saturating_duration_since(now),
                    }
                }
            }
        }
    }

    /// Records a call that succeeded (or failed for a reason that is not
    /// the component's, which shows that it answered).
    pub fn succeeded(&mut self, now: Instant) {
        match self.state(now) {
            BreakerState::Closed => self.failures_in_a_row = 0,
            // A call admitted before the breaker opened, finishing late,
            // says nothing about now.
            BreakerState::Open => {}
            BreakerState::HalfOpen => {
                self.probe_successes += 1;
                if self.probe_successes >= self.settings.half_open_probes.get() {
                    self.state = BreakerState::Closed;
                    self.failures_in_a_row = 0;
                    self.since = None;
                }
            }
        }
    }

    /// Records an outage.
    pub fn failed(&mut self, now: Instant) {
        if !self.settings.enabled {
            return;
        }
        match self.state(now) {
            BreakerState::Closed => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                if self.failures_in_a_row >= self.settings.failure_threshold.get() {
                    self.open(now);
                }
            }
            BreakerState::Open => {}
            BreakerState::HalfOpen => self.open(now),
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.since = Some(now);
        self.probes_admitted = 0;
        self.probe_successes = 0;
        self.times_opened += 1;
    }

    fn half_open(&mut self, now: Instant) {
        self.state = BreakerState::HalfOpen;
        self.since = Some(now);
        self.probes_admitted = 0;
        self.probe_successes = 0;
    }
}

/// An error that may mean the component is down.
pub trait Outage {
    /// Whether the component failed to answer at all (connection refused
    /// or lost, pool timeout, shutting down), rather than answering with
    /// an error.
    fn is_outage(&self) -> bool;
}

/// A breaker's state as reported by health checks and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// The component it guards (`database`, `messaging`).
    pub component: &'static str,
    /// Its state now.
    pub state: BreakerState,
    /// Outages in a row.
    pub failures_in_a_row: u32,
    /// How many times it has opened since the process started.
    pub times_opened: u64,
    /// Calls it refused since the process started.
    pub rejected: u64,
}

/// A shared breaker guarding one component. Cheap to clone; clones share
/// the state.
#[derive(Clone)]
pub struct CircuitBreaker {
    component: &'static str,
    core: Arc<Mutex<BreakerCore>>,
    rejected: Arc<AtomicU64>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("component", &self.component)
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker for `component`.
    pub fn new(component: &'static str, settings: BreakerSettings) -> Self {
        Self {
            component,
            core: Arc::new(Mutex::new(BreakerCore::new(settings))),
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    fn core(&self) -> MutexGuard<'_, BreakerCore> {
        // Plain counters, updated in single statements: a panic elsewhere
        // cannot leave them half-written.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The component it guards.
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// Whether a call may go ahead now; `Err(retry_after)` when it must
    /// fail fast.
    ///
    /// # Errors
    /// The time until the breaker next admits a call, when it is open.
    pub fn admit(&self) -> Result<(), Duration> {
        match self.core().admit(Instant::now()) {
            Admission::Allowed | Admission::Probe => Ok(()),
            Admission::Rejected { retry_after } => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(retry_after)
            }
        }
    }

    /// Records a success.
    pub fn succeeded(&self) {
        self.core().succeeded(Instant::now());
    }

    /// Records an outage. Returns whether this failure opened
    /// the breaker (so the caller can say so in its log).
    pub fn failed(&self) -> bool {
        let mut core = self.core();
        let before = core.times_opened();
        core.failed(Instant::now());
        core.times_opened() > before
    }

    /// Records how a call ended: an outage is a failure, anything else
    /// (success or an answer such as "not found") a success. Returns
    /// whether it opened the breaker.
    pub fn record<T, E: Outage>(&self, outcome: &Result<T, E>) -> bool {
        match outcome {
            Err(err) if err.is_outage() => self.failed(),
            _ => {
                self.succeeded();
                false
            }
        }
    }

    /// `None` while closed; otherwise how long until it probes (see
    /// [`BreakerCore::not_closed`]). Admits nothing.
    pub fn not_closed(&self) -> Option<Duration> {
        self.core().not_closed(Instant::now())
    }

    /// Its state now.
    pub fn state(&self) -> BreakerState {
        self.core().state(Instant::now())
    }

    /// Its state and counters now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let core = self.core();
        BreakerSnapshot {
            component: self.component,
            state: core.state(Instant::now()),
            failures_in_a_row: core.failures_in_a_row(),
            times_opened: core.times_opened(),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// The breakers of one process: one for the database, one for the queue
/// provider (with PGMQ both guard the same server, and trip together).
#[derive(Clone, Debug)]
pub struct Breakers {
    /// Guards PostgreSQL.
    pub database: CircuitBreaker,
    /// Guards the queue provider.
    pub messaging: CircuitBreaker,
}

impl Breakers {
    /// Breakers with the given settings.
    pub fn new(database: BreakerSettings, messaging: BreakerSettings) -> Self {
        Self {
            database: CircuitBreaker::new("database", database),
            messaging: CircuitBreaker::new("messaging", messaging),
        }
    }

    /// Breakers that never open (tests and embedders that want none).
    pub fn disabled() -> Self {
        let off = BreakerSettings {
            enabled: false,
            failure_threshold: NonZeroU32::MIN,
            open_for: Duration::from_secs(1),
            half_open_probes: NonZeroU32::MIN,
        };
        Self::new(off, off)
    }

    /// Both snapshots, database first.
    pub fn snapshots(&self) -> [BreakerSnapshot; 2] {
        [self.database.snapshot(), self.messaging.snapshot()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: u32, probes: u32) -> BreakerSettings {
        BreakerSettings {
            enabled: true,
            failure_threshold: NonZeroU32::new(threshold).unwrap(),
            open_for: Duration::from_secs(5),
            half_open_probes: NonZeroU32::new(probes).unwrap(),
        }
    }

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row_and_a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(settings(3, 1));
        b.failed(t0);
        b.failed(t0);
        b.succeeded(t0);
        b.failed(t0);
        b.failed(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.admit(t0), Admission::Allowed);
        b.failed(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.times_opened(), 1);
        assert_eq!(
            b.not_closed(t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            b.not_closed(t0 + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            b.admit(t0 + Duration::from_secs(2)),
            Admission::Rejected {
                retry_after: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn half_open_admits_its_probes_and_closes_on_their_successes() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(settings(1, 2));
        b.failed(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert_eq!(b.admit(t1), Admission::Probe);
        assert_eq!(b.admit(t1), Admission::Probe);
        assert_eq!(
            b.admit(t1 + Duration::from_secs(1)),
            Admission::Rejected {
                retry_after: Duration::from_secs(4)
            }
        );
        b.succeeded(t1);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        b.succeeded(t1);
        assert_eq!(b.state(t1), BreakerState::Closed);
        assert_eq!(b.admit(t1), Admission::Allowed);
        assert_eq!(b.failures_in_a_row(), 0);
        assert_eq!(b.not_closed(t1), None);
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_a_full_period() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(settings(1, 1));
        b.failed(t0);
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(b.admit(t1), Admission::Probe);
        b.failed(t1);
        assert_eq!(b.state(t1), BreakerState::Open);
        assert_eq!(b.times_opened(), 2);
        assert_eq!(
            b.admit(t1 + Duration::from_secs(1)),
            Admission::Rejected {
                retry_after: Duration::from_secs(4)
            }
        );
    }

    #[test]
    fn a_probe_that_never_reports_does_not_wedge_the_breaker() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(settings(1, 1));
        b.failed(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(b.admit(t1), Admission::Probe);
        assert!(matches!(b.admit(t1), Admission::Rejected { .. }));
        // The probe's caller vanished; the next window admits another.
        assert_eq!(b.admit(t1 + Duration::from_secs(5)), Admission::Probe);
    }

    #[test]
    fn late_outcomes_while_open_change_nothing() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(settings(1, 1));
        b.failed(t0);
        b.succeeded(t0 + Duration::from_secs(1));
        b.failed(t0 + Duration::from_secs(2));
        assert_eq!(b.state(t0 + Duration::from_secs(2)), BreakerState::Open);
        assert_eq!(b.times_opened(), 1);
        // Still opens for its original period, not extended by the late failure.
        assert_eq!(b.state(t0 + Duration::from_secs(5)), BreakerState::HalfOpen);
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let t0 = Instant::now();
        let mut b = BreakerCore::new(BreakerSettings {
            enabled: false,
            ..settings(1, 1)
        });
        for _ in 0..10 {
            b.failed(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.admit(t0), Admission::Allowed);
    }

    struct E(bool);
    impl Outage for E {
        fn is_outage(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn only_outages_count_as_failures() {
        let b = CircuitBreaker::new("database", settings(2, 1));
        b.record::<(), E>(&Err(E(false)));
        b.record::<(), E>(&Err(E(false)));
        b.record::<(), E>(&Err(E(false)));
        assert_eq!(b.state(), BreakerState::Closed);
        b.record::<(), E>(&Err(E(true)));
        b.record::<(), E>(&Err(E(true)));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err());
        let snapshot = b.snapshot();
        assert_eq!(snapshot.times_opened, 1);
        assert_eq!(snapshot.rejected, 1);
        assert_eq!(snapshot.component, "database");
    }
}

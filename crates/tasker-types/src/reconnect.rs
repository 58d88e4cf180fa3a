//! How long a loop waits before it tries a lost connection again (SPEC
//! §12): doubling from a base to a cap, with jitter so that the processes
//! that lost the same server do not come back in step.

use std::time::Duration;

use crate::backoff::{Jitter, RandomJitter};

/// The ± fraction applied to every reconnect delay.
const SPREAD: f64 = 0.5;

/// Delays between reconnect attempts: `base`, `2·base`, … up to `cap`,
/// each jittered by ±50 %; [`ReconnectBackoff::reset`] after a success.
#[derive(Clone, Debug)]
pub struct ReconnectBackoff<J = RandomJitter> {
    base: Duration,
    cap: Duration,
    failures: u32,
    jitter: J,
}

impl ReconnectBackoff<RandomJitter> {
    /// Random jitter (the production choice).
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_jitter(base, cap, RandomJitter::default())
    }
}

impl<J: Jitter> ReconnectBackoff<J> {
    /// With the given jitter (tests use a fixed one).
    pub fn with_jitter(base: Duration, cap: Duration, jitter: J) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
            jitter,
        }
    }

    /// The wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let doublings = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let unjittered = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.cap)
            .as_secs_f64();
        Duration::from_secs_f64(unjittered * self.jitter.factor(SPREAD))
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts again from `base` (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::FixedJitter;

    #[test]
    fn doubles_to_the_cap_and_starts_over_after_a_reset() {
        let ms = Duration::from_millis;
        let mut b = ReconnectBackoff::with_jitter(ms(100), ms(500), FixedJitter(1.0));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(b.failures(), 5);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn jitter_spreads_each_delay_by_half_either_way() {
        let ms = Duration::from_millis;
        let mut low = ReconnectBackoff::with_jitter(ms(100), ms(500), FixedJitter(0.5));
        let mut high = ReconnectBackoff::with_jitter(ms(100), ms(500), FixedJitter(1.5));
        assert_eq!(low.next_delay(), ms(50));
        assert_eq!(high.next_delay(), ms(150));
        let mut random = ReconnectBackoff::new(ms(100), ms(500));
        for _ in 0..100 {
            let d = random.next_delay();
            assert!(d >= ms(50) && d <= ms(750), "{d:?}");
        }
    }
}

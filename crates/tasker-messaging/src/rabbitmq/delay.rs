//! Delayed sends without a broker plugin: a message waits in a delay queue
//! whose every message has the same TTL, then dead-letters into its real
//! queue. One TTL per queue keeps expiry in order (RabbitMQ expires only
//! from a queue's head), so delays are rounded *up* to a ladder of levels
//! four per doubling: never early, at most 19 % late.

use std::time::Duration;

/// Levels per doubling of the delay.
const STEPS_PER_DOUBLING: f64 = 4.0;

/// The longest delay a message can wait (RabbitMQ's TTL is a 32-bit
/// millisecond count).
pub(crate) const MAX_DELAY_MS: u64 = u32::MAX as u64;

/// The delay level, in milliseconds, that `delay` waits in: the smallest
/// level at least as long. `None` for no delay.
pub(crate) fn level_ms(delay: Duration) -> Option<u64> {
    let wanted = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    if delay.is_zero() {
        return None;
    }
    // A sub-millisecond delay still waits one millisecond.
    let wanted = wanted.clamp(1, MAX_DELAY_MS);
    let mut k = ((wanted as f64).log2() * STEPS_PER_DOUBLING).floor() as i32;
    loop {
        let level = level_at(k);
        if level >= wanted {
            return Some(level.min(MAX_DELAY_MS));
        }
        k += 1;
    }
}

fn level_at(k: i32) -> u64 {
    // Rounding up keeps every level at or above the exact power.
    (2f64.powf(f64::from(k) / STEPS_PER_DOUBLING)).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_delay_needs_no_delay_queue() {
        assert_eq!(level_ms(Duration::ZERO), None);
    }

    #[test]
    fn delays_are_never_early_and_at_most_19_percent_late() {
        for ms in (1..5_000).chain((5_000..10_000_000).step_by(997)) {
            let level = level_ms(Duration::from_millis(ms)).unwrap();
            assert!(level >= ms, "{ms} ms waits only {level} ms");
            assert!(
                level as f64 <= (ms as f64 * 1.19).ceil() + 1.0,
                "{ms} ms waits {level} ms"
            );
        }
    }

    #[test]
    fn few_levels_cover_a_wide_range() {
        let levels: std::collections::BTreeSet<u64> = (1..=3_600_000)
            .step_by(113)
            .map(|ms| level_ms(Duration::from_millis(ms)).unwrap())
            .collect();
        assert!(levels.len() < 90, "{} levels", levels.len());
    }

    #[test]
    fn sub_millisecond_and_huge_delays_are_bounded() {
        assert_eq!(level_ms(Duration::from_micros(10)), Some(1));
        assert_eq!(
            level_ms(Duration::from_secs(100 * 86_400)),
            Some(MAX_DELAY_MS)
        );
    }
}

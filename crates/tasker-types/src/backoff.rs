//! Retry policy and backoff (SPEC §4.4): when a failed attempt may run again,
//! and how long to wait first. Jitter is injectable so tests are exact.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the delay grows between attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// Retry at once.
    None,
    /// `base × attempt`.
    Linear,
    /// `base × 2^(attempt − 1)`.
    #[default]
    Exponential,
}

/// A step's retry policy, with every default of SPEC §2 filled in. When
/// parsed, absent fields take their defaults and unknown fields are errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// May a failure be retried at all.
    pub retryable: bool,
    /// Total executions, the first included (1–100).
    pub max_attempts: u32,
    /// How the delay grows.
    pub backoff: BackoffKind,
    /// The first delay, in milliseconds.
    pub backoff_base_ms: u64,
    /// The cap on any delay, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retryable: true,
            max_attempts: 3,
            backoff: BackoffKind::Exponential,
            backoff_base_ms: 1_000,
            max_backoff_ms: 60_000,
        }
    }
}

/// What to do after attempt number `attempt` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run again once `delay` has passed.
    RetryAfter(Duration),
    /// Stop: the step goes to `error`.
    GiveUp(GiveUpReason),
}

/// Why a failed step will not run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUpReason {
    /// The handler said the failure is permanent.
    PermanentError,
    /// The step's policy has `retryable: false`.
    NotRetryable,
    /// `max_attempts` executions have run.
    AttemptsExhausted,
}

/// Supplies the random factor applied to a delay.
pub trait Jitter {
    /// A multiplier in `[1 − spread, 1 + spread]`.
    fn factor(&mut self, spread: f64) -> f64;
}

/// Uniform random jitter (the production choice).
#[derive(Clone, Debug, Default)]
pub struct RandomJitter(fastrand::Rng);

impl Jitter for RandomJitter {
    fn factor(&mut self, spread: f64) -> f64 {
        1.0 + spread * (self.0.f64() * 2.0 - 1.0)
    }
}

/// A fixed multiplier, for tests and for `jitter_percent = 0`.
#[derive(Clone, Copy, Debug)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn factor(&mut self, _spread: f64) -> f64 {
        self.0
    }
}

impl RetryPolicy {
    /// Decides what happens after attempt `attempt` (1-based) failed.
    ///
    /// `error_retryable` is the handler's verdict; `hint` is a delay the
    /// handler asked for (e.g. an HTTP `Retry-After`), which wins over the
    /// policy but is still capped; `jitter_spread` is the ± fraction applied
    /// to policy delays (0.15 for ±15 %).
    pub fn decide(
        &self,
        attempt: u32,
        error_retryable: bool,
        hint: Option<Duration>,
        jitter_spread: f64,
        jitter: &mut impl Jitter,
    ) -> RetryDecision {
        match self.give_up_reason(attempt, error_retryable) {
            Some(reason) => RetryDecision::GiveUp(reason),
            None => {
                RetryDecision::RetryAfter(self.delay_after(attempt, hint, jitter_spread, jitter))
            }
        }
    }

    /// Why failed attempt `attempt` (1-based) is the last one, or `None`
    /// when another attempt follows: the rule [`RetryPolicy::decide`]
    /// applies, without the delay.
    pub fn give_up_reason(&self, attempt: u32, error_retryable: bool) -> Option<GiveUpReason> {
        if !error_retryable {
            Some(GiveUpReason::PermanentError)
        } else if !self.retryable {
            Some(GiveUpReason::NotRetryable)
        } else if attempt >= self.max_attempts {
            Some(GiveUpReason::AttemptsExhausted)
        } else {
            None
        }
    }

    /// The delay before the attempt that follows failed attempt `attempt`.
    pub fn delay_after(
        &self,
        attempt: u32,
        hint: Option<Duration>,
        jitter_spread: f64,
        jitter: &mut impl Jitter,
    ) -> Duration {
        let cap = Duration::from_millis(self.max_backoff_ms);
        if let Some(hint) = hint {
            return hint.min(cap);
        }
        let base = self.backoff_base_ms;
        let attempt = u64::from(attempt.max(1));
        let millis = match self.backoff {
            BackoffKind::None => 0,
            BackoffKind::Linear => base.saturating_mul(attempt),
            BackoffKind::Exponential => {
                let shift = u32::try_from(attempt - 1).unwrap_or(u32::MAX);
                base.saturating_mul(2u64.saturating_pow(shift))
            }
        };
        let capped = millis.min(self.max_backoff_ms);
        // Jitter spreads retries of many failing steps apart; it never pushes a
        // delay past the cap. Millisecond delays are far below 2^52, so the
        // float round trip is exact enough.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let jittered = (capped as f64 * jitter.factor(jitter_spread))
            .round()
            .max(0.0) as u64;
        Duration::from_millis(jittered).min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: BackoffKind) -> RetryPolicy {
        RetryPolicy {
            retryable: true,
            max_attempts: 10,
            backoff,
            backoff_base_ms: 100,
            max_backoff_ms: 1_000,
        }
    }

    fn delays(policy: &RetryPolicy) -> Vec<u64> {
        (1..=6)
            .map(|a| {
                policy
                    .delay_after(a, None, 0.15, &mut FixedJitter(1.0))
                    .as_millis() as u64
            })
            .collect()
    }

    #[test]
    fn none_linear_and_exponential_follow_the_spec_and_are_capped() {
        assert_eq!(delays(&policy(BackoffKind::None)), [0, 0, 0, 0, 0, 0]);
        assert_eq!(
            delays(&policy(BackoffKind::Linear)),
            [100, 200, 300, 400, 500, 600]
        );
        assert_eq!(
            delays(&policy(BackoffKind::Exponential)),
            [100, 200, 400, 800, 1000, 1000]
        );
    }

    #[test]
    fn jitter_scales_within_the_spread_but_never_past_the_cap() {
        let p = policy(BackoffKind::Linear);
        assert_eq!(
            p.delay_after(2, None, 0.15, &mut FixedJitter(0.85))
                .as_millis(),
            170
        );
        assert_eq!(
            p.delay_after(2, None, 0.15, &mut FixedJitter(1.15))
                .as_millis(),
            230
        );
        assert_eq!(
            p.delay_after(10, None, 0.15, &mut FixedJitter(1.15))
                .as_millis(),
            1000
        );
        let mut random = RandomJitter::default();
        for _ in 0..1000 {
            let d = p.delay_after(2, None, 0.15, &mut random).as_millis();
            assert!((170..=230).contains(&d), "{d} outside ±15 % of 200");
        }
    }

    #[test]
    fn a_hint_wins_over_the_policy_but_is_capped() {
        let p = policy(BackoffKind::Exponential);
        let hint = Some(Duration::from_millis(750));
        assert_eq!(
            p.delay_after(1, hint, 0.15, &mut FixedJitter(1.15)),
            Duration::from_millis(750)
        );
        let huge = Some(Duration::from_secs(3600));
        assert_eq!(
            p.delay_after(1, huge, 0.15, &mut FixedJitter(1.0)),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn decide_gives_up_on_permanent_errors_policy_and_exhaustion() {
        let mut j = FixedJitter(1.0);
        let p = RetryPolicy {
            max_attempts: 3,
            ..policy(BackoffKind::Linear)
        };
        assert_eq!(
            p.decide(1, true, None, 0.0, &mut j),
            RetryDecision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            p.decide(2, true, None, 0.0, &mut j),
            RetryDecision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(3, true, None, 0.0, &mut j),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            p.decide(1, false, None, 0.0, &mut j),
            RetryDecision::GiveUp(GiveUpReason::PermanentError)
        );
        let not_retryable = RetryPolicy {
            retryable: false,
            ..p
        };
        assert_eq!(
            not_retryable.decide(1, true, None, 0.0, &mut j),
            RetryDecision::GiveUp(GiveUpReason::NotRetryable)
        );
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let p = RetryPolicy {
            max_backoff_ms: u64::MAX,
            ..policy(BackoffKind::Exponential)
        };
        let d = p.delay_after(200, None, 0.0, &mut FixedJitter(1.0));
        assert!(d >= Duration::from_millis(u64::MAX / 2));
    }
}

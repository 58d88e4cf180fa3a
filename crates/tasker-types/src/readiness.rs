//! The readiness rule (SPEC §4.1): may a step be enqueued now?

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::StepState;

/// What the rule needs to know about one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadinessInput {
    /// The step's current state.
    pub state: StepState,
    /// Executions so far.
    pub attempts: u32,
    /// The step policy's `max_attempts`.
    pub max_attempts: u32,
    /// The step policy's `retryable`.
    pub retryable: bool,
    /// When the backoff after the last failure elapses, if one is pending.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// How many direct parents the step has in this task.
    pub parents_total: usize,
    /// How many of them are `complete` or `resolved_manually`.
    pub parents_satisfied: usize,
}

/// The verdict, with the reason a step is not ready (shown by the API).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Readiness {
    /// Enqueue it now.
    Ready,
    /// Its state is not `pending` or `waiting_for_retry`.
    NotWaiting,
    /// Some parents have not completed.
    WaitingForParents {
        /// Parents still to complete.
        remaining: usize,
    },
    /// It has failed and may not run again.
    RetriesExhausted,
    /// Its backoff has not elapsed.
    BackingOff {
        /// When it will be ready.
        until: DateTime<Utc>,
    },
}

impl Readiness {
    /// Whether the step should be enqueued now.
    pub const fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// Applies SPEC §4.1 at instant `now`.
pub fn evaluate(step: &ReadinessInput, now: DateTime<Utc>) -> Readiness {
    if !matches!(step.state, StepState::Pending | StepState::WaitingForRetry) {
        return Readiness::NotWaiting;
    }
    if step.parents_satisfied < step.parents_total {
        return Readiness::WaitingForParents {
            remaining: step.parents_total - step.parents_satisfied,
        };
    }
    let first_attempt = step.attempts == 0;
    let may_retry = step.retryable && step.attempts < step.max_attempts;
    // A `pending` step that has run before was reset by an operator, who
    // gave it a fresh budget: it runs whether or not failures are retryable.
    let reset = step.state == StepState::Pending && step.attempts < step.max_attempts;
    if !(first_attempt || may_retry || reset) {
        return Readiness::RetriesExhausted;
    }
    match step.next_retry_at {
        Some(until) if until > now => Readiness::BackingOff { until },
        _ => Readiness::Ready,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn pending() -> ReadinessInput {
        ReadinessInput {
            state: StepState::Pending,
            attempts: 0,
            max_attempts: 3,
            retryable: true,
            next_retry_at: None,
            parents_total: 2,
            parents_satisfied: 2,
        }
    }

    #[test]
    fn a_pending_step_with_satisfied_parents_is_ready() {
        assert_eq!(evaluate(&pending(), Utc::now()), Readiness::Ready);
    }

    #[test]
    fn only_pending_and_waiting_for_retry_can_be_ready() {
        for state in StepState::ALL {
            let input = ReadinessInput {
                state,
                attempts: 1,
                ..pending()
            };
            let waiting = matches!(state, StepState::Pending | StepState::WaitingForRetry);
            assert_eq!(evaluate(&input, Utc::now()).is_ready(), waiting, "{state}");
        }
    }

    #[test]
    fn unsatisfied_parents_block_readiness() {
        let input = ReadinessInput {
            parents_satisfied: 1,
            ..pending()
        };
        assert_eq!(
            evaluate(&input, Utc::now()),
            Readiness::WaitingForParents { remaining: 1 }
        );
    }

    #[test]
    fn retries_need_a_retryable_policy_and_attempts_left() {
        let now = Utc::now();
        let retrying = ReadinessInput {
            state: StepState::WaitingForRetry,
            attempts: 2,
            ..pending()
        };
        assert_eq!(evaluate(&retrying, now), Readiness::Ready);
        let exhausted = ReadinessInput {
            attempts: 3,
            ..retrying
        };
        assert_eq!(evaluate(&exhausted, now), Readiness::RetriesExhausted);
        let not_retryable = ReadinessInput {
            retryable: false,
            ..retrying
        };
        assert_eq!(evaluate(&not_retryable, now), Readiness::RetriesExhausted);
        let first_attempt_of_unretryable = ReadinessInput {
            retryable: false,
            ..pending()
        };
        assert_eq!(
            evaluate(&first_attempt_of_unretryable, now),
            Readiness::Ready
        );
    }

    #[test]
    fn a_step_reset_by_an_operator_runs_within_its_new_budget() {
        let now = Utc::now();
        let reset = ReadinessInput {
            attempts: 1,
            max_attempts: 2,
            retryable: false,
            ..pending()
        };
        assert_eq!(evaluate(&reset, now), Readiness::Ready);
        let spent = ReadinessInput {
            max_attempts: 1,
            ..reset
        };
        assert_eq!(evaluate(&spent, now), Readiness::RetriesExhausted);
    }

    #[test]
    fn backoff_must_have_elapsed() {
        let now = Utc::now();
        let later = now + TimeDelta::milliseconds(500);
        let input = ReadinessInput {
            state: StepState::WaitingForRetry,
            attempts: 1,
            next_retry_at: Some(later),
            ..pending()
        };
        assert_eq!(
            evaluate(&input, now),
            Readiness::BackingOff { until: later }
        );
        assert_eq!(evaluate(&input, later), Readiness::Ready);
    }
}

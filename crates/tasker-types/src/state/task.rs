//! The task state machine (SPEC §3): twelve states, the events that move a task
//! between them, and the pure transition function every writer goes through.

use serde::{Deserialize, Serialize};

use super::{InvalidTransition, ParseStateError};

/// Where a task is in its life. Mirrored 1:1 by `tasker.tasks.state` and the
/// `to_state` of `tasker.task_transitions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created and persisted; orchestration has not looked at it yet.
    /// Left by orchestration's task initializer (`Initialize`) or by `Cancel`.
    Pending,
    /// Orchestration is building the task's first wave of work.
    /// Left by the initializer once the ready root steps are known (`EnqueueReadySteps`).
    Initializing,
    /// Ready steps are being enqueued to worker queues.
    /// Left by the same transaction once the sends are written (`AwaitSteps`).
    EnqueuingSteps,
    /// Steps are on worker queues or running. Left by the result loop when a
    /// step result arrives (`EvaluateResults`).
    StepsInProcess,
    /// Orchestration is applying step results and deciding what comes next.
    /// Left by the result loop in the same transaction, to whichever state the
    /// step states call for.
    EvaluatingResults,
    /// Nothing is ready, in flight or waiting for a retry, yet steps remain
    /// pending. Left when an operator changes a step (`EvaluateResults`);
    /// the staleness detector watches tasks that stay here.
    WaitingForDependencies,
    /// Nothing is in flight; at least one step waits for its backoff to
    /// elapse. Left by the retry timer (`EvaluateResults`).
    WaitingForRetry,
    /// A step failed permanently while other steps were still in flight.
    /// Left by the result loop (`Fail`) once nothing is in flight any more.
    BlockedByFailures,
    /// Terminal: every step is complete or resolved manually.
    Complete,
    /// Terminal: a step failed permanently. An operator may reopen the task
    /// by repairing a step (`Reopen`).
    Error,
    /// Terminal: cancelled by a caller.
    Cancelled,
    /// Terminal: an operator declared the task done by hand.
    ResolvedManually,
}

/// Something that happens to a task. Each event is allowed from a fixed set of
/// states; see [`TaskState::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEvent {
    /// Orchestration picks the task up: `pending → initializing`.
    Initialize,
    /// Ready steps were found: `initializing | evaluating_results |
    /// waiting_for_dependencies | waiting_for_retry → enqueuing_steps`.
    EnqueueReadySteps,
    /// Steps are now in flight: `enqueuing_steps | evaluating_results → steps_in_process`.
    AwaitSteps,
    /// Results (or an operator's change, or a due retry) need evaluating:
    /// `steps_in_process | waiting_for_dependencies | waiting_for_retry |
    /// blocked_by_failures → evaluating_results`.
    EvaluateResults,
    /// Nothing ready or in flight but pending steps remain:
    /// `evaluating_results → waiting_for_dependencies`.
    AwaitDependencies,
    /// Nothing in flight; a retry is scheduled: `evaluating_results → waiting_for_retry`.
    AwaitRetry,
    /// A permanent failure with steps still in flight:
    /// `evaluating_results → blocked_by_failures`.
    Block,
    /// Every step is done: `evaluating_results → complete`.
    Complete,
    /// A permanent failure and nothing in flight:
    /// `evaluating_results | blocked_by_failures → error`.
    Fail,
    /// A caller cancels the task: any non-terminal state `→ cancelled`.
    Cancel,
    /// An operator closes the task by hand: any non-terminal state or `error → resolved_manually`.
    ResolveManually,
    /// An operator repaired a step of a failed task: `error → evaluating_results`.
    Reopen,
}

impl TaskState {
    /// Every state, in the order of SPEC §3.
    pub const ALL: [TaskState; 12] = [
        TaskState::Pending,
        TaskState::Initializing,
        TaskState::EnqueuingSteps,
        TaskState::StepsInProcess,
        TaskState::EvaluatingResults,
        TaskState::WaitingForDependencies,
        TaskState::WaitingForRetry,
        TaskState::BlockedByFailures,
        TaskState::Complete,
        TaskState::Error,
        TaskState::Cancelled,
        TaskState::ResolvedManually,
    ];

    /// The state's name as stored in the database and shown by the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Initializing => "initializing",
            TaskState::EnqueuingSteps => "enqueuing_steps",
            TaskState::StepsInProcess => "steps_in_process",
            TaskState::EvaluatingResults => "evaluating_results",
            TaskState::WaitingForDependencies => "waiting_for_dependencies",
            TaskState::WaitingForRetry => "waiting_for_retry",
            TaskState::BlockedByFailures => "blocked_by_failures",
            TaskState::Complete => "complete",
            TaskState::Error => "error",
            TaskState::Cancelled => "cancelled",
            TaskState::ResolvedManually => "resolved_manually",
        }
    }

    /// The names of the terminal states, in the order of SPEC §3 (what
    /// clients waiting for a task stop at).
    pub fn terminal_names() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(Self::as_str)
            .collect()
    }

    /// Whether the task has finished (successfully or not). `error` is
    /// terminal even though an operator may reopen it.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Complete
                | TaskState::Error
                | TaskState::Cancelled
                | TaskState::ResolvedManually
        )
    }

    /// The state `event` moves a task in this state to.
    ///
    /// # Errors
    /// [`InvalidTransition`] when `event` is not allowed from this state; the
    /// caller must not write anything.
    pub fn next(self, event: TaskEvent) -> Result<TaskState, InvalidTransition> {
        use TaskEvent as E;
        use TaskState as S;
        let to = match (self, event) {
            (S::Pending, E::Initialize) => S::Initializing,
            (
                S::Initializing
                | S::EvaluatingResults
                | S::WaitingForDependencies
                | S::WaitingForRetry,
                E::EnqueueReadySteps,
            ) => S::EnqueuingSteps,
            (S::EnqueuingSteps | S::EvaluatingResults, E::AwaitSteps) => S::StepsInProcess,
            (
                S::StepsInProcess
                | S::WaitingForDependencies
                | S::WaitingForRetry
                | S::BlockedByFailures,
                E::EvaluateResults,
            ) => S::EvaluatingResults,
            (S::EvaluatingResults, E::AwaitDependencies) => S::WaitingForDependencies,
            (S::EvaluatingResults, E::AwaitRetry) => S::WaitingForRetry,
            (S::EvaluatingResults, E::Block) => S::BlockedByFailures,
            (S::EvaluatingResults, E::Complete) => S::Complete,
            (S::EvaluatingResults | S::BlockedByFailures, E::Fail) => S::Error,
            (from, E::Cancel) if !from.is_terminal() => S::Cancelled,
            (from, E::ResolveManually) if !from.is_terminal() || from == S::Error => {
                S::ResolvedManually
            }
            (S::Error, E::Reopen) => S::EvaluatingResults,
            (from, event) => {
                return Err(InvalidTransition {
                    machine: "task",
                    from: from.as_str(),
                    event: event.as_str(),
                });
            }
        };
        Ok(to)
    }
}

impl TaskEvent {
    /// Every event.
    pub const ALL: [TaskEvent; 12] = [
        TaskEvent::Initialize,
        TaskEvent::EnqueueReadySteps,
        TaskEvent::AwaitSteps,
        TaskEvent::EvaluateResults,
        TaskEvent::AwaitDependencies,
        TaskEvent::AwaitRetry,
        TaskEvent::Block,
        TaskEvent::Complete,
        TaskEvent::Fail,
        TaskEvent::Cancel,
        TaskEvent::ResolveManually,
        TaskEvent::Reopen,
    ];

    /// The event's name, as recorded in transition metadata and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEvent::Initialize => "initialize",
            TaskEvent::EnqueueReadySteps => "enqueue_ready_steps",
            TaskEvent::AwaitSteps => "await_steps",
            TaskEvent::EvaluateResults => "evaluate_results",
            TaskEvent::AwaitDependencies => "await_dependencies",
            TaskEvent::AwaitRetry => "await_retry",
            TaskEvent::Block => "block",
            TaskEvent::Complete => "complete",
            TaskEvent::Fail => "fail",
            TaskEvent::Cancel => "cancel",
            TaskEvent::ResolveManually => "resolve_manually",
            TaskEvent::Reopen => "reopen",
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskState {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseStateError {
                machine: "task",
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskEvent as E;
    use TaskState as S;

    /// The allowed transitions, written out independently of `next` from SPEC
    /// §3 and reference/004. Every pair not listed here must be rejected.
    const ALLOWED: &[(TaskState, TaskEvent, TaskState)] = &[
        (S::Pending, E::Initialize, S::Initializing),
        (S::Initializing, E::EnqueueReadySteps, S::EnqueuingSteps),
        (
            S::EvaluatingResults,
            E::EnqueueReadySteps,
            S::EnqueuingSteps,
        ),
        (
            S::WaitingForDependencies,
            E::EnqueueReadySteps,
            S::EnqueuingSteps,
        ),
        (S::WaitingForRetry, E::EnqueueReadySteps, S::EnqueuingSteps),
        (S::EnqueuingSteps, E::AwaitSteps, S::StepsInProcess),
        (S::EvaluatingResults, E::AwaitSteps, S::StepsInProcess),
        (S::StepsInProcess, E::EvaluateResults, S::EvaluatingResults),
        (
            S::WaitingForDependencies,
            E::EvaluateResults,
            S::EvaluatingResults,
        ),
        (S::WaitingForRetry, E::EvaluateResults, S::EvaluatingResults),
        (
            S::BlockedByFailures,
            E::EvaluateResults,
            S::EvaluatingResults,
        ),
        (
            S::EvaluatingResults,
            E::AwaitDependencies,
            S::WaitingForDependencies,
        ),
        (S::EvaluatingResults, E::AwaitRetry, S::WaitingForRetry),
        (S::EvaluatingResults, E::Block, S::BlockedByFailures),
        (S::EvaluatingResults, E::Complete, S::Complete),
        (S::EvaluatingResults, E::Fail, S::Error),
        (S::BlockedByFailures, E::Fail, S::Error),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::Initializing, E::Cancel, S::Cancelled),
        (S::EnqueuingSteps, E::Cancel, S::Cancelled),
        (S::StepsInProcess, E::Cancel, S::Cancelled),
        (S::EvaluatingResults, E::Cancel, S::Cancelled),
        (S::WaitingForDependencies, E::Cancel, S::Cancelled),
        (S::WaitingForRetry, E::Cancel, S::Cancelled),
        (S::BlockedByFailures, E::Cancel, S::Cancelled),
        (S::Pending, E::ResolveManually, S::ResolvedManually),
        (S::Initializing, E::ResolveManually, S::ResolvedManually),
        (S::EnqueuingSteps, E::ResolveManually, S::ResolvedManually),
        (S::StepsInProcess, E::ResolveManually, S::ResolvedManually),
        (
            S::EvaluatingResults,
            E::ResolveManually,
            S::ResolvedManually,
        ),
        (
            S::WaitingForDependencies,
            E::ResolveManually,
            S::ResolvedManually,
        ),
        (S::WaitingForRetry, E::ResolveManually, S::ResolvedManually),
        (
            S::BlockedByFailures,
            E::ResolveManually,
            S::ResolvedManually,
        ),
        (S::Error, E::ResolveManually, S::ResolvedManually),
        (S::Error, E::Reopen, S::EvaluatingResults),
    ];

    #[test]
    fn every_state_event_pair_matches_the_table() {
        let mut checked = 0;
        for from in S::ALL {
            for event in E::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (from.next(event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from} --{event:?}-->"),
                    (Err(err), None) => {
                        assert_eq!(err.from, from.as_str());
                        assert_eq!(err.event, event.as_str());
                    }
                    (got, want) => {
                        panic!("{from} --{event:?}--> gave {got:?}, table says {want:?}")
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 12 * 12);
    }

    #[test]
    fn terminal_states_other_than_error_accept_no_event() {
        for from in [S::Complete, S::Cancelled, S::ResolvedManually] {
            for event in E::ALL {
                assert!(from.next(event).is_err(), "{from} accepted {event:?}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in S::ALL {
            assert_eq!(state.as_str().parse::<S>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().to_owned())
            );
        }
        for event in E::ALL {
            assert_eq!(
                serde_json::to_value(event).unwrap(),
                serde_json::Value::String(event.as_str().to_owned())
            );
        }
        assert!("finished".parse::<S>().is_err());
    }
}

//! The workflow step state machine (SPEC §3, §4.2–§4.4): ten states, the events
//! that move a step, and the pure transition function every writer goes through.

use serde::{Deserialize, Serialize};

use super::{InvalidTransition, ParseStateError};

/// Where a workflow step is in its life. Mirrored 1:1 by
/// `tasker.workflow_steps.state` and `tasker.workflow_step_transitions.to_state`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Created, not yet ready or not yet enqueued. Left by orchestration when
    /// the step becomes ready (`Enqueue`).
    Pending,
    /// A pointer message is on the worker queue. Left by the worker that
    /// claims it (`Start`).
    Enqueued,
    /// A worker attempt holds the lease and runs the handler. Left by that
    /// worker (`RecordSuccess`/`RecordFailure`), or by another worker once the
    /// lease has expired (`Reclaim`).
    InProgress,
    /// The worker stored a successful result. Left by orchestration
    /// (`Complete`, or `Fail` when the outcome cannot be applied).
    EnqueuedForOrchestration,
    /// The worker stored a failure. Left by orchestration (`ScheduleRetry` or `Fail`).
    EnqueuedAsErrorForOrchestration,
    /// Failed with attempts left; `next_retry_at` says when. Left by the
    /// retry timer (`Enqueue`). Enqueued, in-progress and retrying steps that
    /// make no progress for too long are failed by the staleness detector
    /// (`Expire`).
    WaitingForRetry,
    /// Terminal: the handler succeeded and orchestration accepted the result.
    Complete,
    /// Terminal: failed permanently or out of attempts. An operator may
    /// `ResetForRetry`, `ResolveManually` or `CompleteManually`.
    Error,
    /// Terminal: the task was cancelled.
    Cancelled,
    /// Terminal: an operator declared the step done without a result.
    ResolvedManually,
}

/// Something that happens to a step; see [`StepState::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepEvent {
    /// Orchestration enqueues a ready step: `pending | waiting_for_retry → enqueued`.
    Enqueue,
    /// A worker claims the step, starting a new attempt: `enqueued → in_progress`.
    Start,
    /// A worker re-claims a step whose lease expired, starting a new attempt:
    /// `in_progress → in_progress`.
    Reclaim,
    /// The current attempt stored a success: `in_progress → enqueued_for_orchestration`.
    RecordSuccess,
    /// The current attempt stored a failure: `in_progress → enqueued_as_error_for_orchestration`.
    RecordFailure,
    /// Orchestration accepts a success: `enqueued_for_orchestration → complete`.
    Complete,
    /// Orchestration schedules another attempt:
    /// `enqueued_as_error_for_orchestration → waiting_for_retry`.
    ScheduleRetry,
    /// Orchestration gives up on the step: `enqueued_as_error_for_orchestration → error`,
    /// or refuses a success it cannot apply (an invalid decision or batch
    /// outcome): `enqueued_for_orchestration → error`.
    Fail,
    /// The staleness detector gives up on a step that made no progress for
    /// longer than its task's threshold: `enqueued | in_progress |
    /// waiting_for_retry → error` (SPEC §4.10). A late result is then fenced out.
    Expire,
    /// The task is cancelled: any non-terminal state `→ cancelled`.
    Cancel,
    /// An operator closes the step without a result: any non-terminal state
    /// or `error → resolved_manually`.
    ResolveManually,
    /// An operator supplies the step's result: any non-terminal state or
    /// `error → complete`.
    CompleteManually,
    /// An operator asks for the step to run again: `error → pending`.
    ResetForRetry,
}

impl StepState {
    /// Every state, in the order of SPEC §3.
    pub const ALL: [StepState; 10] = [
        StepState::Pending,
        StepState::Enqueued,
        StepState::InProgress,
        StepState::EnqueuedForOrchestration,
        StepState::EnqueuedAsErrorForOrchestration,
        StepState::WaitingForRetry,
        StepState::Complete,
        StepState::Error,
        StepState::Cancelled,
        StepState::ResolvedManually,
    ];

    /// The state's name as stored in the database and shown by the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Enqueued => "enqueued",
            StepState::InProgress => "in_progress",
            StepState::EnqueuedForOrchestration => "enqueued_for_orchestration",
            StepState::EnqueuedAsErrorForOrchestration => "enqueued_as_error_for_orchestration",
            StepState::WaitingForRetry => "waiting_for_retry",
            StepState::Complete => "complete",
            StepState::Error => "error",
            StepState::Cancelled => "cancelled",
            StepState::ResolvedManually => "resolved_manually",
        }
    }

    /// Whether the step has finished. `error` is terminal even though an
    /// operator may act on it.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Complete
                | StepState::Error
                | StepState::Cancelled
                | StepState::ResolvedManually
        )
    }

    /// Whether a child may rely on this step: only `complete` and
    /// `resolved_manually` satisfy a dependency (SPEC §3).
    pub const fn satisfies_dependency(self) -> bool {
        matches!(self, StepState::Complete | StepState::ResolvedManually)
    }

    /// Whether the step is somewhere between orchestration and a worker: on a
    /// queue, running, or with a result orchestration has not applied yet.
    pub const fn is_in_flight(self) -> bool {
        matches!(
            self,
            StepState::Enqueued
                | StepState::InProgress
                | StepState::EnqueuedForOrchestration
                | StepState::EnqueuedAsErrorForOrchestration
        )
    }

    /// The state `event` moves a step in this state to.
    ///
    /// # Errors
    /// [`InvalidTransition`] when `event` is not allowed from this state; the
    /// caller must not write anything.
    pub fn next(self, event: StepEvent) -> Result<StepState, InvalidTransition> {
        use StepEvent as E;
        use StepState as S;
        let to = match (self, event) {
            (S::Pending | S::WaitingForRetry, E::Enqueue) => S::Enqueued,
            (S::Enqueued, E::Start) => S::InProgress,
            (S::InProgress, E::Reclaim) => S::InProgress,
            (S::InProgress, E::RecordSuccess) => S::EnqueuedForOrchestration,
            (S::InProgress, E::RecordFailure) => S::EnqueuedAsErrorForOrchestration,
            (S::EnqueuedForOrchestration, E::Complete) => S::Complete,
            (S::EnqueuedAsErrorForOrchestration, E::ScheduleRetry) => S::WaitingForRetry,
            (S::EnqueuedAsErrorForOrchestration | S::EnqueuedForOrchestration, E::Fail) => S::Error,
            (S::Enqueued | S::InProgress | S::WaitingForRetry, E::Expire) => S::Error,
            (from, E::Cancel) if !from.is_terminal() => S::Cancelled,
            (from, E::ResolveManually) if !from.is_terminal() || from == S::Error => {
                S::ResolvedManually
            }
            (from, E::CompleteManually) if !from.is_terminal() || from == S::Error => S::Complete,
            (S::Error, E::ResetForRetry) => S::Pending,
            (from, event) => {
                return Err(InvalidTransition {
                    machine: "step",
                    from: from.as_str(),
                    event: event.as_str(),
                });
            }
        };
        Ok(to)
    }
}

impl StepEvent {
    /// Every event.
    pub const ALL: [StepEvent; 13] = [
        StepEvent::Enqueue,
        StepEvent::Start,
        StepEvent::Reclaim,
        StepEvent::RecordSuccess,
        StepEvent::RecordFailure,
        StepEvent::Complete,
        StepEvent::ScheduleRetry,
        StepEvent::Fail,
        StepEvent::Expire,
        StepEvent::Cancel,
        StepEvent::ResolveManually,
        StepEvent::CompleteManually,
        StepEvent::ResetForRetry,
    ];

    /// The event's name, as recorded in transition metadata and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepEvent::Enqueue => "enqueue",
            StepEvent::Start => "start",
            StepEvent::Reclaim => "reclaim",
            StepEvent::RecordSuccess => "record_success",
            StepEvent::RecordFailure => "record_failure",
            StepEvent::Complete => "complete",
            StepEvent::ScheduleRetry => "schedule_retry",
            StepEvent::Fail => "fail",
            StepEvent::Expire => "expire",
            StepEvent::Cancel => "cancel",
            StepEvent::ResolveManually => "resolve_manually",
            StepEvent::CompleteManually => "complete_manually",
            StepEvent::ResetForRetry => "reset_for_retry",
        }
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StepState {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseStateError {
                machine: "step",
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepEvent as E;
    use StepState as S;

    const NON_TERMINAL: [StepState; 6] = [
        S::Pending,
        S::Enqueued,
        S::InProgress,
        S::EnqueuedForOrchestration,
        S::EnqueuedAsErrorForOrchestration,
        S::WaitingForRetry,
    ];

    /// The allowed transitions, written out independently of `next`. Every
    /// pair not produced here must be rejected.
    fn allowed() -> Vec<(StepState, StepEvent, StepState)> {
        let mut table = vec![
            (S::Pending, E::Enqueue, S::Enqueued),
            (S::WaitingForRetry, E::Enqueue, S::Enqueued),
            (S::Enqueued, E::Start, S::InProgress),
            (S::InProgress, E::Reclaim, S::InProgress),
            (S::InProgress, E::RecordSuccess, S::EnqueuedForOrchestration),
            (
                S::InProgress,
                E::RecordFailure,
                S::EnqueuedAsErrorForOrchestration,
            ),
            (S::EnqueuedForOrchestration, E::Complete, S::Complete),
            (
                S::EnqueuedAsErrorForOrchestration,
                E::ScheduleRetry,
                S::WaitingForRetry,
            ),
            (S::EnqueuedAsErrorForOrchestration, E::Fail, S::Error),
            (S::EnqueuedForOrchestration, E::Fail, S::Error),
            (S::Enqueued, E::Expire, S::Error),
            (S::InProgress, E::Expire, S::Error),
            (S::WaitingForRetry, E::Expire, S::Error),
            (S::Error, E::ResetForRetry, S::Pending),
            (S::Error, E::ResolveManually, S::ResolvedManually),
            (S::Error, E::CompleteManually, S::Complete),
        ];
        for from in NON_TERMINAL {
            table.push((from, E::Cancel, S::Cancelled));
            table.push((from, E::ResolveManually, S::ResolvedManually));
            table.push((from, E::CompleteManually, S::Complete));
        }
        table
    }

    #[test]
    fn every_state_event_pair_matches_the_table() {
        let table = allowed();
        let mut checked = 0;
        for from in S::ALL {
            for event in E::ALL {
                let expected = table
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
        assert_eq!(checked, 10 * 13);
    }

    #[test]
    fn only_complete_and_resolved_manually_satisfy_dependencies() {
        let satisfying: Vec<_> = S::ALL
            .into_iter()
            .filter(|s| s.satisfies_dependency())
            .collect();
        assert_eq!(satisfying, vec![S::Complete, S::ResolvedManually]);
    }

    #[test]
    fn in_flight_states_sit_between_orchestration_and_workers() {
        let in_flight: Vec<_> = S::ALL.into_iter().filter(|s| s.is_in_flight()).collect();
        assert_eq!(
            in_flight,
            vec![
                S::Enqueued,
                S::InProgress,
                S::EnqueuedForOrchestration,
                S::EnqueuedAsErrorForOrchestration
            ]
        );
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
    }
}

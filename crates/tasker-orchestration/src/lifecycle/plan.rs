//! The pure heart of orchestration: given a task's state and its steps,
//! which steps to enqueue and which path of task events to follow. No I/O;
//! the result processor and the initializer apply the plan.

use chrono::{DateTime, Utc};
use tasker_types::backoff::RetryPolicy;
use tasker_types::readiness::{self, Readiness, ReadinessInput};
use tasker_types::state::{StepState, TaskEvent, TaskState};

/// What the planner needs to know about one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepView {
    /// The step's state (after this batch's results were applied).
    pub state: StepState,
    /// Its current attempt.
    pub attempts: u32,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// When its backoff elapses.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Indexes of its parents in the same slice.
    pub parents: Vec<usize>,
    /// What its permanent failure does to the task.
    pub on_error: OnError,
    /// The set of steps it runs in at most `limit` at a time with (a
    /// batchable step's workers, SPEC §4.7).
    pub group: Option<Group>,
}

impl StepView {
    /// A step in `state` with default policies and no parents.
    pub fn new(state: StepState, attempts: u32, retry: RetryPolicy) -> Self {
        Self {
            state,
            attempts,
            retry,
            next_retry_at: None,
            parents: Vec::new(),
            on_error: OnError::Stop,
            group: None,
        }
    }
}

/// What a step's permanent failure (`error`) does to its task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// No new work starts; the task fails once nothing is in flight.
    #[default]
    Stop,
    /// The failure is tolerated: dependents treat the step as settled and
    /// the task can still complete (`continue_on_failure` batches).
    Tolerate,
    /// Other work goes on, but the step's dependents wait for an operator,
    /// and the task fails once nothing else can run (`isolate` batches).
    Isolate,
}

/// A concurrency group: at most `limit` of its members in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// Identifies the group within the task.
    pub id: usize,
    /// Most members on queues or running at once.
    pub limit: u32,
}

/// Where the task is heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every step is done.
    Complete,
    /// A step failed permanently and nothing is in flight.
    Error,
    /// A step failed permanently; others are still in flight.
    Blocked,
    /// Steps are on queues or running.
    InProcess,
    /// Nothing in flight; a step waits for its backoff (the earliest due time).
    WaitingForRetry(Option<DateTime<Utc>>),
    /// Nothing ready, in flight or retrying, yet steps remain.
    WaitingForDependencies,
}

/// The plan for one task.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Steps to enqueue now (indexes into the input).
    pub ready: Vec<usize>,
    /// Where the task is heading.
    pub target: Target,
    /// The events that take the task there, in order. Empty when the task
    /// ends where it started (e.g. a result arrived and more steps were
    /// enqueued: still `steps_in_process`), so in-transaction round trips
    /// through `evaluating_results` leave no rows behind.
    pub events: Vec<TaskEvent>,
}

/// Plans task `current` with `steps` at instant `now`. A terminal task gets
/// an empty plan: results that arrive after cancellation change nothing.
pub fn plan(current: TaskState, steps: &[StepView], now: DateTime<Utc>) -> Plan {
    if current.is_terminal() {
        return Plan {
            ready: Vec::new(),
            target: match current {
                TaskState::Complete | TaskState::ResolvedManually | TaskState::Cancelled => {
                    Target::Complete
                }
                _ => Target::Error,
            },
            events: Vec::new(),
        };
    }
    let failed_with = |policy: OnError| {
        steps
            .iter()
            .any(|s| s.state == StepState::Error && s.on_error == policy)
    };
    let (stopped, isolated) = (failed_with(OnError::Stop), failed_with(OnError::Isolate));
    let settled = |s: &StepView| {
        s.state.satisfies_dependency()
            || (s.state == StepState::Error && s.on_error == OnError::Tolerate)
    };
    let in_flight = steps.iter().filter(|s| s.state.is_in_flight()).count();
    let all_done = steps
        .iter()
        .all(|s| settled(s) || s.state == StepState::Cancelled);
    let mut ready = Vec::new();
    let mut earliest_retry: Option<DateTime<Utc>> = None;
    let mut backing_off = false;
    for (i, step) in steps.iter().enumerate() {
        let input = ReadinessInput {
            state: step.state,
            attempts: step.attempts,
            max_attempts: step.retry.max_attempts,
            retryable: step.retry.retryable,
            next_retry_at: step.next_retry_at,
            parents_total: step.parents.len(),
            parents_satisfied: step
                .parents
                .iter()
                .filter(|&&p| steps.get(p).is_some_and(settled))
                .count(),
        };
        match readiness::evaluate(&input, now) {
            Readiness::Ready => ready.push(i),
            Readiness::BackingOff { until } => {
                backing_off = true;
                earliest_retry = Some(earliest_retry.map_or(until, |e| e.min(until)));
            }
            _ => {}
        }
    }
    // A permanent failure stops new work: dependents could never run, and
    // independent branches are held until an operator decides.
    if stopped {
        ready.clear();
    }
    limit_groups(steps, &mut ready);
    let target = if stopped || isolated {
        // An isolated failure lets the rest run (and retry) first.
        if in_flight > 0 || (isolated && (!ready.is_empty() || backing_off)) {
            Target::Blocked
        } else {
            Target::Error
        }
    } else if all_done {
        Target::Complete
    } else if !ready.is_empty() || in_flight > 0 {
        Target::InProcess
    } else if backing_off {
        Target::WaitingForRetry(earliest_retry)
    } else {
        Target::WaitingForDependencies
    };
    let events = path(current, target, !ready.is_empty());
    Plan {
        ready,
        target,
        events,
    }
}

/// Drops ready steps beyond their group's limit, counting members already
/// in flight; earlier steps win.
fn limit_groups(steps: &[StepView], ready: &mut Vec<usize>) {
    let mut used: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    for step in steps.iter().filter(|s| s.state.is_in_flight()) {
        if let Some(group) = step.group {
            *used.entry(group.id).or_default() += 1;
        }
    }
    ready.retain(|&i| match steps[i].group {
        None => true,
        Some(group) => {
            let count = used.entry(group.id).or_default();
            let fits = *count < group.limit;
            if fits {
                *count += 1;
            }
            fits
        }
    });
}

/// The events from `current` to `target`, empty when they end where they began.
fn path(current: TaskState, target: Target, enqueues: bool) -> Vec<TaskEvent> {
    use TaskEvent as E;
    use TaskState as S;
    let mut events = match current {
        S::Pending => vec![E::Initialize, E::EnqueueReadySteps],
        S::Initializing => vec![E::EnqueueReadySteps],
        S::EnqueuingSteps => Vec::new(),
        S::EvaluatingResults => Vec::new(),
        S::BlockedByFailures if target == Target::Error => return vec![E::Fail],
        _ => vec![E::EvaluateResults],
    };
    let from_initialization = matches!(current, S::Pending | S::Initializing | S::EnqueuingSteps);
    if from_initialization {
        // A new task always goes through enqueuing, even if nothing was ready.
        events.push(E::AwaitSteps);
    } else {
        match target {
            Target::Complete => events.push(E::Complete),
            Target::Error => events.push(E::Fail),
            Target::Blocked => events.push(E::Block),
            Target::InProcess if enqueues => events.extend([E::EnqueueReadySteps, E::AwaitSteps]),
            Target::InProcess => events.push(E::AwaitSteps),
            Target::WaitingForRetry(_) => events.push(E::AwaitRetry),
            Target::WaitingForDependencies => events.push(E::AwaitDependencies),
        }
    }
    let mut state = current;
    for event in &events {
        match state.next(*event) {
            Ok(next) => state = next,
            // The table above only produces legal paths (tested over every
            // state); never write an illegal one.
            Err(_) => return Vec::new(),
        }
    }
    if state == current { Vec::new() } else { events }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn step(state: StepState, parents: &[usize]) -> StepView {
        StepView {
            parents: parents.to_vec(),
            ..StepView::new(
                state,
                u32::from(state != StepState::Pending),
                RetryPolicy::default(),
            )
        }
    }

    fn batch(state: StepState, parents: &[usize], on_error: OnError, limit: u32) -> StepView {
        StepView {
            on_error,
            group: Some(Group { id: 7, limit }),
            ..step(state, parents)
        }
    }

    #[test]
    fn a_group_runs_at_most_its_limit_at_once() {
        use StepState::*;
        let steps = [
            step(Complete, &[]),
            batch(InProgress, &[0], OnError::Stop, 2),
            batch(Pending, &[0], OnError::Stop, 2),
            batch(Pending, &[0], OnError::Stop, 2),
            step(Pending, &[0]),
        ];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert_eq!(
            p.ready,
            [2, 4],
            "one slot left in the group; others unaffected"
        );
    }

    #[test]
    fn a_tolerated_failure_lets_convergence_run_and_the_task_complete() {
        use StepState::*;
        let steps = [
            step(Complete, &[]),
            batch(Error, &[0], OnError::Tolerate, 4),
            batch(Complete, &[0], OnError::Tolerate, 4),
            step(Pending, &[1, 2]),
        ];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert_eq!(p.ready, [3]);
        assert_eq!(p.target, Target::InProcess);
        let done = [
            step(Complete, &[]),
            batch(Error, &[0], OnError::Tolerate, 4),
            batch(Complete, &[0], OnError::Tolerate, 4),
            step(Complete, &[1, 2]),
        ];
        assert_eq!(
            plan(TaskState::StepsInProcess, &done, Utc::now()).target,
            Target::Complete
        );
    }

    #[test]
    fn an_isolated_failure_lets_siblings_run_then_fails_the_task() {
        use StepState::*;
        let steps = [
            step(Complete, &[]),
            batch(Error, &[0], OnError::Isolate, 1),
            batch(Pending, &[0], OnError::Isolate, 1),
            step(Pending, &[1, 2]),
        ];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert_eq!(p.ready, [2], "the sibling still runs");
        assert_eq!(p.target, Target::Blocked);
        let settled = [
            step(Complete, &[]),
            batch(Error, &[0], OnError::Isolate, 1),
            batch(Complete, &[0], OnError::Isolate, 1),
            step(Pending, &[1, 2]),
        ];
        let p = plan(TaskState::BlockedByFailures, &settled, Utc::now());
        assert!(p.ready.is_empty(), "the convergence waits for an operator");
        assert_eq!(p.events, [TaskEvent::Fail]);
    }

    fn end_state(current: TaskState, plan: &Plan) -> TaskState {
        plan.events.iter().fold(current, |s, e| s.next(*e).unwrap())
    }

    #[test]
    fn a_new_task_enqueues_its_roots_and_is_in_process() {
        use StepState::Pending;
        let steps = [
            step(Pending, &[]),
            step(Pending, &[0]),
            step(Pending, &[]),
            step(Pending, &[1, 2]),
        ];
        let p = plan(TaskState::Pending, &steps, Utc::now());
        assert_eq!(p.ready, [0, 2]);
        assert_eq!(p.target, Target::InProcess);
        assert_eq!(
            p.events,
            [
                TaskEvent::Initialize,
                TaskEvent::EnqueueReadySteps,
                TaskEvent::AwaitSteps
            ]
        );
    }

    #[test]
    fn a_result_that_unlocks_a_child_leaves_the_task_in_process_without_rows() {
        use StepState::*;
        let steps = [step(Complete, &[]), step(Pending, &[0])];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert_eq!(p.ready, [1]);
        assert_eq!(p.target, Target::InProcess);
        assert!(
            p.events.is_empty(),
            "steps_in_process → steps_in_process writes nothing"
        );
    }

    #[test]
    fn the_last_result_completes_the_task() {
        use StepState::*;
        let steps = [step(Complete, &[]), step(ResolvedManually, &[0])];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert_eq!(p.events, [TaskEvent::EvaluateResults, TaskEvent::Complete]);
        assert_eq!(
            end_state(TaskState::StepsInProcess, &p),
            TaskState::Complete
        );
    }

    #[test]
    fn a_permanent_failure_blocks_while_work_is_in_flight_then_errors() {
        use StepState::*;
        let steps = [
            step(Complete, &[]),
            step(Error, &[0]),
            step(InProgress, &[0]),
            step(Pending, &[]),
        ];
        let p = plan(TaskState::StepsInProcess, &steps, Utc::now());
        assert!(
            p.ready.is_empty(),
            "no new work once a step failed permanently"
        );
        assert_eq!(p.target, Target::Blocked);
        assert_eq!(
            end_state(TaskState::StepsInProcess, &p),
            TaskState::BlockedByFailures
        );

        let settled = [
            step(Complete, &[]),
            step(Error, &[0]),
            step(Complete, &[0]),
            step(Pending, &[]),
        ];
        let p = plan(TaskState::BlockedByFailures, &settled, Utc::now());
        assert_eq!(p.events, [TaskEvent::Fail]);
        let p = plan(TaskState::StepsInProcess, &settled, Utc::now());
        assert_eq!(end_state(TaskState::StepsInProcess, &p), TaskState::Error);
    }

    #[test]
    fn a_backing_off_step_leaves_the_task_waiting_for_retry_until_due() {
        let now = Utc::now();
        let due = now + TimeDelta::seconds(2);
        let retrying = StepView {
            next_retry_at: Some(due),
            ..step(StepState::WaitingForRetry, &[])
        };
        let p = plan(
            TaskState::StepsInProcess,
            std::slice::from_ref(&retrying),
            now,
        );
        assert_eq!(p.target, Target::WaitingForRetry(Some(due)));
        assert_eq!(
            end_state(TaskState::StepsInProcess, &p),
            TaskState::WaitingForRetry
        );
        let p = plan(TaskState::WaitingForRetry, &[retrying], due);
        assert_eq!(p.ready, [0]);
        assert_eq!(
            end_state(TaskState::WaitingForRetry, &p),
            TaskState::StepsInProcess
        );
    }

    #[test]
    fn terminal_tasks_get_empty_plans() {
        let steps = [step(StepState::Pending, &[])];
        for state in [
            TaskState::Cancelled,
            TaskState::Complete,
            TaskState::Error,
            TaskState::ResolvedManually,
        ] {
            let p = plan(state, &steps, Utc::now());
            assert!(p.ready.is_empty() && p.events.is_empty(), "{state}");
        }
    }

    #[test]
    fn every_non_terminal_state_reaches_every_target_legally() {
        use StepState::*;
        let now = Utc::now();
        let shapes: Vec<Vec<StepView>> = vec![
            vec![step(Complete, &[])],
            vec![step(Error, &[])],
            vec![step(Error, &[]), step(InProgress, &[])],
            vec![step(Pending, &[])],
            vec![step(Enqueued, &[])],
            vec![StepView {
                next_retry_at: Some(now + TimeDelta::seconds(5)),
                ..step(WaitingForRetry, &[])
            }],
            vec![step(Pending, &[1]), step(Cancelled, &[])],
        ];
        for current in TaskState::ALL.into_iter().filter(|s| !s.is_terminal()) {
            for steps in &shapes {
                let p = plan(current, steps, now);
                let mut state = current;
                for event in &p.events {
                    state = state
                        .next(*event)
                        .unwrap_or_else(|e| panic!("{current} with {steps:?}: {e}"));
                }
                assert!(
                    !matches!(
                        state,
                        TaskState::EvaluatingResults
                            | TaskState::EnqueuingSteps
                            | TaskState::Initializing
                    ),
                    "{current} → {state} leaves the task in a transient state"
                );
            }
        }
    }
}

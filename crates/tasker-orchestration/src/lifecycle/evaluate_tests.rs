//! The engine's rules, one test each, without a database: graphs are built
//! from real templates and states set by hand.

use serde_json::json;
use tasker_db::workflow_step_change::{Effect, StepChange};
use tasker_db::workflow_step_graph::StepNode;
use tasker_types::backoff::FixedJitter;
use tasker_types::ids::{CorrelationId, TaskUuid};
use tasker_types::outcome::{BatchOutcome, CursorConfig, DecisionOutcome};
use tasker_types::state::TaskState;

use super::*;
use crate::lifecycle::graph::TaskFacts;

const LINEAR: &str = "name: linear\nnamespace_name: ns\nversion: 1.0.0\nsteps:
  - { name: a, handler: { callable: x } }
  - { name: b, handler: { callable: x }, dependencies: [a],
      retry: { max_attempts: 3, backoff: exponential, backoff_base_ms: 1000, max_backoff_ms: 8000 } }
  - { name: c, handler: { callable: x }, dependencies: [b] }
";

const APPROVAL: &str = include_str!("../../../../config/tasks/conditional_approval.yaml");
const CSV: &str = include_str!("../../../../config/tasks/csv_batch_processing.yaml");

fn template(yaml: &str) -> TaskTemplate {
    TaskTemplate::from_yaml(yaml, None).expect("a valid template")
}

fn rules() -> Rules {
    Rules {
        expansion: ExpansionLimits {
            max_steps_per_decision: 50,
            max_decision_depth: 4,
            max_batches: 100,
        },
        jitter_spread: 0.0,
    }
}

fn facts(state: TaskState) -> TaskFacts {
    TaskFacts {
        task_uuid: TaskUuid::new(),
        state,
        correlation_id: CorrelationId::default(),
        traceparent: None,
    }
}

/// A stored graph of `template`'s initial steps, in `task_state`, every
/// step `pending` but those named in `states` (state, attempts).
fn stored(
    template: &TaskTemplate,
    task_state: TaskState,
    states: &[(&str, StepState, u32)],
) -> TaskGraph {
    let task = facts(task_state);
    let initial = NewGraph::initial(template).expect("a graph");
    let nodes = initial
        .steps
        .iter()
        .map(|s| {
            let (state, attempts) = states
                .iter()
                .find(|(name, ..)| *name == s.name)
                .map_or((StepState::Pending, 0), |(_, st, at)| (*st, *at));
            StepNode {
                workflow_step_uuid: s.uuid,
                task_uuid: task.task_uuid,
                name: s.name.clone(),
                template_step: s.template_step.clone(),
                step_type: s.step_type,
                state,
                attempts,
                retry: s.retry,
                next_retry_at: None,
                last_error: None,
                flow_control: None,
                parents: initial
                    .edges
                    .iter()
                    .filter(|e| e.to == s.uuid)
                    .map(|e| e.from)
                    .collect(),
            }
        })
        .collect();
    TaskGraph::stored(task, nodes)
}

fn uuid_of(graph: &TaskGraph, name: &str) -> StepUuid {
    graph
        .steps
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.uuid)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn state_of(ev: &Evaluation, name: &str) -> StepState {
    ev.graph
        .step(uuid_of(&ev.graph, name))
        .map(|s| s.state)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn pointer(graph: &TaskGraph, name: &str, attempt: u32) -> StepAttempt {
    StepAttempt {
        task_uuid: graph.task.task_uuid,
        step_uuid: uuid_of(graph, name),
        attempt,
        correlation_id: graph.task.correlation_id,
        traceparent: graph.task.traceparent,
    }
}

fn run(graph: TaskGraph, template: &TaskTemplate, inputs: &[Input]) -> Evaluation {
    run_at(graph, template, inputs, Utc::now())
}

fn run_at(
    graph: TaskGraph,
    template: &TaskTemplate,
    inputs: &[Input],
    now: DateTime<Utc>,
) -> Evaluation {
    evaluate(
        graph,
        template,
        inputs,
        now,
        &rules(),
        &mut FixedJitter(1.0),
    )
    .expect("evaluates")
}

/// Each wave's changes as (step name, event).
fn waves(ev: &Evaluation) -> Vec<Vec<(String, &'static str)>> {
    let name = |c: &StepChange| {
        ev.graph
            .step(c.step)
            .map_or_else(|| "?".to_owned(), |s| s.name.clone())
    };
    ev.waves
        .iter()
        .map(|w| w.iter().map(|c| (name(c), c.event.as_str())).collect())
        .collect()
}

fn wave(pairs: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    pairs.iter().map(|(n, e)| ((*n).to_owned(), *e)).collect()
}

fn sent(ev: &Evaluation) -> Vec<String> {
    ev.sends
        .iter()
        .map(|(_, s)| ev.graph.step(*s).map_or("?".into(), |g| g.name.clone()))
        .collect()
}

#[test]
fn a_new_task_is_born_started_with_its_roots_enqueued_and_no_updates() {
    let t = template(LINEAR);
    let graph = TaskGraph::new_task(
        facts(TaskState::Pending),
        NewGraph::initial(&t).expect("a graph"),
    );
    let ev = run(graph, &t, &[]);
    assert!(ev.waves.is_empty(), "born, not updated");
    assert_eq!(sent(&ev), ["a"]);
    assert_eq!(ev.sends[0].0.as_str(), "worker_ns_queue");
    assert_eq!(
        ev.path,
        [
            TaskEvent::Initialize,
            TaskEvent::EnqueueReadySteps,
            TaskEvent::AwaitSteps
        ]
    );
    let (born, steps, edges) = ev.graph.to_insert();
    assert_eq!(
        (born, steps.len(), edges.len()),
        (vec![true, false, false], 3, 2)
    );
}

#[test]
fn a_success_completes_its_step_and_enqueues_the_child_in_one_wave() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[("a", StepState::EnqueuedForOrchestration, 1)],
    );
    let input = Input::Result(pointer(&graph, "a", 1));
    let ev = run(graph, &t, &[input]);
    assert_eq!(waves(&ev), [wave(&[("a", "complete"), ("b", "enqueue")])]);
    assert_eq!(sent(&ev), ["b"]);
    assert!(
        ev.path.is_empty(),
        "steps_in_process stays, writing nothing"
    );
    assert!(matches!(ev.outcomes[..], [Outcome::Completed(_)]));
}

#[test]
fn duplicate_stale_and_foreign_results_change_nothing() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::EnqueuedForOrchestration, 2),
        ],
    );
    let current = pointer(&graph, "b", 2);
    let stale = pointer(&graph, "b", 1);
    let finished = pointer(&graph, "a", 1);
    let foreign = StepAttempt {
        task_uuid: TaskUuid::new(),
        ..current
    };
    let inputs = [current, current, stale, finished, foreign].map(Input::Result);
    let ev = run(graph, &t, &inputs);
    assert_eq!(waves(&ev), [wave(&[("b", "complete"), ("c", "enqueue")])]);
    let ignored = ev
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Ignored { .. }))
        .count();
    assert_eq!(
        ignored, 4,
        "the duplicate, the stale attempt, the finished step, the other task"
    );
}

#[test]
fn the_last_success_completes_the_task() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::Complete, 1),
            ("c", StepState::EnqueuedForOrchestration, 1),
        ],
    );
    let input = Input::Result(pointer(&graph, "c", 1));
    let ev = run(graph, &t, &[input]);
    assert_eq!(ev.path, [TaskEvent::EvaluateResults, TaskEvent::Complete]);
    assert!(ev.sends.is_empty());
}

fn failed(graph: &mut TaskGraph, name: &str, failure: Option<StepFailure>) {
    let uuid = uuid_of(graph, name);
    if let Some(s) = graph.step_mut(uuid) {
        s.last_error = failure;
    }
}

/// The linear task with `b`'s attempt `attempt` failed with `failure`,
/// evaluated at `now`.
fn linear_after_failure(
    failure: Option<StepFailure>,
    attempt: u32,
    now: DateTime<Utc>,
) -> Evaluation {
    let t = template(LINEAR);
    let mut graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::EnqueuedAsErrorForOrchestration, attempt),
        ],
    );
    failed(&mut graph, "b", failure);
    let input = Input::Result(pointer(&graph, "b", attempt));
    run_at(graph, &t, &[input], now)
}

/// Why the only outcome gave up, and whether its failure was unreadable.
fn gave_up(ev: &Evaluation) -> Option<(GiveUpReason, bool)> {
    match &ev.outcomes[..] {
        [
            Outcome::Failed {
                reason, unreadable, ..
            },
        ] => Some((*reason, unreadable.is_some())),
        _ => None,
    }
}

#[test]
fn a_retryable_failure_with_attempts_left_waits_for_its_backoff_and_a_reminder() {
    let now = Utc::now();
    let failure = StepFailure::retryable("handler_error", "boom");
    let ev = linear_after_failure(Some(failure), 1, now);
    let due = now + TimeDelta::seconds(1);
    assert_eq!(waves(&ev), [wave(&[("b", "schedule_retry")])]);
    assert_eq!(ev.waves[0][0].effect, Effect::RetryAt(due));
    assert_eq!(ev.reminders.len(), 1);
    assert_eq!(ev.reminders[0].1, due, "exponential from 1 s, no jitter");
    assert_eq!(ev.path, [TaskEvent::EvaluateResults, TaskEvent::AwaitRetry]);
}

#[test]
fn a_retry_due_at_once_is_enqueued_in_the_next_wave() {
    let failure = StepFailure {
        retry_after_ms: Some(0),
        ..StepFailure::retryable("handler_error", "try again now")
    };
    let ev = linear_after_failure(Some(failure), 1, Utc::now());
    assert_eq!(
        waves(&ev),
        [wave(&[("b", "schedule_retry")]), wave(&[("b", "enqueue")])],
        "the enqueue is fenced by the state the retry leaves"
    );
    assert_eq!(ev.waves[1][0].from, StepState::WaitingForRetry);
    assert_eq!(sent(&ev), ["b"]);
}

#[test]
fn a_permanent_failure_fails_the_step_and_the_task() {
    let failure = StepFailure::permanent("handler_error", "no");
    let ev = linear_after_failure(Some(failure), 1, Utc::now());
    assert_eq!(waves(&ev), [wave(&[("b", "fail")])]);
    assert_eq!(gave_up(&ev), Some((GiveUpReason::PermanentError, false)));
    assert_eq!(ev.path, [TaskEvent::EvaluateResults, TaskEvent::Fail]);
}

#[test]
fn exhausted_attempts_give_up_even_when_the_error_is_retryable() {
    let failure = StepFailure::retryable("timeout", "slow");
    let ev = linear_after_failure(Some(failure), 3, Utc::now());
    assert_eq!(gave_up(&ev), Some((GiveUpReason::AttemptsExhausted, false)));
}

#[test]
fn a_failure_without_a_readable_envelope_is_permanent_and_said_so() {
    let ev = linear_after_failure(None, 1, Utc::now());
    assert_eq!(waves(&ev), [wave(&[("b", "fail")])]);
    assert_eq!(gave_up(&ev), Some((GiveUpReason::PermanentError, true)));
}

fn approval_at_decision(control: Option<FlowControl>) -> (TaskTemplate, TaskGraph) {
    let t = template(APPROVAL);
    let mut graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("validate_request", StepState::Complete, 1),
            ("routing_decision", StepState::EnqueuedForOrchestration, 1),
        ],
    );
    let uuid = uuid_of(&graph, "routing_decision");
    if let Some(s) = graph.step_mut(uuid) {
        s.control = control.map_or(Control::None, Control::Given);
    }
    (t, graph)
}

#[test]
fn a_decision_creates_its_branch_and_convergence_born_enqueued_where_ready() {
    let chosen = FlowControl::Decision(DecisionOutcome::CreateSteps {
        steps: vec!["manager_approval".into()],
    });
    let (t, graph) = approval_at_decision(Some(chosen));
    let input = Input::Result(pointer(&graph, "routing_decision", 1));
    let ev = run(graph, &t, &[input]);
    assert_eq!(
        waves(&ev),
        [wave(&[("routing_decision", "complete")])],
        "the new branch is born enqueued, not updated"
    );
    assert_eq!(sent(&ev), ["manager_approval"]);
    assert_eq!(state_of(&ev, "manager_approval"), StepState::Enqueued);
    assert_eq!(state_of(&ev, "finalize_approval"), StepState::Pending);
    let (born, steps, edges) = ev.graph.to_insert();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["manager_approval", "finalize_approval"]);
    assert_eq!(born, [true, false]);
    assert_eq!(edges.len(), 2, "decision → branch → convergence");
}

#[test]
fn a_decision_without_an_outcome_is_refused_and_fails_for_good() {
    let (t, graph) = approval_at_decision(None);
    let input = Input::Result(pointer(&graph, "routing_decision", 1));
    let ev = run(graph, &t, &[input]);
    assert_eq!(waves(&ev), [wave(&[("routing_decision", "fail")])]);
    assert!(matches!(&ev.waves[0][0].effect, Effect::Error(f) if f.error_type == "invalid_result"));
    assert!(matches!(&ev.outcomes[..], [Outcome::Refused { .. }]));
    assert_eq!(ev.path, [TaskEvent::EvaluateResults, TaskEvent::Fail]);
    assert!(ev.graph.unwritten.steps.is_empty());
}

#[test]
fn an_outcome_that_does_not_parse_is_refused() {
    let (t, mut graph) = approval_at_decision(None);
    let uuid = uuid_of(&graph, "routing_decision");
    if let Some(s) = graph.step_mut(uuid) {
        s.control = Control::Unreadable("expected `outcome`".into());
    }
    let input = Input::Result(pointer(&graph, "routing_decision", 1));
    let ev = run(graph, &t, &[input]);
    assert!(
        matches!(&ev.outcomes[..], [Outcome::Refused { message, .. }] if message.contains("does not parse"))
    );
}

/// The CSV template's task with `analyze_csv`'s result asking for
/// `batches` batches, and that result's pointer.
fn csv_awaiting_batches(batches: usize) -> (TaskTemplate, TaskGraph, Input) {
    let t = template(CSV);
    let mut graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[("analyze_csv", StepState::EnqueuedForOrchestration, 1)],
    );
    let uuid = uuid_of(&graph, "analyze_csv");
    let cursors = (0..batches)
        .map(|i| CursorConfig {
            batch_id: format!("{i:03}"),
            start_cursor: json!(i * 10),
            end_cursor: json!((i + 1) * 10),
            batch_size: 10,
        })
        .collect();
    if let Some(s) = graph.step_mut(uuid) {
        s.control = Control::Given(FlowControl::Batches(BatchOutcome::CreateBatches {
            worker_count: u32::try_from(batches).unwrap_or(0),
            cursor_configs: cursors,
        }));
    }
    let input = Input::Result(pointer(&graph, "analyze_csv", 1));
    (t, graph, input)
}

/// The CSV task after its batches were created and written, its workers
/// in `states`.
fn csv_with_workers(states: &[StepState]) -> (TaskTemplate, TaskGraph) {
    let (t, graph, input) = csv_awaiting_batches(states.len());
    let mut graph = run(graph, &t, &[input]).graph;
    graph.unwritten = NewGraph::default();
    let workers: Vec<StepUuid> = graph
        .steps
        .iter()
        .filter(|s| s.step_type == StepType::BatchWorker)
        .map(|s| s.uuid)
        .collect();
    for (uuid, state) in workers.iter().zip(states) {
        if let Some(s) = graph.step_mut(*uuid) {
            s.state = *state;
            s.attempts = u32::from(*state != StepState::Pending);
        }
    }
    (t, graph)
}

#[test]
fn a_batch_outcome_clones_workers_and_starts_at_most_its_parallelism() {
    let (t, graph, input) = csv_awaiting_batches(6);
    let ev = run(graph, &t, &[input]);
    assert_eq!(sent(&ev).len(), 4, "parallelism 4 of 6 batches");
    let (born, steps, _) = ev.graph.to_insert();
    assert_eq!(steps.len(), 7, "six workers and the convergence");
    assert_eq!(born.iter().filter(|b| **b).count(), 4);
    assert!(matches!(
        ev.outcomes[0],
        Outcome::Expanded { created: 7, .. }
    ));
}

#[test]
fn a_fail_fast_worker_given_up_on_cancels_its_unstarted_siblings() {
    use StepState::*;
    let (t, mut graph) = csv_with_workers(&[
        EnqueuedAsErrorForOrchestration,
        InProgress,
        Enqueued,
        Pending,
    ]);
    let first = graph
        .steps
        .iter()
        .find(|s| s.step_type == StepType::BatchWorker)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    failed(
        &mut graph,
        &first,
        Some(StepFailure::permanent("handler_error", "bad row")),
    );
    let input = Input::Result(pointer(&graph, &first, 1));
    let ev = run(graph, &t, &[input]);
    let events: Vec<&str> = ev.waves[0].iter().map(|c| c.event.as_str()).collect();
    assert_eq!(
        events,
        ["fail", "cancel", "cancel"],
        "the running sibling finishes"
    );
    assert_eq!(
        ev.waves[0][1].metadata,
        Some(json!({ "reason": "fail_fast", "failed_batch": first }))
    );
    assert!(ev.sends.is_empty());
    assert_eq!(
        ev.path,
        [TaskEvent::EvaluateResults, TaskEvent::Block],
        "blocked while a sibling still runs"
    );
}

#[test]
fn an_early_retry_reminder_is_sent_again_and_a_due_one_enqueues() {
    let t = template(LINEAR);
    let mut graph = stored(
        &t,
        TaskState::WaitingForRetry,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::WaitingForRetry, 1),
        ],
    );
    let now = Utc::now();
    let due = now + TimeDelta::seconds(5);
    let uuid = uuid_of(&graph, "b");
    if let Some(s) = graph.step_mut(uuid) {
        s.next_retry_at = Some(due);
    }
    let input = Input::RetryDue(pointer(&graph, "b", 1));
    let early = run_at(graph.clone(), &t, std::slice::from_ref(&input), now);
    assert!(early.waves.is_empty());
    assert_eq!(early.reminders.len(), 1);
    assert_eq!(early.reminders[0].1, due);

    let on_time = run_at(graph, &t, &[input], due);
    assert_eq!(waves(&on_time), [wave(&[("b", "enqueue")])]);
    assert!(on_time.reminders.is_empty());
    assert_eq!(
        on_time.path,
        [
            TaskEvent::EvaluateResults,
            TaskEvent::EnqueueReadySteps,
            TaskEvent::AwaitSteps
        ]
    );
}

fn repair(graph: &TaskGraph, name: &str, action: StepActionKind) -> Input {
    Input::Repair(Repair {
        step: uuid_of(graph, name),
        action,
        inputs: None,
        result: (action == StepActionKind::CompleteManually).then(|| json!({ "ok": true })),
        actor: "ops@example.com".into(),
        reason: "ticket 42".into(),
    })
}

#[test]
fn a_reset_reopens_the_failed_task_grants_attempts_and_re_enqueues() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::Error,
        &[("a", StepState::Complete, 1), ("b", StepState::Error, 3)],
    );
    let input = repair(&graph, "b", StepActionKind::ResetForRetry);
    let ev = run(graph, &t, &[input]);
    assert_eq!(
        waves(&ev),
        [wave(&[("b", "reset_for_retry")]), wave(&[("b", "enqueue")])]
    );
    assert!(matches!(
        ev.waves[0][0].effect,
        Effect::Reset {
            extra_attempts: 3,
            ..
        }
    ));
    assert_eq!(ev.path[0], TaskEvent::Reopen);
    assert_eq!(ev.audit.len(), 1);
    assert_eq!(
        ev.audit[0].reason.as_deref(),
        Some("reset_for_retry: ticket 42")
    );
    let b = ev
        .graph
        .step(uuid_of(&ev.graph, "b"))
        .map(|s| s.retry.max_attempts);
    assert_eq!(b, Some(6));
}

#[test]
fn repairs_that_do_not_fit_the_step_are_refused_with_nothing_decided() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::InProgress, 1),
        ],
    );
    let attempt = |input: Input| {
        evaluate(
            graph.clone(),
            &t,
            &[input],
            Utc::now(),
            &rules(),
            &mut FixedJitter(1.0),
        )
    };
    assert!(matches!(
        attempt(repair(&graph, "b", StepActionKind::ResetForRetry)),
        Err(OrchestrationError::StepActionRefused { .. })
    ));
    assert!(matches!(
        attempt(repair(&graph, "a", StepActionKind::ResolveManually)),
        Err(OrchestrationError::StepActionRefused { .. })
    ));
    let unknown = Input::Repair(Repair {
        step: StepUuid::new(),
        action: StepActionKind::ResolveManually,
        inputs: None,
        result: None,
        actor: "ops".into(),
        reason: "why".into(),
    });
    assert!(matches!(
        attempt(unknown),
        Err(OrchestrationError::StepNotFound { .. })
    ));
}

#[test]
fn a_decision_completed_by_hand_creates_nothing_and_its_convergence_runs() {
    let t = template(APPROVAL);
    let graph = stored(
        &t,
        TaskState::BlockedByFailures,
        &[
            ("validate_request", StepState::Complete, 1),
            ("routing_decision", StepState::Error, 1),
        ],
    );
    let input = repair(&graph, "routing_decision", StepActionKind::CompleteManually);
    let ev = run(graph, &t, &[input]);
    assert_eq!(
        waves(&ev),
        [wave(&[("routing_decision", "complete_manually")])]
    );
    assert_eq!(sent(&ev), ["finalize_approval"], "born enqueued");
    assert_eq!(ev.graph.unwritten.steps.len(), 1);
}

#[test]
fn a_policy_without_retries_gives_up_on_the_first_failure() {
    let t = template(APPROVAL);
    let mut graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[(
            "validate_request",
            StepState::EnqueuedAsErrorForOrchestration,
            1,
        )],
    );
    failed(
        &mut graph,
        "validate_request",
        Some(StepFailure::retryable("handler_error", "flaky")),
    );
    let uuid = uuid_of(&graph, "validate_request");
    let policy = graph
        .step(uuid)
        .map(|s| (s.retry.retryable, s.retry.max_attempts));
    assert_eq!(
        policy,
        Some((false, 1)),
        "the template's `retryable: false`"
    );
    let input = Input::Result(pointer(&graph, "validate_request", 1));
    let ev = run(graph, &t, &[input]);
    assert_eq!(gave_up(&ev), Some((GiveUpReason::NotRetryable, false)));
}

#[test]
fn a_cancel_cancels_every_open_step_and_then_the_task() {
    let t = template(LINEAR);
    let graph = stored(
        &t,
        TaskState::StepsInProcess,
        &[
            ("a", StepState::Complete, 1),
            ("b", StepState::InProgress, 1),
        ],
    );
    let ev = run(graph, &t, &[Input::Cancel]);
    assert_eq!(
        waves(&ev),
        [wave(&[("b", "cancel"), ("c", "cancel")])],
        "the finished step stays"
    );
    assert_eq!(ev.waves[0][0].from, StepState::InProgress);
    assert_eq!(ev.path, [TaskEvent::Cancel]);
    assert!(ev.sends.is_empty());
}

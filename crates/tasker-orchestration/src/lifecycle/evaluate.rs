//! Decide, then write: every engine rule applied to one task's graph in
//! memory. [`evaluate`] takes the graph as loaded, the template, what
//! arrived (results, retry reminders, an operator's repair, a cancel) and the
//! instant, and returns an [`Evaluation`] — the step changes, new steps,
//! pointers and task path that follow — without I/O. It applies results,
//! decides retries and give-ups, cancels fail-fast siblings, expands
//! decisions and batches, and plans enqueues and the task's path
//! ([`super::plan`]). [`super::write`] turns the evaluation into set-based
//! statements.
//!
//! Changes are grouped in waves: a wave changes each step at most once, and
//! a step changed twice (a retry due at once, then its enqueue) has its
//! second change in the next wave, fenced by the state the first leaves.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tasker_db::result_audit::{AuditEntry, AuditOutcome};
use tasker_db::task::NewGraph;
use tasker_db::workflow_step::NewStep;
use tasker_db::workflow_step_change::StepChange;
use tasker_db::workflow_step_edge::Edge;
use tasker_types::api::StepActionKind;
use tasker_types::backoff::{GiveUpReason, Jitter, RetryDecision};
use tasker_types::expansion::{self, ExistingStep, ExpansionLimits, outcome_for_manual_completion};
use tasker_types::ids::StepUuid;
use tasker_types::messages::{QueueName, StepAttempt};
use tasker_types::outcome::{FlowControl, StepFailure, error_types};
use tasker_types::state::{StepState, TaskEvent, TaskState};
use tasker_types::template::{FailureStrategy, StepType, TaskTemplate};

use super::graph::{Control, TaskGraph, batch_config_of};
use super::plan::{Group, OnError, StepView, plan};
use crate::error::OrchestrationError;

/// What arrived for a task.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Input {
    /// A worker stored this attempt's outcome (success or failure: the
    /// step's state says which).
    Result(StepAttempt),
    /// This attempt's retry backoff should have elapsed.
    RetryDue(StepAttempt),
    /// An operator's repair of a step.
    Repair(Repair),
    /// Cancel the task (SPEC §4.11): every step not finished, then the
    /// task. Comes alone.
    Cancel,
}

/// An operator's repair (already checked for the fields its action takes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Repair {
    /// The step.
    pub(crate) step: StepUuid,
    /// What to do.
    pub(crate) action: StepActionKind,
    /// Replacement inputs (`reset_for_retry`).
    pub(crate) inputs: Option<Value>,
    /// The result dependents receive (`complete_manually`).
    pub(crate) result: Option<Value>,
    /// Who acts (as authenticated).
    pub(crate) actor: String,
    /// Why.
    pub(crate) reason: String,
}

/// The configured limits the rules apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rules {
    /// What one outcome may create.
    pub(crate) expansion: ExpansionLimits,
    /// The ± fraction applied to retry delays.
    pub(crate) jitter_spread: f64,
}

/// What became of one input, or of one step along the way — for the
/// report, metrics and logs once the evaluation is written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// A result was accepted and its step completed.
    Completed(StepUuid),
    /// A decision or batchable outcome created steps.
    Expanded {
        /// The step whose outcome it was.
        step: StepUuid,
        /// Its name.
        name: String,
        /// Steps created.
        created: usize,
        /// Edges created.
        edges: usize,
    },
    /// A success whose outcome cannot be applied failed its step.
    Refused {
        /// The step.
        step: StepUuid,
        /// Why.
        message: String,
    },
    /// A failed attempt will be retried.
    RetryScheduled {
        /// The step.
        step: StepUuid,
        /// The attempt that failed.
        attempt: u32,
        /// After how long.
        delay: Duration,
    },
    /// A failed step was given up on.
    Failed {
        /// The step.
        step: StepUuid,
        /// Why.
        reason: GiveUpReason,
        /// The failure could not be read (so it was not retried).
        unreadable: Option<String>,
    },
    /// A retry reminder was accepted (and re-sent if it came early).
    Reminded(StepUuid),
    /// A duplicate, stale or early message changed nothing.
    Ignored {
        /// The attempt it named.
        pointer: StepAttempt,
        /// The step's state, if the step exists.
        state: Option<StepState>,
    },
    /// An operator's repair.
    Repaired {
        /// The step.
        step: StepUuid,
        /// What was done.
        action: StepActionKind,
    },
    /// The task was cancelled, with this many open steps.
    Cancelled {
        /// Steps cancelled.
        steps: usize,
    },
}

/// Everything that follows from one task's inputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Evaluation {
    /// The graph as it will be once written (its `unwritten` part to
    /// insert; its task state is still the stored one).
    pub(crate) graph: TaskGraph,
    /// The task's events from its stored state, in order (empty: it stays).
    pub(crate) path: Vec<TaskEvent>,
    /// Step changes, wave by wave.
    pub(crate) waves: Vec<Vec<StepChange>>,
    /// Steps to send to workers, with their queue.
    pub(crate) sends: Vec<(QueueName, StepUuid)>,
    /// Retry reminders to send, due at the instant given.
    pub(crate) reminders: Vec<(StepAttempt, DateTime<Utc>)>,
    /// Audit records to add (operator repairs).
    pub(crate) audit: Vec<AuditEntry>,
    /// What became of the inputs.
    pub(crate) outcomes: Vec<Outcome>,
}

/// Applies `inputs` to `graph` under `template`'s rules at `now`: results
/// first (successes, then failures), then the repair's expansion, then the
/// plan. A stale or duplicate input is an [`Outcome::Ignored`], never an
/// error.
///
/// # Errors
/// A repair that cannot be applied ([`OrchestrationError::StepNotFound`],
/// [`OrchestrationError::StepActionRefused`]); a template that does not
/// match the graph ([`OrchestrationError::Corrupt`]).
pub(crate) fn evaluate(
    graph: TaskGraph,
    template: &TaskTemplate,
    inputs: &[Input],
    now: DateTime<Utc>,
    rules: &Rules,
    jitter: &mut impl Jitter,
) -> Result<Evaluation, OrchestrationError> {
    let mut e = Evaluator {
        template,
        rules,
        now,
        changed: HashMap::new(),
        ev: Evaluation {
            graph,
            path: Vec::new(),
            waves: Vec::new(),
            sends: Vec::new(),
            reminders: Vec::new(),
            audit: Vec::new(),
            outcomes: Vec::new(),
        },
    };
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    let mut seen = HashSet::new();
    let mut reopen = false;
    for input in inputs {
        match input {
            Input::Result(pointer) | Input::RetryDue(pointer) => {
                e.triage(input, pointer, &mut seen, &mut successes, &mut failures)
            }
            Input::Repair(repair) => {
                e.repair(repair)?;
                reopen = e.ev.graph.task.state == TaskState::Error;
            }
            Input::Cancel => {
                e.cancel();
                return Ok(e.ev);
            }
        }
    }
    for step in successes {
        e.succeed(step)?;
    }
    for step in failures {
        e.fail(step, jitter);
    }
    e.plan(reopen)?;
    Ok(e.ev)
}

struct Evaluator<'a> {
    template: &'a TaskTemplate,
    rules: &'a Rules,
    now: DateTime<Utc>,
    /// How many changes each step has had in this evaluation (its next
    /// change's wave).
    changed: HashMap<StepUuid, usize>,
    ev: Evaluation,
}

impl Evaluator<'_> {
    /// Sorts a result or reminder: a current success or failure is decided
    /// later, a current reminder re-sent if early, anything else ignored.
    fn triage(
        &mut self,
        input: &Input,
        pointer: &StepAttempt,
        seen: &mut HashSet<StepUuid>,
        successes: &mut Vec<StepUuid>,
        failures: &mut Vec<StepUuid>,
    ) {
        let graph = &self.ev.graph;
        let step = graph
            .step(pointer.step_uuid)
            .filter(|_| pointer.task_uuid == graph.task.task_uuid);
        let Some(step) = step else {
            self.ev.outcomes.push(Outcome::Ignored {
                pointer: *pointer,
                state: None,
            });
            return;
        };
        let current = step.attempts == pointer.attempt && !seen.contains(&step.uuid);
        match (input, step.state) {
            (Input::Result(_), StepState::EnqueuedForOrchestration) if current => {
                seen.insert(step.uuid);
                successes.push(step.uuid);
            }
            (Input::Result(_), StepState::EnqueuedAsErrorForOrchestration) if current => {
                seen.insert(step.uuid);
                failures.push(step.uuid);
            }
            (Input::RetryDue(_), StepState::WaitingForRetry) if current => {
                seen.insert(step.uuid);
                // The plan enqueues the step if it is due; if this came
                // early, another reminder covers the remaining time.
                if let Some(due) = step.next_retry_at.filter(|due| *due > self.now) {
                    self.ev.reminders.push((*pointer, due));
                }
                self.ev.outcomes.push(Outcome::Reminded(step.uuid));
            }
            _ => self.ev.outcomes.push(Outcome::Ignored {
                pointer: *pointer,
                state: Some(step.state),
            }),
        }
    }

    /// Records `change` in its step's next wave; the step's state in the
    /// graph becomes `to`.
    fn change(&mut self, change: StepChange, to: StepState) {
        let step = change.step;
        let wave = self.changed.entry(step).or_default();
        if self.ev.waves.len() <= *wave {
            self.ev.waves.push(Vec::new());
        }
        self.ev.waves[*wave].push(change);
        *wave += 1;
        if let Some(s) = self.ev.graph.step_mut(step) {
            s.state = to;
        }
    }

    /// A current success: expand its outcome (or refuse it), then complete.
    fn succeed(&mut self, step: StepUuid) -> Result<(), OrchestrationError> {
        let Some(s) = self.ev.graph.step(step) else {
            return Ok(());
        };
        let dynamic = matches!(s.step_type, StepType::Decision | StepType::Batchable);
        let control: Option<FlowControl> = match &s.control {
            Control::None => None,
            Control::Given(control) => Some(control.clone()),
            Control::Unreadable(err) => {
                let message = format!("the step's outcome does not parse: {err}");
                self.refuse(step, message);
                return Ok(());
            }
        };
        if (dynamic || control.is_some())
            && let Err(message) = self.expand(step, control.as_ref())?
        {
            self.refuse(step, message);
            return Ok(());
        }
        self.change(StepChange::complete(step), StepState::Complete);
        self.ev.outcomes.push(Outcome::Completed(step));
        Ok(())
    }

    /// Fails a step whose success cannot be applied, saying why.
    fn refuse(&mut self, step: StepUuid, message: String) {
        self.change(StepChange::refuse_result(step, &message), StepState::Error);
        if let Some(s) = self.ev.graph.step_mut(step) {
            s.last_error = Some(StepFailure::invalid_result(&message));
        }
        self.ev.outcomes.push(Outcome::Refused { step, message });
    }

    /// Adds what `trigger`'s outcome `control` creates to the graph.
    /// The inner error is why the outcome cannot be applied (nothing added).
    fn expand(
        &mut self,
        trigger: StepUuid,
        control: Option<&FlowControl>,
    ) -> Result<Result<(), String>, OrchestrationError> {
        let graph = &self.ev.graph;
        let Some(name) = graph.step(trigger).map(|s| s.name.clone()) else {
            return Ok(Ok(()));
        };
        let existing: Vec<ExistingStep<'_>> = graph
            .steps
            .iter()
            .map(|s| ExistingStep {
                name: &s.name,
                template_step: &s.template_step,
                state: s.state,
            })
            .collect();
        let planned = match expansion::expand(
            self.template,
            &existing,
            &name,
            control,
            &self.rules.expansion,
        ) {
            Ok(planned) => planned,
            Err(err) => return Ok(Err(err.to_string())),
        };
        if planned.is_empty() {
            return Ok(Ok(()));
        }
        let mut by_name: HashMap<&str, StepUuid> = graph
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.uuid))
            .collect();
        let mut steps = Vec::with_capacity(planned.steps.len());
        for p in &planned.steps {
            let definition = self.template.step(&p.template_step).ok_or_else(|| {
                OrchestrationError::Corrupt(format!("no template step {}", p.template_step))
            })?;
            steps.push(NewStep {
                name: p.name.clone(),
                inputs: p.inputs.clone(),
                ..NewStep::from_definition(definition)
            });
        }
        for step in &steps {
            by_name.insert(&step.name, step.uuid);
        }
        let mut edges = Vec::with_capacity(planned.edges.len());
        for edge in &planned.edges {
            let (Some(&from), Some(&to)) = (
                by_name.get(edge.from.as_str()),
                by_name.get(edge.to.as_str()),
            ) else {
                return Err(OrchestrationError::Corrupt(format!(
                    "expansion edge {} -> {} names no step",
                    edge.from, edge.to
                )));
            };
            edges.push(Edge { from, to });
        }
        self.ev.outcomes.push(Outcome::Expanded {
            step: trigger,
            name,
            created: steps.len(),
            edges: edges.len(),
        });
        self.ev.graph.add(NewGraph { steps, edges });
        Ok(Ok(()))
    }

    /// A current failure: retry it or give up, per its own policy; a batch
    /// worker given up on under `fail_fast` cancels its unstarted siblings.
    fn fail(&mut self, step: StepUuid, jitter: &mut impl Jitter) {
        let Some(s) = self.ev.graph.step(step) else {
            return;
        };
        // A failure recorded without an envelope is as unreadable as a
        // broken one: permanent, and said so.
        let failure = s
            .last_error
            .clone()
            .unwrap_or_else(|| StepFailure::from_stored(&Value::Null));
        let unreadable = (failure.error_type == error_types::UNREADABLE_FAILURE)
            .then(|| failure.message.clone());
        let hint = failure.retry_after_ms.map(Duration::from_millis);
        let (attempt, task) = (s.attempts, self.ev.graph.task);
        let decision = s.retry.decide(
            attempt,
            failure.retryable,
            hint,
            self.rules.jitter_spread,
            jitter,
        );
        match decision {
            RetryDecision::RetryAfter(delay) => {
                let due = self.now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX);
                self.change(
                    StepChange::schedule_retry(step, due),
                    StepState::WaitingForRetry,
                );
                if let Some(s) = self.ev.graph.step_mut(step) {
                    s.next_retry_at = Some(due);
                }
                let pointer = StepAttempt {
                    task_uuid: task.task_uuid,
                    step_uuid: step,
                    attempt,
                    correlation_id: task.correlation_id,
                    traceparent: task.traceparent,
                };
                self.ev.reminders.push((pointer, due));
                self.ev.outcomes.push(Outcome::RetryScheduled {
                    step,
                    attempt,
                    delay,
                });
            }
            RetryDecision::GiveUp(reason) => {
                self.change(StepChange::fail(step), StepState::Error);
                self.ev.outcomes.push(Outcome::Failed {
                    step,
                    reason,
                    unreadable,
                });
                self.cancel_unstarted_siblings(step);
            }
        }
    }

    /// `fail_fast` (SPEC §4.7): a batch worker that failed for good cancels
    /// its siblings that have not started; those already running finish.
    fn cancel_unstarted_siblings(&mut self, failed: StepUuid) {
        let graph = &self.ev.graph;
        let Some(node) = graph.step(failed) else {
            return;
        };
        let fail_fast = batch_config_of(self.template, node)
            .is_some_and(|c| c.failure_strategy == FailureStrategy::FailFast);
        if !fail_fast {
            return;
        }
        let metadata = json!({ "reason": "fail_fast", "failed_batch": node.name });
        let cancels: Vec<StepChange> = graph
            .steps
            .iter()
            .filter(|s| {
                s.template_step == node.template_step
                    && s.uuid != failed
                    && matches!(
                        s.state,
                        StepState::Pending | StepState::Enqueued | StepState::WaitingForRetry
                    )
            })
            .map(|s| StepChange::cancel(s.uuid, s.state).with_metadata(metadata.clone()))
            .collect();
        for cancel in cancels {
            self.change(cancel, StepState::Cancelled);
        }
    }

    /// Cancels every step not finished, then the task; a running
    /// attempt's later result is rejected by the fence.
    fn cancel(&mut self) {
        let open: Vec<StepChange> = self
            .ev
            .graph
            .steps
            .iter()
            .filter(|s| !s.state.is_terminal())
            .map(|s| StepChange::cancel(s.uuid, s.state))
            .collect();
        let steps = open.len();
        for change in open {
            self.change(change, StepState::Cancelled);
        }
        self.ev.path.push(TaskEvent::Cancel);
        self.ev.outcomes.push(Outcome::Cancelled { steps });
    }

    /// An operator's repair: the step's change, its audit record, and for a
    /// decision or batch finished by hand, the (empty) outcome that lets
    /// what converges after it run.
    fn repair(&mut self, repair: &Repair) -> Result<(), OrchestrationError> {
        let task = self.ev.graph.task;
        let Some(s) = self.ev.graph.step(repair.step).cloned() else {
            return Err(OrchestrationError::StepNotFound {
                task: task.task_uuid,
                step: repair.step,
            });
        };
        let (step, action) = (repair.step, repair.action);
        let refused = |message: &str| OrchestrationError::StepActionRefused {
            step,
            action: action.as_str(),
            state: s.state,
            message: message.to_owned(),
        };
        let finished = s.state.is_terminal() && s.state != StepState::Error;
        match action {
            StepActionKind::ResetForRetry => {
                if s.state != StepState::Error {
                    return Err(refused("only a failed step (state `error`) can be reset"));
                }
                // A reset step gets its template's attempt budget again.
                let budget = self
                    .template
                    .step(&s.template_step)
                    .map_or(s.retry.max_attempts, |d| d.retry.max_attempts)
                    .max(1);
                let change = StepChange::reset_for_retry(step, repair.inputs.clone(), budget);
                self.change(change, StepState::Pending);
                if let Some(g) = self.ev.graph.step_mut(step) {
                    g.retry.max_attempts = g.attempts + budget;
                    g.next_retry_at = None;
                }
            }
            StepActionKind::ResolveManually | StepActionKind::CompleteManually if finished => {
                return Err(refused("the step has already finished"));
            }
            StepActionKind::ResolveManually => {
                let change = StepChange::resolve_manually(step, s.state);
                self.change(change, StepState::ResolvedManually);
            }
            StepActionKind::CompleteManually => {
                let result = repair.result.clone().unwrap_or_default();
                let change = StepChange::complete_manually(step, s.state, result);
                self.change(change, StepState::Complete);
            }
        }
        self.ev.audit.push(AuditEntry {
            step_uuid: step,
            task_uuid: task.task_uuid,
            attempt: s.attempts,
            outcome: AuditOutcome::Manual,
            accepted: true,
            result: repair.result.clone(),
            error: None,
            worker_id: None,
            actor: Some(repair.actor.clone()),
            reason: Some(format!("{}: {}", action.as_str(), repair.reason)),
            started_at: None,
            finished_at: self.now,
        });
        // A decision or batch finished by hand creates nothing, but what
        // converges after it still runs.
        if action != StepActionKind::ResetForRetry
            && let Some(control) = outcome_for_manual_completion(s.step_type)
            && let Err(message) = self.expand(step, Some(&control))?
        {
            return Err(refused(&message));
        }
        self.ev.outcomes.push(Outcome::Repaired { step, action });
        Ok(())
    }

    /// Plans the task (reopened first when a repair touched a failed task),
    /// enqueues what is ready and records the path.
    fn plan(&mut self, reopen: bool) -> Result<(), OrchestrationError> {
        let mut state = self.ev.graph.task.state;
        if reopen {
            state = state
                .next(TaskEvent::Reopen)
                .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
            self.ev.path.push(TaskEvent::Reopen);
        }
        let views = views(self.template, &self.ev.graph);
        let planned = plan(state, &views, self.now);
        for &i in &planned.ready {
            let s = &self.ev.graph.steps[i];
            let (uuid, from) = (s.uuid, s.state);
            let queue = self
                .template
                .step_queue(&s.template_step)
                .map_err(|e| OrchestrationError::Corrupt(e.to_string()))?;
            if self.ev.graph.is_unwritten(uuid) {
                // Born enqueued: one insert, no update.
                if let Some(g) = self.ev.graph.step_mut(uuid) {
                    g.state = StepState::Enqueued;
                }
            } else {
                self.change(StepChange::enqueue(uuid, from), StepState::Enqueued);
            }
            self.ev.sends.push((queue, uuid));
        }
        self.ev.path.extend(planned.events);
        Ok(())
    }
}

/// The planner's view of the graph: parents as indexes, and for batch
/// workers their batch's parallelism and failure strategy.
fn views(template: &TaskTemplate, graph: &TaskGraph) -> Vec<StepView> {
    let index: HashMap<StepUuid, usize> = graph
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.uuid, i))
        .collect();
    graph
        .steps
        .iter()
        .map(|s| {
            let parents: Vec<usize> = s
                .parents
                .iter()
                .filter_map(|p| index.get(p).copied())
                .collect();
            let (on_error, group) = match batch_config_of(template, s) {
                Some(config) => (
                    on_error(config.failure_strategy),
                    parents.first().map(|&batchable| Group {
                        id: batchable,
                        limit: config.parallelism,
                    }),
                ),
                None => (OnError::Stop, None),
            };
            StepView {
                next_retry_at: s.next_retry_at,
                parents,
                on_error,
                group,
                ..StepView::new(s.state, s.attempts, s.retry)
            }
        })
        .collect()
}

fn on_error(strategy: FailureStrategy) -> OnError {
    match strategy {
        FailureStrategy::FailFast => OnError::Stop,
        FailureStrategy::ContinueOnFailure => OnError::Tolerate,
        FailureStrategy::Isolate => OnError::Isolate,
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;

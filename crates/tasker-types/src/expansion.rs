//! Dynamic workflows (SPEC §4.6–§4.7): which steps a decision or batchable
//! step's outcome creates, and how they are wired. Pure: orchestration
//! applies the [`Expansion`] in the transaction that completes the step.
//!
//! The rules, in the order they apply:
//!
//! 1. **Seeds.** A decision's `create_steps` names steps downstream of it
//!    (never a batch worker: those belong to their batchable step); a
//!    batchable's `create_batches` clones its worker template once per
//!    cursor, as `<worker>_<batch_id>` with the cursor in its inputs.
//! 2. **What hangs below.** In template order, a step not yet in the task is
//!    created when one of its parents was just created (and none of its
//!    parents is a decision: a decision's children wait for its choice) and
//!    its own dependencies allow it: a `deferred_convergence` step needs one parent;
//!    any other step needs all of them. A step whose missing parent may still
//!    be created later (by a decision or batch that has not run yet) waits
//!    for it; one whose missing parent can never appear is an error naming
//!    both, because that step could never run.
//! 3. **Convergence without branches.** A `deferred_convergence` step fed by
//!    the branches this outcome chose between, none of which exists or can
//!    still appear (`no_branches`, `no_batches`, or branches not chosen), is
//!    created with the outcome's step as its only parent, so it still runs.
//! 4. **Edges.** Every new step gets an edge from each instance of each of
//!    its dependencies. A convergence step also gets an edge from every
//!    unfinished instance of an ancestor of a dependency that does not exist
//!    yet, so it cannot run before that ancestor has decided; and existing
//!    convergence steps that are still pending get edges from the new
//!    instances of their dependencies.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use crate::dag::Dag;
use crate::outcome::{BatchOutcome, CursorConfig, DecisionOutcome, FlowControl};
use crate::state::StepState;
use crate::template::{StepType, TaskTemplate};

/// A step that already exists in the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExistingStep<'a> {
    /// Its instance name (a batch clone's includes the batch id).
    pub name: &'a str,
    /// The template step it was made from.
    pub template_step: &'a str,
    /// Its state now (the outcome's own step counts as finished).
    pub state: StepState,
}

/// Limits on what one outcome may create (from configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpansionLimits {
    /// Most steps one decision outcome may create, convergence included.
    pub max_steps_per_decision: usize,
    /// Deepest nesting of decision steps (a decision created by a decision
    /// created by a decision … counts each one).
    pub max_decision_depth: usize,
    /// Most batches one batchable outcome may create.
    pub max_batches: usize,
}

/// A step to create.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    /// Its instance name, unique in the task.
    pub name: String,
    /// The template step it is made from.
    pub template_step: String,
    /// Its inputs: a batch worker's cursor (`{"batch_cursor": {…}}`).
    pub inputs: Option<Value>,
}

/// A parent → child edge between instance names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlannedEdge {
    /// The parent.
    pub from: String,
    /// The child.
    pub to: String,
}

/// What an outcome adds to its task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expansion {
    /// New steps, parents before children.
    pub steps: Vec<PlannedStep>,
    /// New edges (to new steps, and to existing pending convergence steps).
    pub edges: Vec<PlannedEdge>,
}

impl Expansion {
    /// Whether the outcome adds nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.edges.is_empty()
    }
}

/// Why an outcome cannot be applied. Each message names the steps involved
/// and says what to change; orchestration records it as the step's
/// permanent failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpansionError {
    /// The step is not in the task, or its template step is unknown.
    #[error("step `{0}` is not part of this task's template")]
    UnknownTrigger(String),
    /// A decision or batchable step returned no outcome.
    #[error("{kind} step `{step}` returned no {expected} outcome")]
    MissingOutcome {
        /// The step.
        step: String,
        /// Its type.
        kind: &'static str,
        /// What it should have returned.
        expected: &'static str,
    },
    /// A step returned an outcome its type cannot give.
    #[error("step `{step}` is {kind} and cannot return a {given} outcome")]
    WrongOutcome {
        /// The step.
        step: String,
        /// Its type.
        kind: &'static str,
        /// What it returned.
        given: &'static str,
    },
    /// A decision named a step the template does not have.
    #[error("decision `{decision}` chose `{step}`, which is not a step of the template")]
    UnknownStep {
        /// The decision.
        decision: String,
        /// The name it gave.
        step: String,
    },
    /// A decision named a step that is not downstream of it.
    #[error("decision `{decision}` chose `{step}`, which is not reachable from it in the template")]
    NotDownstream {
        /// The decision.
        decision: String,
        /// The step it named.
        step: String,
    },
    /// A decision named a batch worker.
    #[error(
        "decision `{decision}` chose `{step}`, a batch_worker; choose its batchable step instead"
    )]
    BatchWorkerChosen {
        /// The decision.
        decision: String,
        /// The batch worker.
        step: String,
    },
    /// A step that would be created depends on one that can never exist.
    #[error(
        "`{step}` depends on `{dependency}`, which `{trigger}` did not create and nothing else \
         can; create `{dependency}` too, or declare `{step}` as deferred_convergence"
    )]
    UnsatisfiableDependency {
        /// The outcome's step.
        trigger: String,
        /// The step that could never run.
        step: String,
        /// Its missing parent.
        dependency: String,
    },
    /// A decision would create more steps than allowed.
    #[error("decision `{decision}` would create {count} steps; the limit is {limit}")]
    TooManySteps {
        /// The decision.
        decision: String,
        /// Steps it would create.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A decision would create a decision nested too deep.
    #[error("creating decision `{step}` would nest decisions {depth} deep; the limit is {limit}")]
    TooDeep {
        /// The nested decision.
        step: String,
        /// Its depth.
        depth: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A batchable step planned more batches than allowed.
    #[error("batchable `{step}` planned {count} batches; the limit is {limit}")]
    TooManyBatches {
        /// The batchable step.
        step: String,
        /// Batches planned.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A batch id is empty, too long or has characters a step name cannot.
    #[error("batchable `{step}` gave batch_id `{batch_id}`: use 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidBatchId {
        /// The batchable step.
        step: String,
        /// The id.
        batch_id: String,
    },
    /// Two batches share an id, or a clone's name is taken.
    #[error("batchable `{step}` gave batch_id `{batch_id}` twice, or `{name}` is already a step")]
    DuplicateBatch {
        /// The batchable step.
        step: String,
        /// The id.
        batch_id: String,
        /// The clone's name.
        name: String,
    },
    /// The stored template does not form a graph.
    #[error("the template's graph is corrupt: {0}")]
    Corrupt(String),
}

/// The outcome an operator's manual completion stands for: create nothing.
pub fn outcome_for_manual_completion(step_type: StepType) -> Option<FlowControl> {
    match step_type {
        StepType::Decision => Some(FlowControl::Decision(DecisionOutcome::NoBranches)),
        StepType::Batchable => Some(FlowControl::Batches(BatchOutcome::NoBatches)),
        _ => None,
    }
}

/// The batch cursor a batch worker's `inputs` carry.
pub fn batch_cursor(inputs: Option<&Value>) -> Option<CursorConfig> {
    inputs
        .and_then(|i| i.get("batch_cursor"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

fn valid_batch_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What `trigger`'s outcome `control` adds to a task whose steps are
/// `existing`. Steps that are not decisions or batchables add nothing.
///
/// # Errors
/// [`ExpansionError`] saying exactly what is wrong with the outcome.
pub fn expand<'a>(
    template: &TaskTemplate,
    existing: &[ExistingStep<'a>],
    trigger: &str,
    control: Option<&FlowControl>,
    limits: &ExpansionLimits,
) -> Result<Expansion, ExpansionError> {
    let dag = template
        .dag()
        .map_err(|e| ExpansionError::Corrupt(e.to_string()))?;
    let unknown = || ExpansionError::UnknownTrigger(trigger.to_owned());
    let trigger_step = existing
        .iter()
        .find(|s| s.name == trigger)
        .ok_or_else(unknown)?;
    let t = dag
        .index_of(trigger_step.template_step)
        .ok_or_else(unknown)?;
    let kind = template.steps[t].step_type;
    let names_taken: HashSet<&str> = existing
        .iter()
        .map(|s| s.name)
        .chain(template.steps.iter().map(|s| s.name.as_str()))
        .collect();

    let mut instances: HashMap<usize, Vec<(&str, StepState)>> = HashMap::new();
    for step in existing {
        if let Some(i) = dag.index_of(step.template_step) {
            // The outcome's own step is finishing now: it decides nothing more.
            let state = if step.name == trigger {
                StepState::Complete
            } else {
                step.state
            };
            instances.entry(i).or_default().push((step.name, state));
        }
    }

    let seeds = seeds(
        template,
        &dag,
        t,
        trigger,
        kind,
        control,
        limits,
        &names_taken,
        &instances,
    )?;
    let mut planner = Planner {
        template,
        dag: &dag,
        instances: &instances,
        trigger: t,
        new: BTreeMap::new(),
        order: Vec::new(),
    };
    for (i, step) in seeds {
        planner.add(i, step);
    }
    planner.propagate()?;
    planner.converge_without_branches(kind);

    if kind == StepType::Decision {
        let count = planner.order.len();
        if count > limits.max_steps_per_decision {
            return Err(ExpansionError::TooManySteps {
                decision: trigger.to_owned(),
                count,
                limit: limits.max_steps_per_decision,
            });
        }
    }
    for &i in planner.new.keys() {
        if template.steps[i].step_type == StepType::Decision {
            let depth = 1 + dag
                .ancestors(i)
                .iter()
                .filter(|&&a| template.steps[a].step_type == StepType::Decision)
                .count();
            if depth > limits.max_decision_depth {
                return Err(ExpansionError::TooDeep {
                    step: template.steps[i].name.clone(),
                    depth,
                    limit: limits.max_decision_depth,
                });
            }
        }
    }
    Ok(planner.finish(existing))
}

#[allow(clippy::too_many_arguments)] // one private call site; the facts `expand` gathered
fn seeds(
    template: &TaskTemplate,
    dag: &Dag,
    t: usize,
    trigger: &str,
    kind: StepType,
    control: Option<&FlowControl>,
    limits: &ExpansionLimits,
    names_taken: &HashSet<&str>,
    instances: &HashMap<usize, Vec<(&str, StepState)>>,
) -> Result<Vec<(usize, PlannedStep)>, ExpansionError> {
    let given = match control {
        None => "none",
        Some(FlowControl::Decision(_)) => "decision",
        Some(FlowControl::Batches(_)) => "batch",
    };
    let wrong = || ExpansionError::WrongOutcome {
        step: trigger.to_owned(),
        kind: kind.as_str(),
        given,
    };
    match (kind, control) {
        (StepType::Decision, Some(FlowControl::Decision(DecisionOutcome::NoBranches)))
        | (StepType::Batchable, Some(FlowControl::Batches(BatchOutcome::NoBatches))) => {
            Ok(Vec::new())
        }
        (
            StepType::Decision,
            Some(FlowControl::Decision(DecisionOutcome::CreateSteps { steps })),
        ) => {
            let downstream = dag.descendants(t);
            let mut chosen = BTreeSet::new();
            for name in steps {
                let Some(i) = dag.index_of(name) else {
                    return Err(ExpansionError::UnknownStep {
                        decision: trigger.to_owned(),
                        step: name.clone(),
                    });
                };
                if !downstream.contains(&i) {
                    return Err(ExpansionError::NotDownstream {
                        decision: trigger.to_owned(),
                        step: name.clone(),
                    });
                }
                if template.steps[i].step_type == StepType::BatchWorker {
                    return Err(ExpansionError::BatchWorkerChosen {
                        decision: trigger.to_owned(),
                        step: name.clone(),
                    });
                }
                // A step another decision already created is simply there.
                if !instances.contains_key(&i) {
                    chosen.insert(i);
                }
            }
            Ok(chosen
                .into_iter()
                .map(|i| {
                    let name = template.steps[i].name.clone();
                    (
                        i,
                        PlannedStep {
                            template_step: name.clone(),
                            name,
                            inputs: None,
                        },
                    )
                })
                .collect())
        }
        (
            StepType::Batchable,
            Some(FlowControl::Batches(BatchOutcome::CreateBatches { cursor_configs, .. })),
        ) => {
            let worker = template.steps[t]
                .batch_config
                .as_ref()
                .and_then(|c| dag.index_of(&c.worker_template))
                .ok_or_else(|| ExpansionError::Corrupt(format!("`{trigger}` has no worker")))?;
            if cursor_configs.len() > limits.max_batches {
                return Err(ExpansionError::TooManyBatches {
                    step: trigger.to_owned(),
                    count: cursor_configs.len(),
                    limit: limits.max_batches,
                });
            }
            let worker_name = &template.steps[worker].name;
            let mut seen = HashSet::new();
            let mut seeds = Vec::with_capacity(cursor_configs.len());
            for cursor in cursor_configs {
                if !valid_batch_id(&cursor.batch_id) {
                    return Err(ExpansionError::InvalidBatchId {
                        step: trigger.to_owned(),
                        batch_id: cursor.batch_id.clone(),
                    });
                }
                let name = format!("{worker_name}_{}", cursor.batch_id);
                if names_taken.contains(name.as_str()) || !seen.insert(name.clone()) {
                    return Err(ExpansionError::DuplicateBatch {
                        step: trigger.to_owned(),
                        batch_id: cursor.batch_id.clone(),
                        name,
                    });
                }
                seeds.push((
                    worker,
                    PlannedStep {
                        name,
                        template_step: worker_name.clone(),
                        inputs: Some(json!({ "batch_cursor": cursor })),
                    },
                ));
            }
            Ok(seeds)
        }
        (StepType::Decision, None) => Err(ExpansionError::MissingOutcome {
            step: trigger.to_owned(),
            kind: kind.as_str(),
            expected: "decision (create_steps or no_branches)",
        }),
        (StepType::Batchable, None) => Err(ExpansionError::MissingOutcome {
            step: trigger.to_owned(),
            kind: kind.as_str(),
            expected: "batch (create_batches or no_batches)",
        }),
        (_, None) => Ok(Vec::new()),
        (_, Some(_)) => Err(wrong()),
    }
}

struct Planner<'p, 'a> {
    template: &'p TaskTemplate,
    dag: &'p Dag,
    instances: &'p HashMap<usize, Vec<(&'a str, StepState)>>,
    trigger: usize,
    /// Template index → new instances.
    new: BTreeMap<usize, Vec<PlannedStep>>,
    /// New steps in creation order: (template index, position in `new`).
    order: Vec<(usize, usize)>,
}

impl Planner<'_, '_> {
    fn add(&mut self, i: usize, step: PlannedStep) {
        let list = self.new.entry(i).or_default();
        list.push(step);
        self.order.push((i, list.len() - 1));
    }

    fn exists(&self, i: usize) -> bool {
        self.instances.contains_key(&i) || self.new.contains_key(&i)
    }

    /// Unfinished instances (existing or new) of `i`'s template ancestors:
    /// the steps that could still bring `i` into being.
    fn pending_creators(&self, i: usize) -> Vec<String> {
        let mut creators = Vec::new();
        for a in self.dag.ancestors(i) {
            if let Some(list) = self.instances.get(&a) {
                creators.extend(
                    list.iter()
                        .filter(|(_, state)| !state.is_terminal())
                        .map(|(name, _)| (*name).to_owned()),
                );
            }
            if let Some(list) = self.new.get(&a) {
                creators.extend(list.iter().map(|s| s.name.clone()));
            }
        }
        creators
    }

    fn plain(&self, i: usize) -> PlannedStep {
        let name = self.template.steps[i].name.clone();
        PlannedStep {
            template_step: name.clone(),
            name,
            inputs: None,
        }
    }

    /// Rule 2: what hangs below the seeds.
    fn propagate(&mut self) -> Result<(), ExpansionError> {
        let order = self
            .dag
            .topological_order()
            .map_err(|c| ExpansionError::Corrupt(format!("cycle {c}")))?;
        for i in order {
            let step = &self.template.steps[i];
            if self.exists(i) || step.step_type == StepType::BatchWorker {
                continue;
            }
            let parents = self.dag.parents(i);
            // A decision's children exist only once it chose them.
            let below_decision = parents
                .iter()
                .any(|&p| self.template.steps[p].step_type == StepType::Decision);
            if below_decision || !parents.iter().any(|p| self.new.contains_key(p)) {
                continue;
            }
            if step.step_type != StepType::DeferredConvergence {
                let missing: Vec<usize> = parents
                    .iter()
                    .copied()
                    .filter(|&p| !self.exists(p))
                    .collect();
                if let Some(&never) = missing
                    .iter()
                    .find(|&&p| self.pending_creators(p).is_empty())
                {
                    return Err(ExpansionError::UnsatisfiableDependency {
                        trigger: self.template.steps[self.trigger].name.clone(),
                        step: step.name.clone(),
                        dependency: self.template.steps[never].name.clone(),
                    });
                }
                if !missing.is_empty() {
                    // Created later, with the parent it waits for.
                    continue;
                }
            }
            let planned = self.plain(i);
            self.add(i, planned);
        }
        Ok(())
    }

    /// Rule 3: convergence fed only by branches that will never exist.
    fn converge_without_branches(&mut self, kind: StepType) {
        let t = self.trigger;
        let mut branches: BTreeSet<usize> = BTreeSet::new();
        let mut add_branch = |i: usize, template: &TaskTemplate, dag: &Dag| {
            branches.insert(i);
            if let Some(worker) = template.steps[i]
                .batch_config
                .as_ref()
                .and_then(|c| dag.index_of(&c.worker_template))
            {
                branches.insert(worker);
            }
        };
        match kind {
            StepType::Decision => {
                for &child in self.dag.children(t) {
                    add_branch(child, self.template, self.dag);
                }
            }
            StepType::Batchable => add_branch(t, self.template, self.dag),
            _ => return,
        }
        for i in self.dag.descendants(t) {
            let step = &self.template.steps[i];
            if step.step_type != StepType::DeferredConvergence || self.exists(i) {
                continue;
            }
            let deps = self.dag.parents(i);
            let fed_here = deps.iter().any(|d| branches.contains(d));
            let settled = deps
                .iter()
                .all(|&d| !self.exists(d) && self.pending_creators(d).is_empty());
            if fed_here && settled {
                let planned = self.plain(i);
                self.add(i, planned);
            }
        }
    }

    fn instance_names(&self, i: usize) -> Vec<String> {
        let mut names: Vec<String> = self
            .instances
            .get(&i)
            .map(|l| l.iter().map(|(n, _)| (*n).to_owned()).collect())
            .unwrap_or_default();
        if let Some(list) = self.new.get(&i) {
            names.extend(list.iter().map(|s| s.name.clone()));
        }
        names
    }

    /// Rule 4: the edges, then the result.
    fn finish(self, existing: &[ExistingStep<'_>]) -> Expansion {
        let trigger_name = existing
            .iter()
            .find(|s| self.dag.index_of(s.template_step) == Some(self.trigger))
            .map(|s| s.name.to_owned())
            .unwrap_or_else(|| self.template.steps[self.trigger].name.clone());
        let mut edges: BTreeSet<PlannedEdge> = BTreeSet::new();
        let mut link = |from: String, to: &str| {
            if from != to {
                edges.insert(PlannedEdge {
                    from,
                    to: to.to_owned(),
                });
            }
        };
        for (i, list) in &self.new {
            let convergence = self.template.steps[*i].step_type == StepType::DeferredConvergence;
            for step in list {
                let mut linked = false;
                for &d in self.dag.parents(*i) {
                    let names = self.instance_names(d);
                    linked |= !names.is_empty();
                    for from in names {
                        link(from, &step.name);
                    }
                    if convergence && !self.exists(d) {
                        for from in self.pending_creators(d) {
                            link(from, &step.name);
                        }
                    }
                }
                if !linked && convergence {
                    // Rule 3: runs after the outcome that settled its branches.
                    link(trigger_name.clone(), &step.name);
                }
            }
        }
        for step in existing {
            let Some(i) = self.dag.index_of(step.template_step) else {
                continue;
            };
            if step.state != StepState::Pending
                || self.template.steps[i].step_type != StepType::DeferredConvergence
            {
                continue;
            }
            for &d in self.dag.parents(i) {
                if let Some(list) = self.new.get(&d) {
                    for new in list {
                        link(new.name.clone(), step.name);
                    }
                } else if !self.exists(d) {
                    for a in self.dag.ancestors(d) {
                        for new in self.new.get(&a).into_iter().flatten() {
                            link(new.name.clone(), step.name);
                        }
                    }
                }
            }
        }
        let steps = self
            .order
            .iter()
            .filter_map(|&(i, k)| self.new.get(&i).and_then(|l| l.get(k)).cloned())
            .collect();
        Expansion {
            steps,
            edges: edges.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests;

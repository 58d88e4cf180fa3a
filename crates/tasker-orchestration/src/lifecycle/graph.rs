//! One task as orchestration decides over it: the task's state and every
//! step with what the rules need — typed state, attempts, retry policy,
//! parents, template step, the failure or outcome awaiting a decision — and
//! the steps that exist only in memory so far. Pure data; loaded by the
//! adapters, changed by [`super::evaluate`], written by [`super::write`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tasker_db::task::{NewGraph, TaskRow};
use tasker_db::workflow_step::NewStep;
use tasker_db::workflow_step_edge::Edge;
use tasker_db::workflow_step_graph::StepNode;
use tasker_types::backoff::RetryPolicy;
use tasker_types::ids::{CorrelationId, StepUuid, TaskUuid};
use tasker_types::outcome::{FlowControl, StepFailure};
use tasker_types::state::{StepState, TaskState};
use tasker_types::template::{BatchConfig, StepType, TaskTemplate};
use tasker_types::trace::TraceParent;

/// What the rules need of the task itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskFacts {
    /// The task.
    pub(crate) task_uuid: TaskUuid,
    /// Its state as stored.
    pub(crate) state: TaskState,
    /// Carried on every pointer.
    pub(crate) correlation_id: CorrelationId,
    /// The trace the task was created in, carried on every pointer.
    pub(crate) traceparent: Option<TraceParent>,
}

impl From<&TaskRow> for TaskFacts {
    fn from(row: &TaskRow) -> Self {
        Self {
            task_uuid: row.task_uuid,
            state: row.state,
            correlation_id: row.correlation_id,
            traceparent: row.traceparent,
        }
    }
}

/// What a decision or batchable step's handler asked to create.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Control {
    /// Nothing (or the step is not awaiting orchestration).
    None,
    /// An outcome to apply.
    Given(FlowControl),
    /// A stored outcome that does not parse, and why.
    Unreadable(String),
}

/// One step of the graph.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GraphStep {
    /// The step.
    pub(crate) uuid: StepUuid,
    /// Its instance name.
    pub(crate) name: String,
    /// The template step it was made from.
    pub(crate) template_step: String,
    /// Its role.
    pub(crate) step_type: StepType,
    /// Its state (as it will be once the evaluation is written).
    pub(crate) state: StepState,
    /// Its current attempt.
    pub(crate) attempts: u32,
    /// Its retry policy.
    pub(crate) retry: RetryPolicy,
    /// When its retry falls due.
    pub(crate) next_retry_at: Option<DateTime<Utc>>,
    /// The failure awaiting a decision, while it is
    /// `enqueued_as_error_for_orchestration`.
    pub(crate) last_error: Option<StepFailure>,
    /// The outcome awaiting orchestration, while it is
    /// `enqueued_for_orchestration`.
    pub(crate) control: Control,
    /// Its parents.
    pub(crate) parents: Vec<StepUuid>,
}

impl From<StepNode> for GraphStep {
    fn from(node: StepNode) -> Self {
        let control = match node.flow_control {
            None => Control::None,
            Some(value) => match serde_json::from_value(value) {
                Ok(control) => Control::Given(control),
                Err(err) => Control::Unreadable(err.to_string()),
            },
        };
        Self {
            uuid: node.workflow_step_uuid,
            name: node.name,
            template_step: node.template_step,
            step_type: node.step_type,
            state: node.state,
            attempts: node.attempts,
            retry: node.retry,
            next_retry_at: node.next_retry_at,
            last_error: node.last_error,
            control,
            parents: node.parents,
        }
    }
}

impl GraphStep {
    /// A step not written yet: `pending`, no attempts, no parents.
    fn unwritten(step: &NewStep) -> Self {
        Self {
            uuid: step.uuid,
            name: step.name.clone(),
            template_step: step.template_step.clone(),
            step_type: step.step_type,
            state: StepState::Pending,
            attempts: 0,
            retry: step.retry,
            next_retry_at: None,
            last_error: None,
            control: Control::None,
            parents: Vec::new(),
        }
    }
}

/// A task and its steps.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TaskGraph {
    /// The task.
    pub(crate) task: TaskFacts,
    /// Its steps in creation order: when a group can take only some of its
    /// ready steps, the earliest go first.
    pub(crate) steps: Vec<GraphStep>,
    /// Steps and edges that exist only here so far (a new task's graph,
    /// what an outcome added); the writer inserts them.
    pub(crate) unwritten: NewGraph,
    index: HashMap<StepUuid, usize>,
}

impl TaskGraph {
    /// The graph of a stored task from its loaded steps.
    pub(crate) fn stored(task: TaskFacts, nodes: Vec<StepNode>) -> Self {
        let mut steps: Vec<GraphStep> = nodes.into_iter().map(GraphStep::from).collect();
        // Step ids are time-ordered: sorting by id is creation order.
        steps.sort_unstable_by_key(|s| s.uuid);
        Self::with_steps(task, steps, NewGraph::default())
    }

    /// The graph of a task about to be created: every step unwritten.
    pub(crate) fn new_task(task: TaskFacts, graph: NewGraph) -> Self {
        let mut built = Self::with_steps(task, Vec::new(), NewGraph::default());
        built.add(graph);
        built
    }

    /// One graph per task of `tasks` from the steps of all of them.
    pub(crate) fn stored_many(tasks: &[TaskRow], nodes: Vec<StepNode>) -> Vec<Self> {
        let mut by_task: HashMap<TaskUuid, Vec<StepNode>> = HashMap::new();
        for node in nodes {
            by_task.entry(node.task_uuid).or_default().push(node);
        }
        tasks
            .iter()
            .map(|t| Self::stored(t.into(), by_task.remove(&t.task_uuid).unwrap_or_default()))
            .collect()
    }

    fn with_steps(task: TaskFacts, steps: Vec<GraphStep>, unwritten: NewGraph) -> Self {
        let index = steps.iter().enumerate().map(|(i, s)| (s.uuid, i)).collect();
        Self {
            task,
            steps,
            unwritten,
            index,
        }
    }

    /// The step `uuid`.
    pub(crate) fn step(&self, uuid: StepUuid) -> Option<&GraphStep> {
        self.index.get(&uuid).map(|&i| &self.steps[i])
    }

    /// The step `uuid`, to change.
    pub(crate) fn step_mut(&mut self, uuid: StepUuid) -> Option<&mut GraphStep> {
        self.index.get(&uuid).map(|&i| &mut self.steps[i])
    }

    /// Whether `uuid` exists only in memory so far.
    pub(crate) fn is_unwritten(&self, uuid: StepUuid) -> bool {
        self.unwritten.steps.iter().any(|s| s.uuid == uuid)
    }

    /// Adds `graph`'s steps (pending) and edges, to be written.
    pub(crate) fn add(&mut self, graph: NewGraph) {
        for step in &graph.steps {
            self.index.insert(step.uuid, self.steps.len());
            self.steps.push(GraphStep::unwritten(step));
        }
        for edge in &graph.edges {
            if let Some(child) = self.step_mut(edge.to)
                && !child.parents.contains(&edge.from)
            {
                child.parents.push(edge.from);
            }
        }
        self.unwritten.steps.extend(graph.steps);
        self.unwritten.edges.extend(graph.edges);
    }

    /// The unwritten steps with whether each is born `enqueued`, and the
    /// unwritten edges.
    pub(crate) fn to_insert(&self) -> (Vec<bool>, &[NewStep], &[Edge]) {
        let born: Vec<bool> = self
            .unwritten
            .steps
            .iter()
            .map(|s| {
                self.step(s.uuid)
                    .is_some_and(|g| g.state == StepState::Enqueued)
            })
            .collect();
        (born, &self.unwritten.steps, &self.unwritten.edges)
    }
}

/// The batch settings a batch worker runs under (its batchable step's).
pub(crate) fn batch_config_of<'t>(
    template: &'t TaskTemplate,
    step: &GraphStep,
) -> Option<&'t BatchConfig> {
    if step.step_type != StepType::BatchWorker {
        return None;
    }
    let worker = template.step(&step.template_step)?;
    let batchable = template.step(worker.dependencies.first()?)?;
    batchable.batch_config.as_ref()
}

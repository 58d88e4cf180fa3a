//! Writes what a decision or batchable step's outcome creates (SPEC
//! §4.6–§4.7), in the transaction that completes the step: the rules live
//! in [`tasker_types::expansion`]; this turns the plan into rows and keeps
//! the batch's in-memory graph in step with them.

use std::collections::HashMap;

use sqlx::PgConnection;
use tasker_db::TransitionContext;
use tasker_db::workflow_step::{self, NewStep};
use tasker_db::workflow_step_edge::{self, Edge};
use tasker_db::workflow_step_graph::StepNode;
use tasker_types::expansion::{self, ExistingStep, ExpansionError, ExpansionLimits};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::outcome::FlowControl;
use tasker_types::state::StepState;
use tasker_types::template::TaskTemplate;

use crate::error::OrchestrationError;

/// Plans `trigger`'s outcome `control` and, when it is valid, writes the
/// new steps (with their first transitions) and edges, and adds them to
/// `graph`. Returns how many steps were created, or why the outcome cannot
/// be applied (nothing written then).
#[allow(clippy::too_many_arguments)] // two call sites; each piece is a distinct input
pub(crate) async fn apply(
    conn: &mut PgConnection,
    template: &TaskTemplate,
    graph: &mut HashMap<StepUuid, StepNode>,
    task: TaskUuid,
    trigger: StepUuid,
    control: Option<&FlowControl>,
    limits: &ExpansionLimits,
    ctx: &TransitionContext,
) -> Result<Result<usize, ExpansionError>, OrchestrationError> {
    let Some(trigger_name) = graph.get(&trigger).map(|n| n.name.clone()) else {
        return Ok(Ok(0));
    };
    let nodes: Vec<&StepNode> = graph.values().filter(|n| n.task_uuid == task).collect();
    let existing: Vec<ExistingStep<'_>> = nodes
        .iter()
        .map(|n| ExistingStep {
            name: &n.name,
            template_step: &n.template_step,
            state: n.state,
        })
        .collect();
    let plan = match expansion::expand(template, &existing, &trigger_name, control, limits) {
        Ok(plan) => plan,
        Err(err) => return Ok(Err(err)),
    };
    if plan.is_empty() {
        return Ok(Ok(0));
    }
    let mut by_name: HashMap<String, StepUuid> = nodes
        .iter()
        .map(|n| (n.name.clone(), n.workflow_step_uuid))
        .collect();
    let mut steps = Vec::with_capacity(plan.steps.len());
    for planned in &plan.steps {
        let definition = template.step(&planned.template_step).ok_or_else(|| {
            OrchestrationError::Corrupt(format!("no template step {}", planned.template_step))
        })?;
        let step = NewStep {
            name: planned.name.clone(),
            inputs: planned.inputs.clone(),
            ..NewStep::from_definition(definition)
        };
        by_name.insert(step.name.clone(), step.uuid);
        steps.push(step);
    }
    let mut edges = Vec::with_capacity(plan.edges.len());
    for edge in &plan.edges {
        let (Some(&from), Some(&to)) = (by_name.get(&edge.from), by_name.get(&edge.to)) else {
            return Err(OrchestrationError::Corrupt(format!(
                "expansion edge {} -> {} names no step",
                edge.from, edge.to
            )));
        };
        edges.push(Edge { from, to });
    }
    workflow_step::insert_many(&mut *conn, task, &steps, ctx).await?;
    workflow_step_edge::insert_many(&mut *conn, task, &edges).await?;

    for step in &steps {
        graph.insert(
            step.uuid,
            StepNode {
                workflow_step_uuid: step.uuid,
                task_uuid: task,
                name: step.name.clone(),
                template_step: step.template_step.clone(),
                step_type: step.step_type,
                state: StepState::Pending,
                attempts: 0,
                retry: step.retry,
                next_retry_at: None,
                last_error: None,
                flow_control: None,
                parents: Vec::new(),
            },
        );
    }
    for edge in &edges {
        if let Some(child) = graph.get_mut(&edge.to)
            && !child.parents.contains(&edge.from)
        {
            child.parents.push(edge.from);
        }
    }
    tracing::info!(%task, step = %trigger_name, created = steps.len(), edges = edges.len(),
        "outcome expanded the workflow");
    Ok(Ok(steps.len()))
}

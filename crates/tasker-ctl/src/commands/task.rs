//! `tasker-ctl task …`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tasker_client::Client;
use tasker_client::watch::{self, WatchError};
use tasker_types::api::{
    StepActionKind, StepActionRequest, StepView, TaskListQuery, TaskRequest, TaskView,
};
use tasker_types::ids::TaskUuid;
use tasker_types::state::{StepState, TaskState};

use crate::cli::{CreateArgs, ListArgs, Output, StepActionArgs, TaskCommand};
use crate::exit::{CtlResult, FAILED, Failure, TIMEOUT, USAGE};
use crate::output::{Table, cell, json};

/// How often `--wait` and `watch` look at the task.
const POLL: Duration = Duration::from_millis(200);

pub(crate) async fn run(
    client: &Client,
    grpc_url: &str,
    output: Output,
    command: TaskCommand,
) -> CtlResult {
    match command {
        TaskCommand::Create(args) => create(client, output, args).await,
        TaskCommand::Get { task } => {
            let view = client.get_task(task).await?;
            show_task(output, &view)
        }
        TaskCommand::List(args) => list(client, output, args).await,
        TaskCommand::Cancel { task, reason } => {
            let view = client.cancel_task(task, reason.as_deref()).await?;
            match output {
                Output::Json => json(&view),
                Output::Table => {
                    println!("task {} cancelled", view.task_uuid);
                    Ok(())
                }
            }
        }
        TaskCommand::Steps { task } => {
            let steps = client.list_steps(task).await?;
            match output {
                Output::Json => json(&steps),
                Output::Table => {
                    step_table(&steps).print();
                    Ok(())
                }
            }
        }
        TaskCommand::Step { task, step } => {
            let step = client.get_step(task, step).await?;
            show_step(output, &step)
        }
        TaskCommand::Audit { task, step } => {
            let audit = client.step_audit(task, step).await?;
            match output {
                Output::Json => json(&audit),
                Output::Table => {
                    println!(
                        "step {} ({}) is {}\n",
                        audit.step.name, audit.step.workflow_step_uuid, audit.step.state
                    );
                    let mut attempts = Table::new(&[
                        "ATTEMPT",
                        "OUTCOME",
                        "ACCEPTED",
                        "WORKER",
                        "MS",
                        "RESULT / ERROR",
                    ]);
                    for a in &audit.attempts {
                        let detail = a
                            .result
                            .as_ref()
                            .or(a.error.as_ref())
                            .cloned()
                            .unwrap_or(Value::Null);
                        attempts.row(vec![
                            a.attempt.to_string(),
                            a.outcome.clone(),
                            a.accepted.to_string(),
                            a.worker_id.clone().unwrap_or_else(|| "-".into()),
                            a.duration_ms
                                .map_or_else(|| "-".into(), |ms| ms.to_string()),
                            cell(&detail, 60),
                        ]);
                    }
                    attempts.print();
                    println!();
                    let mut transitions =
                        Table::new(&["AT", "FROM", "TO", "EVENT", "ATTEMPT", "BY"]);
                    for t in &audit.transitions {
                        transitions.row(vec![
                            t.created_at.format("%H:%M:%S%.3f").to_string(),
                            t.from_state.clone().unwrap_or_else(|| "-".into()),
                            t.to_state.clone(),
                            t.event.clone(),
                            t.attempt.map_or_else(|| "-".into(), |a| a.to_string()),
                            t.processor_id.clone().unwrap_or_else(|| "-".into()),
                        ]);
                    }
                    transitions.print();
                    Ok(())
                }
            }
        }
        TaskCommand::Watch { task, timeout } => {
            let limit = Duration::from_secs(timeout);
            let streamed = tokio::time::timeout(limit, follow(client, grpc_url, task, output))
                .await
                .map_err(|_| {
                    Failure::new(
                        TIMEOUT,
                        format!("task {task} still running after {timeout}s"),
                    )
                })?;
            let view = match streamed? {
                Some(view) => view,
                None => wait_for(client, task, limit, output == Output::Table).await?,
            };
            show_task(output, &view)?;
            outcome(&view)
        }
        TaskCommand::ResetStep { target, inputs } => {
            let inputs = inputs
                .map(|raw| parse_json_object("--inputs", &raw))
                .transpose()?;
            let request = StepActionRequest {
                inputs,
                ..action(StepActionKind::ResetForRetry, &target)
            };
            act(client, output, &target, &request).await
        }
        TaskCommand::ResolveStep { target } => {
            let request = action(StepActionKind::ResolveManually, &target);
            act(client, output, &target, &request).await
        }
        TaskCommand::CompleteStep { target, result } => {
            let request = StepActionRequest {
                result: Some(parse_json("--result", &result)?),
                ..action(StepActionKind::CompleteManually, &target)
            };
            act(client, output, &target, &request).await
        }
    }
}

/// Prints each transition `WatchTask` pushes until the task finishes, then
/// returns the task as it ended; `None` when gRPC is unreachable (the
/// caller polls REST instead).
async fn follow(
    client: &Client,
    grpc_url: &str,
    task: TaskUuid,
    output: Output,
) -> CtlResult<Option<TaskView>> {
    let opened =
        watch::watch_task(grpc_url, client.credentials(), task, Duration::from_secs(2)).await;
    let mut watcher = match opened {
        Ok(watcher) => watcher,
        Err(WatchError::Unreachable { .. }) => return Ok(None),
        Err(err) => return Err(Failure::new(crate::exit::SERVER, err.to_string())),
    };
    let people = output == Output::Table;
    while let Some(event) = watcher
        .next()
        .await
        .map_err(|e| Failure::new(crate::exit::SERVER, e.to_string()))?
    {
        if people {
            let what = event
                .step_name
                .as_deref()
                .map_or_else(|| "task".to_owned(), |s| format!("step {s}"));
            eprintln!(
                "{}  {what}: {} → {} ({})",
                event.created_at.format("%H:%M:%S%.3f"),
                event.from_state.as_deref().unwrap_or("-"),
                event.to_state,
                event.event
            );
        }
    }
    Ok(Some(client.get_task(task).await?))
}

fn action(kind: StepActionKind, target: &StepActionArgs) -> StepActionRequest {
    StepActionRequest::new(kind, target.actor.clone(), target.reason.clone())
}

/// Applies an operator's repair and shows the step as it now is.
async fn act(
    client: &Client,
    output: Output,
    target: &StepActionArgs,
    request: &StepActionRequest,
) -> CtlResult {
    let step = client
        .act_on_step(target.task, target.step, request)
        .await?;
    if output == Output::Table {
        println!(
            "step {} ({}): {} by {}\n",
            step.name,
            step.workflow_step_uuid,
            request.action.as_str(),
            request.actor
        );
    }
    show_step(output, &step)
}

fn show_step(output: Output, step: &StepView) -> CtlResult {
    match output {
        Output::Json => json(step),
        Output::Table => {
            step_table(std::slice::from_ref(step)).print();
            if let Some(error) = &step.last_error {
                println!("\nlast error: {error}");
            }
            Ok(())
        }
    }
}

/// A JSON argument given inline or, as `@path`, in a file.
fn parse_json(flag: &str, raw: &str) -> CtlResult<Value> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::new(USAGE, format!("cannot read {path}: {e}")))?,
        None => raw.to_owned(),
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::new(USAGE, format!("{flag} is not valid JSON: {e}")))
}

/// Like [`parse_json`], for arguments that must be a JSON object.
fn parse_json_object(flag: &str, raw: &str) -> CtlResult<Value> {
    let value = parse_json(flag, raw)?;
    if !value.is_object() {
        return Err(Failure::new(USAGE, format!("{flag} must be a JSON object")));
    }
    Ok(value)
}

async fn create(client: &Client, output: Output, args: CreateArgs) -> CtlResult {
    let request = TaskRequest {
        version: args.version,
        tags: args.tags,
        priority: args.priority,
        initiator: args.initiator,
        reason: args.reason,
        idempotency_key: args.idempotency_key,
        ..TaskRequest::new(
            args.namespace,
            args.name,
            parse_json_object("--context", &args.context)?,
        )
    };
    let created = client.create_task(&request).await?;
    if !args.wait {
        return show_task(output, &created);
    }
    if output == Output::Table {
        println!(
            "task {} created ({}/{} {})",
            created.task_uuid, created.namespace, created.name, created.version
        );
    }
    let view = wait_for(
        client,
        created.task_uuid,
        Duration::from_secs(args.timeout),
        output == Output::Table,
    )
    .await?;
    show_task(output, &view)?;
    outcome(&view)
}

/// The exit code of a finished task: 0 when complete (or resolved by hand).
pub(crate) fn outcome(view: &TaskView) -> CtlResult {
    match view.state {
        TaskState::Complete | TaskState::ResolvedManually => Ok(()),
        state => Err(Failure::new(
            FAILED,
            format!("task {} finished {state}", view.task_uuid),
        )),
    }
}

/// Polls until the task is terminal, drawing progress on a terminal.
pub(crate) async fn wait_for(
    client: &Client,
    task: TaskUuid,
    limit: Duration,
    show: bool,
) -> CtlResult<TaskView> {
    let bar = if show && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} steps  {elapsed}  {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    loop {
        let view = client.get_task(task).await?;
        if let Some(bar) = &bar {
            let steps = view.steps.as_deref().unwrap_or_default();
            bar.set_length(u64::from(view.step_counts.total));
            bar.set_position(u64::from(view.step_counts.complete));
            bar.set_message(progress_message(&view, steps));
        }
        if view.state.is_terminal() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(view);
        }
        if started.elapsed() > limit {
            if let Some(bar) = bar {
                bar.abandon();
            }
            return Err(Failure::new(
                TIMEOUT,
                format!(
                    "task {task} is still {} after {}s",
                    view.state,
                    limit.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn progress_message(view: &TaskView, steps: &[StepView]) -> String {
    let running: Vec<&str> = steps
        .iter()
        .filter(|s| matches!(s.state, StepState::InProgress | StepState::Enqueued))
        .map(|s| s.name.as_str())
        .collect();
    let retrying = steps
        .iter()
        .filter(|s| s.state == StepState::WaitingForRetry)
        .count();
    let mut message = view.state.to_string();
    if !running.is_empty() {
        message.push_str(&format!(" · running {}", running.join(", ")));
    }
    if retrying > 0 {
        message.push_str(&format!(" · {retrying} waiting to retry"));
    }
    message
}

async fn list(client: &Client, output: Output, args: ListArgs) -> CtlResult {
    let query = TaskListQuery {
        namespace: args.namespace,
        name: args.name,
        state: args.state,
        before: args.before,
        limit: Some(args.limit),
        ..TaskListQuery::default()
    };
    let page = client.list_tasks(&query).await?;
    match output {
        Output::Json => json(&page),
        Output::Table => {
            let mut table = Table::new(&["TASK", "TEMPLATE", "STATE", "STEPS", "CREATED"]);
            for t in &page.tasks {
                table.row(vec![
                    t.task_uuid.to_string(),
                    format!("{}/{}@{}", t.namespace, t.name, t.version),
                    t.state.to_string(),
                    format!("{}/{}", t.step_counts.complete, t.step_counts.total),
                    t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]);
            }
            table.print();
            if let Some(cursor) = page.next_cursor {
                println!("\nmore: --before {cursor}");
            }
            Ok(())
        }
    }
}

fn show_task(output: Output, view: &TaskView) -> CtlResult {
    match output {
        Output::Json => json(view),
        Output::Table => {
            println!("task        {}", view.task_uuid);
            println!(
                "template    {}/{}@{}",
                view.namespace, view.name, view.version
            );
            println!(
                "state       {} ({})",
                view.state,
                serde_json::to_value(view.execution_status)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            );
            println!(
                "steps       {} complete, {} in progress, {} pending, {} error, of {}",
                view.step_counts.complete,
                view.step_counts.in_progress,
                view.step_counts.pending,
                view.step_counts.error,
                view.step_counts.total
            );
            println!(
                "created     {}",
                view.created_at.format("%Y-%m-%d %H:%M:%S%.3f")
            );
            if let Some(done) = view.completed_at {
                let ms = (done - view.created_at).num_milliseconds();
                println!(
                    "finished    {} ({ms} ms)",
                    done.format("%Y-%m-%d %H:%M:%S%.3f")
                );
            }
            if let Some(steps) = &view.steps {
                println!();
                step_table(steps).print();
            }
            Ok(())
        }
    }
}

fn step_table(steps: &[StepView]) -> Table {
    let mut table = Table::new(&["STEP", "STATE", "ATTEMPTS", "RESULT / ERROR"]);
    for s in steps {
        let detail = s
            .results
            .as_ref()
            .or(s.last_error.as_ref())
            .cloned()
            .unwrap_or(Value::Null);
        table.row(vec![
            s.name.clone(),
            s.state.to_string(),
            format!("{}/{}", s.attempts, s.max_attempts),
            cell(&detail, 70),
        ]);
    }
    table
}

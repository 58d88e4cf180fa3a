//! `tasker.tasks`: task creation (the whole graph in one transaction), reads,
//! and fenced task transitions.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use tasker_types::identity::{TemplateKey, identity_hash};
use tasker_types::ids::StepUuid;
use tasker_types::ids::{CorrelationId, TaskUuid, TemplateUuid};
use tasker_types::state::{TaskEvent, TaskState};
use tasker_types::template::TaskTemplate;
use tasker_types::trace::TraceParent;

use crate::convert;
use crate::error::DbError;
use crate::named_task::RegisteredTemplate;
use crate::transition::TransitionContext;
use crate::workflow_step::{self, NewStep, StepRow};
use crate::workflow_step_edge::{self, Edge};

/// A task as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    /// Row id.
    pub task_uuid: TaskUuid,
    /// The exact template version it runs.
    pub named_task_uuid: TemplateUuid,
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Current state.
    pub state: TaskState,
    /// The JSON context handlers receive.
    pub context: Value,
    /// Identity hash, when the task has one.
    pub identity_hash: Option<String>,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// Follows the task through logs and messages.
    pub correlation_id: CorrelationId,
    /// Higher runs first where there is a choice.
    pub priority: i32,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Who asked for it.
    pub initiator: Option<String>,
    /// Which system asked for it.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Reached a terminal state.
    pub completed_at: Option<DateTime<Utc>>,
    /// The trace the task was created in, carried by its steps' pointers.
    pub traceparent: Option<TraceParent>,
}

/// A task to create.
#[derive(Clone, Debug)]
pub struct NewTask<'a> {
    /// The id it will have (chosen by the caller, so that its pointers can
    /// be decided before it is written).
    pub task_uuid: TaskUuid,
    /// The template version to run.
    pub template: &'a RegisteredTemplate,
    /// Whose `environments` overrides apply (`TASKER_ENV`).
    pub environment: &'a str,
    /// The task's context (already checked against `input_schema`).
    pub context: Value,
    /// A correlation id to reuse, or `None` for a new one.
    pub correlation_id: Option<CorrelationId>,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// Priority.
    pub priority: i32,
    /// Labels.
    pub tags: Vec<String>,
    /// Who asks.
    pub initiator: Option<String>,
    /// Which system asks.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The trace of the span creating it (see [`TaskRow::traceparent`]).
    pub traceparent: Option<TraceParent>,
}

impl<'a> NewTask<'a> {
    /// A request with only the essentials set.
    pub fn new(template: &'a RegisteredTemplate, environment: &'a str, context: Value) -> Self {
        Self {
            task_uuid: TaskUuid::new(),
            template,
            environment,
            context,
            correlation_id: None,
            idempotency_key: None,
            priority: 0,
            tags: Vec::new(),
            initiator: None,
            source_system: None,
            reason: None,
            traceparent: None,
        }
    }
}

/// What [`create`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedTask {
    /// The task, `pending`.
    pub task: TaskRow,
    /// Its initial steps as stored, in template order (decision branches and
    /// batch workers come later).
    pub steps: Vec<StepRow>,
    /// Edges between them.
    pub edges: Vec<Edge>,
}

/// The steps and edges of a task that are not written yet: a new task's
/// initial graph, or what an outcome adds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewGraph {
    /// The steps, parents before children.
    pub steps: Vec<NewStep>,
    /// Edges between them (and to steps already written).
    pub edges: Vec<Edge>,
}

impl NewGraph {
    /// The initial steps of `template` (already resolved for the
    /// environment) and their edges — decision branches and batch workers
    /// come later. The one place a new task's graph is derived.
    ///
    /// # Errors
    /// [`DbError::Corrupt`] when the template's steps do not form a graph.
    pub fn initial(template: &TaskTemplate) -> Result<Self, DbError> {
        let definitions = template
            .initial_steps()
            .map_err(|e| DbError::Corrupt(format!("template graph: {e}")))?;
        let steps: Vec<NewStep> = definitions
            .iter()
            .map(|d| NewStep::from_definition(d))
            .collect();
        let mut edges = Vec::new();
        for (child, definition) in steps.iter().zip(&definitions) {
            for dependency in &definition.dependencies {
                if let Some(parent) = steps.iter().find(|s| &s.name == dependency) {
                    edges.push(Edge {
                        from: parent.uuid,
                        to: child.uuid,
                    });
                }
            }
        }
        Ok(Self { steps, edges })
    }
}

/// How a new task starts (decided by orchestration): the task events it
/// goes through from `pending`, its graph, and which of its steps go to
/// workers at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskStart<'a> {
    /// Events from `pending`, e.g. `initialize`, `enqueue_ready_steps`, `await_steps`.
    pub events: &'a [TaskEvent],
    /// The steps and edges to write.
    pub graph: &'a NewGraph,
    /// Steps of `graph` born `enqueued`.
    pub enqueue: &'a [StepUuid],
}

/// Creates a task with its initial steps, edges and first transitions, in the
/// caller's transaction: commit it to keep everything, drop it to keep
/// nothing. The task stays `pending` and its steps `pending`.
///
/// # Errors
/// [`DbError::DuplicateTask`] with the existing task when the identity is
/// taken; [`DbError::Identity`] when the request lacks a required key.
pub async fn create(
    conn: &mut PgConnection,
    new: NewTask<'_>,
    ctx: &TransitionContext,
) -> Result<CreatedTask, DbError> {
    let template = new.template.template.for_environment(new.environment);
    let graph = NewGraph::initial(&template)?;
    let start = TaskStart {
        events: &[],
        graph: &graph,
        enqueue: &[],
    };
    create_started(conn, new, &start, ctx).await
}

/// Like [`create`], but with the graph `start.graph` (see
/// [`NewGraph::initial`]), the task written already moved along
/// `start.events` (one transition row per event) and the steps of
/// `start.enqueue` born `enqueued` — four statements for the whole graph,
/// instead of an update and a history row per event and per root. The
/// caller sends the enqueued steps' pointers in the same transaction.
///
/// # Errors
/// As [`create`]; [`DbError::InvalidTransition`] when `start.events` is not
/// a legal path from `pending`.
pub async fn create_started(
    conn: &mut PgConnection,
    new: NewTask<'_>,
    start: &TaskStart<'_>,
    ctx: &TransitionContext,
) -> Result<CreatedTask, DbError> {
    let template = new.template.template.for_environment(new.environment);
    let key = TemplateKey {
        namespace: &template.namespace_name,
        name: &template.name,
        version: &template.version,
    };
    let identity = identity_hash(
        template.identity_strategy,
        key,
        &new.context,
        new.idempotency_key.as_deref(),
    )?;
    let task_uuid = new.task_uuid;
    let correlation_id = new.correlation_id.unwrap_or_default();

    // The history: `→ pending` (create), then one row per event.
    let mut states = vec![TaskState::Pending];
    for event in start.events {
        let current = states[states.len() - 1];
        states.push(current.next(*event)?);
    }
    let state = states[states.len() - 1];
    let mut transition_ids = vec![uuid::Uuid::now_v7()];
    let mut froms: Vec<Option<String>> = vec![None];
    let mut tos = vec![TaskState::Pending.as_str().to_owned()];
    let mut events = vec!["create".to_owned()];
    for (i, event) in start.events.iter().enumerate() {
        transition_ids.push(uuid::Uuid::now_v7());
        froms.push(Some(states[i].as_str().to_owned()));
        tos.push(states[i + 1].as_str().to_owned());
        events.push(event.as_str().to_owned());
    }
    let last = i32::try_from(events.len()).unwrap_or(i32::MAX);

    let inserted = sqlx::query_as!(
        TaskRecord,
        r#"WITH t AS (
               INSERT INTO tasker.tasks
                   (task_uuid, named_task_uuid, namespace, name, version, state, context,
                    identity_hash, idempotency_key, correlation_id, priority, tags, initiator,
                    source_system, reason, last_sort_key, traceparent)
               VALUES ($1, $2, $3, $4, $5, $15, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                       $20::int4 - 1, $23)
               ON CONFLICT (identity_hash) WHERE identity_hash IS NOT NULL DO NOTHING
               RETURNING *),
           history AS (
               INSERT INTO tasker.task_transitions
                   (task_transition_uuid, task_uuid, from_state, to_state, event, sort_key,
                    metadata, processor_id)
               SELECT p.id, t.task_uuid, p.f, p.tt, p.e, (p.n - 1)::int4, $21, $22
               FROM t, unnest($16::uuid[], $17::text[], $18::text[], $19::text[])
                    WITH ORDINALITY AS p(id, f, tt, e, n))
           SELECT task_uuid AS "task_uuid!", named_task_uuid AS "named_task_uuid!",
                  namespace AS "namespace!", name AS "name!", version AS "version!",
                  state AS "state!", context AS "context!", identity_hash, idempotency_key,
                  correlation_id AS "correlation_id!", priority AS "priority!", tags AS "tags!",
                  initiator, source_system, reason, created_at AS "created_at!",
                  updated_at AS "updated_at!", completed_at, traceparent
           FROM t"#,
        task_uuid.as_uuid(),
        new.template.named_task_uuid.as_uuid(),
        template.namespace_name,
        template.name,
        template.version,
        new.context,
        identity,
        new.idempotency_key,
        correlation_id.as_uuid(),
        new.priority,
        &new.tags,
        new.initiator,
        new.source_system,
        new.reason,
        state.as_str(),
        &transition_ids,
        &froms as &[Option<String>],
        &tos,
        &events,
        last,
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
        new.traceparent.map(|t| t.to_string()),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(record) = inserted else {
        let existing = sqlx::query_scalar!(
            "SELECT task_uuid FROM tasker.tasks WHERE identity_hash = $1",
            identity
        )
        .fetch_one(&mut *conn)
        .await?;
        return Err(DbError::DuplicateTask {
            existing: TaskUuid::from_uuid(existing),
        });
    };
    let task = TaskRow::try_from(record)?;

    let steps = &start.graph.steps;
    let enqueued: Vec<bool> = steps
        .iter()
        .map(|s| start.enqueue.contains(&s.uuid))
        .collect();
    let steps =
        workflow_step::insert_many_born(&mut *conn, task.task_uuid, steps, &enqueued, ctx).await?;
    let edges = start.graph.edges.clone();
    workflow_step_edge::insert_many(&mut *conn, task.task_uuid, &edges).await?;
    Ok(CreatedTask { task, steps, edges })
}

/// [`create`] in a transaction of its own.
///
/// # Errors
/// As [`create`]; nothing is written on error.
pub async fn create_committed(
    pool: &PgPool,
    new: NewTask<'_>,
    ctx: &TransitionContext,
) -> Result<CreatedTask, DbError> {
    let mut tx = pool.begin().await?;
    let created = create(&mut tx, new, ctx).await?;
    tx.commit().await?;
    Ok(created)
}

/// One task.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn get(
    executor: impl PgExecutor<'_>,
    task: TaskUuid,
) -> Result<Option<TaskRow>, DbError> {
    let record = sqlx::query_as!(
        TaskRecord,
        r#"SELECT task_uuid, named_task_uuid, namespace, name, version, state, context,
                  identity_hash, idempotency_key, correlation_id, priority, tags, initiator,
                  source_system, reason, created_at, updated_at, completed_at, traceparent
           FROM tasker.tasks WHERE task_uuid = $1"#,
        task.as_uuid()
    )
    .fetch_optional(executor)
    .await?;
    record.map(TaskRow::try_from).transpose()
}

/// Moves `task` from `from` by `event`: a compare-and-set on `from` plus a
/// transition row, in the caller's transaction. Terminal states stamp
/// `completed_at`.
///
/// # Errors
/// [`DbError::InvalidTransition`] when `event` is not allowed from `from`;
/// [`DbError::TransitionConflict`] when the task is no longer in `from`.
pub async fn transition(
    conn: &mut PgConnection,
    task: TaskUuid,
    from: TaskState,
    event: TaskEvent,
    ctx: &TransitionContext,
) -> Result<TaskState, DbError> {
    transition_path(conn, task, from, &[event], ctx).await
}

/// Moves `task` from `from` through `events` in order — each checked
/// against the state machine — with one compare-and-set from `from` to the
/// final state and one transition row per event, in the caller's
/// transaction. An empty path changes nothing.
///
/// # Errors
/// [`DbError::InvalidTransition`] when an event is not allowed where the
/// path puts it; [`DbError::TransitionConflict`] when the task is no longer
/// in `from`.
pub async fn transition_path(
    conn: &mut PgConnection,
    task: TaskUuid,
    from: TaskState,
    events: &[TaskEvent],
    ctx: &TransitionContext,
) -> Result<TaskState, DbError> {
    if events.is_empty() {
        return Ok(from);
    }
    let path = [(task, from, events.to_vec())];
    transition_paths_many(conn, &path, ctx)
        .await?
        .pop()
        .map(|(_, state)| state)
        .ok_or(DbError::TransitionConflict {
            entity: "task",
            uuid: task.as_uuid(),
            expected_state: from.as_str(),
            expected_attempt: None,
        })
}

/// Locks `tasks` (`FOR UPDATE`, in uuid order so concurrent lockers never
/// deadlock) and returns them. Orchestrators hold these locks while they
/// apply results, so two never evaluate one task at once.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn lock_many(
    conn: &mut PgConnection,
    tasks: &[TaskUuid],
) -> Result<Vec<TaskRow>, DbError> {
    let mut uuids: Vec<uuid::Uuid> = tasks.iter().map(TaskUuid::as_uuid).collect();
    uuids.sort_unstable();
    uuids.dedup();
    let records = sqlx::query_as!(
        TaskRecord,
        r#"SELECT task_uuid, named_task_uuid, namespace, name, version, state, context,
                  identity_hash, idempotency_key, correlation_id, priority, tags, initiator,
                  source_system, reason, created_at, updated_at, completed_at, traceparent
           FROM tasker.tasks WHERE task_uuid = ANY($1) ORDER BY task_uuid FOR UPDATE"#,
        &uuids
    )
    .fetch_all(conn)
    .await?;
    records.into_iter().map(TaskRow::try_from).collect()
}

/// Locks `task` (`FOR UPDATE SKIP LOCKED`) and returns it, or `None` when it
/// does not exist or another transaction holds it (for background work that
/// must never wait behind the result loop).
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn lock_if_free(
    conn: &mut PgConnection,
    task: TaskUuid,
) -> Result<Option<TaskRow>, DbError> {
    let record = sqlx::query_as!(
        TaskRecord,
        r#"SELECT task_uuid, named_task_uuid, namespace, name, version, state, context,
                  identity_hash, idempotency_key, correlation_id, priority, tags, initiator,
                  source_system, reason, created_at, updated_at, completed_at, traceparent
           FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE SKIP LOCKED"#,
        task.as_uuid()
    )
    .fetch_optional(conn)
    .await?;
    record.map(TaskRow::try_from).transpose()
}

/// Moves many tasks along their paths at once: for each `(task, from,
/// events)` (events checked against the state machine), one compare-and-set
/// from `from` to the path's end, with one transition row per event — two
/// statements for the whole batch. Returns the tasks moved and their new
/// states; a task no longer in `from` is left out.
///
/// # Errors
/// [`DbError::InvalidTransition`] when a path breaks the state machine.
pub async fn transition_paths_many(
    conn: &mut PgConnection,
    paths: &[(TaskUuid, TaskState, Vec<TaskEvent>)],
    ctx: &TransitionContext,
) -> Result<Vec<(TaskUuid, TaskState)>, DbError> {
    let mut tasks = Vec::new();
    let mut froms = Vec::new();
    let mut tos = Vec::new();
    let mut terminal = Vec::new();
    let mut ends = std::collections::HashMap::new();
    let (mut row_ids, mut row_tasks, mut row_from, mut row_to, mut row_events, mut row_seq) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut lengths = Vec::new();
    for (task, from, events) in paths {
        if events.is_empty() {
            continue;
        }
        let mut state = *from;
        for (i, event) in events.iter().enumerate() {
            let next = state.next(*event)?;
            row_ids.push(uuid::Uuid::now_v7());
            row_tasks.push(task.as_uuid());
            row_from.push(state.as_str().to_owned());
            row_to.push(next.as_str().to_owned());
            row_events.push(event.as_str().to_owned());
            row_seq.push(i32::try_from(i + 1).unwrap_or(i32::MAX));
            state = next;
        }
        tasks.push(task.as_uuid());
        froms.push(from.as_str().to_owned());
        tos.push(state.as_str().to_owned());
        terminal.push(state.is_terminal());
        lengths.push(i32::try_from(events.len()).unwrap_or(i32::MAX));
        ends.insert(*task, state);
    }
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let moved = sqlx::query_scalar!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::int4[])
                   AS i(task, from_state, to_state, terminal, length)),
           moved AS (
               UPDATE tasker.tasks t
               SET state = i.to_state, updated_at = now(),
                   completed_at = CASE WHEN i.terminal THEN now() ELSE NULL END,
                   last_sort_key = t.last_sort_key + i.length
               FROM input i
               WHERE t.task_uuid = i.task AND t.state = i.from_state
               RETURNING t.task_uuid, t.last_sort_key - i.length AS base),
           added AS (
               INSERT INTO tasker.task_transitions
                   (task_transition_uuid, task_uuid, from_state, to_state, event, sort_key,
                    metadata, processor_id)
               SELECT r.tid, r.task, r.from_state, r.to_state, r.event, m.base + r.seq, $12, $13
               FROM unnest($6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::text[],
                           $11::int4[])
                    AS r(tid, task, from_state, to_state, event, seq)
               JOIN moved m ON m.task_uuid = r.task)
           SELECT task_uuid AS "task!" FROM moved"#,
        &tasks,
        &froms,
        &tos,
        &terminal,
        &lengths,
        &row_ids,
        &row_tasks,
        &row_from,
        &row_to,
        &row_events,
        &row_seq,
        ctx.metadata_or_empty(),
        ctx.processor_id.as_deref(),
    )
    .fetch_all(conn)
    .await?;
    Ok(moved
        .into_iter()
        .filter_map(|t| {
            let task = TaskUuid::from_uuid(t);
            ends.get(&task).map(|state| (task, *state))
        })
        .collect())
}

/// Which tasks [`list`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this template name.
    pub name: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks created at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only tasks older than this one (the cursor of the previous page).
    pub before: Option<TaskUuid>,
    /// Most rows to return.
    pub limit: u32,
}

/// Tasks matching `filter`, newest first (task ids are time-ordered).
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &TaskFilter,
) -> Result<Vec<TaskRow>, DbError> {
    let records = sqlx::query_as!(
        TaskRecord,
        r#"SELECT task_uuid, named_task_uuid, namespace, name, version, state, context,
                  identity_hash, idempotency_key, correlation_id, priority, tags, initiator,
                  source_system, reason, created_at, updated_at, completed_at, traceparent
           FROM tasker.tasks
           WHERE ($1::text IS NULL OR namespace = $1)
             AND ($2::text IS NULL OR name = $2)
             AND ($3::text IS NULL OR state = $3)
             AND ($4::timestamptz IS NULL OR created_at >= $4)
             AND ($5::uuid IS NULL OR task_uuid < $5)
           ORDER BY task_uuid DESC
           LIMIT $6"#,
        filter.namespace,
        filter.name,
        filter.state.map(TaskState::as_str),
        filter.since,
        filter.before.map(|t| t.as_uuid()),
        i64::from(filter.limit),
    )
    .fetch_all(executor)
    .await?;
    records.into_iter().map(TaskRow::try_from).collect()
}

/// The channel notified (payload: the task uuid) when a task is cancelled,
/// so workers can stop its running handlers at once.
pub const CANCEL_CHANNEL: &str = "tasker_cancellations";

/// Tells listening workers, on commit, that `task` was cancelled.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn announce_cancellation(conn: &mut PgConnection, task: TaskUuid) -> Result<(), DbError> {
    sqlx::query!("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, task.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// A row exactly as `SELECT` returns it.
struct TaskRecord {
    task_uuid: uuid::Uuid,
    named_task_uuid: uuid::Uuid,
    namespace: String,
    name: String,
    version: String,
    state: String,
    context: Value,
    identity_hash: Option<String>,
    idempotency_key: Option<String>,
    correlation_id: uuid::Uuid,
    priority: i32,
    tags: Vec<String>,
    initiator: Option<String>,
    source_system: Option<String>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    traceparent: Option<String>,
}

impl TryFrom<TaskRecord> for TaskRow {
    type Error = DbError;

    fn try_from(r: TaskRecord) -> Result<Self, DbError> {
        Ok(TaskRow {
            task_uuid: TaskUuid::from_uuid(r.task_uuid),
            named_task_uuid: TemplateUuid::from_uuid(r.named_task_uuid),
            namespace: r.namespace,
            name: r.name,
            version: r.version,
            state: convert::task_state(&r.state)?,
            context: r.context,
            identity_hash: r.identity_hash,
            idempotency_key: r.idempotency_key,
            correlation_id: CorrelationId::from_uuid(r.correlation_id),
            priority: r.priority,
            tags: r.tags,
            initiator: r.initiator,
            source_system: r.source_system,
            reason: r.reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
            // Written only from a parsed value; anything else is no trace.
            traceparent: r.traceparent.and_then(|t| t.parse().ok()),
        })
    }
}

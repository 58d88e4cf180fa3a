//! Analytics over a time window (SPEC §8.1, `/v1/analytics/*`): counts and
//! duration percentiles of finished tasks and step attempts, and the
//! templates and steps that are slowest, retried most or fail most.
//!
//! What is measured (the API documents the same):
//! - A task belongs to the window `[since, until)` when its `completed_at`
//!   (stamped on reaching any terminal state) falls in it. Its duration is
//!   `completed_at - created_at`, measured over tasks that ended `complete`
//!   only: the latency of delivered work, not mixed with tasks that failed
//!   fast or were cancelled half-way.
//! - A step attempt belongs to the window when its audit row's
//!   `finished_at` falls in it. Its duration is the handler's run time,
//!   `finished_at - started_at` of that attempt, successful or not (a
//!   handler that times out is exactly the slow step to find). Only
//!   accepted worker reports count: a rejected report is a stale duplicate
//!   of an attempt that was re-claimed, and operator actions (`manual`)
//!   ran no handler.
//! - Percentiles are `percentile_cont` (linear interpolation between the
//!   two nearest samples), in milliseconds.
//!
//! Every query finds the rows of its window through an index on the
//! instant that places a row in it (`20261202000001_analytics_indexes.sql`),
//! so a narrow window costs what it holds, not the table's history; the
//! steps and tasks those rows belong to are joined by primary key, or by
//! hashing the table when the window holds much of it (the planner picks;
//! a window as wide as the table is best read sequentially). A report's
//! queries run in one read-only snapshot, so its counts and percentiles
//! agree with each other.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor, PgPool, Postgres, Row, Transaction};

use crate::error::DbError;

/// Which rows a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalyticsFilter<'a> {
    /// Start of the window, inclusive.
    pub since: DateTime<Utc>,
    /// End of the window, exclusive.
    pub until: DateTime<Utc>,
    /// Only tasks (and their steps) of this namespace.
    pub namespace: Option<&'a str>,
    /// Only tasks (and their steps) of templates with this name.
    pub name: Option<&'a str>,
}

/// Durations of a set of samples, in milliseconds; the statistics are
/// `None` when there are no samples.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct DurationStats {
    /// How many samples.
    pub samples: i64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Longest.
    pub max_ms: Option<f64>,
    /// Mean.
    pub mean_ms: Option<f64>,
}

/// Tasks finished in the window: all of them, or one template version's.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct TaskStats {
    /// The template's namespace; `None` on the row for all templates.
    pub namespace: Option<String>,
    /// The template's name; `None` on the row for all templates.
    pub name: Option<String>,
    /// The template's version; `None` on the row for all templates.
    pub version: Option<String>,
    /// Tasks that reached any terminal state.
    pub finished: i64,
    /// … ended `complete`.
    pub complete: i64,
    /// … ended `error`.
    pub error: i64,
    /// … ended `cancelled`.
    pub cancelled: i64,
    /// … ended `resolved_manually`.
    pub resolved_manually: i64,
    /// Durations of the `complete` ones.
    #[sqlx(flatten)]
    pub duration: DurationStats,
}

/// Step attempts finished in the window.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct StepStats {
    /// Attempts that succeeded (each completes its step).
    pub completed: i64,
    /// Attempts that failed, retried or not.
    pub failed_attempts: i64,
    /// Failed attempts after which the step went to `error` (no retry left,
    /// or not retryable).
    pub ended_in_error: i64,
    /// Handler run times of every attempt.
    #[sqlx(flatten)]
    pub duration: DurationStats,
}

/// One template step's attempts in the window, across the step instances
/// of every task of its template (all versions).
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct StepRanking {
    /// The task's namespace.
    pub namespace: String,
    /// The task's template name.
    pub name: String,
    /// The template step (`workflow_steps.template_step`; batch workers
    /// count under the step they were cloned from).
    pub step: String,
    /// Attempts.
    pub attempts: i64,
    /// Attempts after the first of their step instance.
    pub retries: i64,
    /// Attempts that failed.
    pub failed_attempts: i64,
    /// Failed attempts after which the step went to `error`.
    pub ended_in_error: i64,
    /// The highest attempt number seen.
    pub max_attempt: i32,
    /// Handler run times.
    #[sqlx(flatten)]
    pub duration: DurationStats,
}

/// What `/v1/analytics/performance` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Performance {
    /// All tasks finished in the window.
    pub tasks: TaskStats,
    /// Per template version, most finished tasks first, at most `limit`.
    pub by_template: Vec<TaskStats>,
    /// All step attempts finished in the window.
    pub steps: StepStats,
}

/// What `/v1/analytics/bottlenecks` reports, each list at most `limit` long.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bottlenecks {
    /// Template versions by p95 duration of their completed tasks, slowest first.
    pub slowest_templates: Vec<TaskStats>,
    /// Template steps by p95 handler run time, slowest first.
    pub slowest_steps: Vec<StepRanking>,
    /// Template steps with retries, most retries first.
    pub most_retried_steps: Vec<StepRanking>,
    /// Template steps with failed attempts, most that ended in `error`
    /// first, then most failed attempts.
    pub most_errored_steps: Vec<StepRanking>,
}

/// The queries, named for [`explain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    /// [`task_stats`].
    TaskStats,
    /// [`step_stats`].
    StepStats,
    /// [`slowest_templates`].
    SlowestTemplates,
    /// [`step_rankings`].
    StepRankings,
}

impl Statement {
    /// Every query.
    pub const ALL: [Statement; 4] = [
        Statement::TaskStats,
        Statement::StepStats,
        Statement::SlowestTemplates,
        Statement::StepRankings,
    ];

    /// The query's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Statement::TaskStats => "task_stats",
            Statement::StepStats => "step_stats",
            Statement::SlowestTemplates => "slowest_templates",
            Statement::StepRankings => "step_rankings",
        }
    }

    fn sql(self, filter: &AnalyticsFilter<'_>) -> &'static str {
        match self {
            Statement::TaskStats => TASK_STATS,
            Statement::StepStats if is_filtered(filter) => STEP_STATS_FILTERED,
            Statement::StepStats => STEP_STATS,
            Statement::SlowestTemplates => SLOWEST_TEMPLATES,
            Statement::StepRankings => STEP_RANKINGS,
        }
    }

    const fn takes_limit(self) -> bool {
        !matches!(self, Statement::StepStats)
    }
}

/// Task and step figures of the window, the by-template list at most
/// `limit` long, in one snapshot.
///
/// # Errors
/// [`DbError`] on database failure (including the statement timeout).
pub async fn performance(
    pool: &PgPool,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<Performance, DbError> {
    let mut tx = begin_snapshot(pool).await?;
    let (tasks, by_template) = task_stats(&mut *tx, filter, limit).await?;
    let steps = step_stats(&mut *tx, filter).await?;
    tx.commit().await?;
    Ok(Performance {
        tasks,
        by_template,
        steps,
    })
}

/// The slowest templates and steps, and the steps retried or failing
/// most, each list at most `limit` long, in one snapshot.
///
/// # Errors
/// [`DbError`] on database failure (including the statement timeout).
pub async fn bottlenecks(
    pool: &PgPool,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<Bottlenecks, DbError> {
    let mut tx = begin_snapshot(pool).await?;
    let slowest_templates = slowest_templates(&mut *tx, filter, limit).await?;
    let mut report = step_rankings(&mut *tx, filter, limit).await?;
    tx.commit().await?;
    report.slowest_templates = slowest_templates;
    Ok(report)
}

/// All tasks finished in the window, and per template version (most
/// finished first, then by name; at most `limit`).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn task_stats(
    executor: impl PgExecutor<'_>,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<(TaskStats, Vec<TaskStats>), DbError> {
    let mut rows = sqlx::query_as::<_, TaskStats>(TASK_STATS)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.namespace)
        .bind(filter.name)
        .bind(i64::from(limit))
        .fetch_all(executor)
        .await?;
    // The grand total (the empty grouping set) sorts first and exists even
    // when no task finished.
    if rows.first().is_none_or(|r| r.namespace.is_some()) {
        return Err(DbError::Corrupt(
            "analytics: the total row of task_stats is missing".into(),
        ));
    }
    let total = rows.remove(0);
    Ok((total, rows))
}

/// All step attempts finished in the window.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn step_stats(
    executor: impl PgExecutor<'_>,
    filter: &AnalyticsFilter<'_>,
) -> Result<StepStats, DbError> {
    let sql = Statement::StepStats.sql(filter);
    let stats = sqlx::query_as::<_, StepStats>(sql)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.namespace)
        .bind(filter.name)
        .fetch_one(executor)
        .await?;
    Ok(stats)
}

/// Template versions with completed tasks in the window, by p95 task
/// duration, slowest first; at most `limit`.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn slowest_templates(
    executor: impl PgExecutor<'_>,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<Vec<TaskStats>, DbError> {
    let rows = sqlx::query_as::<_, TaskStats>(SLOWEST_TEMPLATES)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.namespace)
        .bind(filter.name)
        .bind(i64::from(limit))
        .fetch_all(executor)
        .await?;
    Ok(rows)
}

/// The three step lists of [`Bottlenecks`] (its `slowest_templates` left
/// empty), from one pass over the window's attempts.
///
/// # Errors
/// [`DbError`] on database failure or an unknown list name.
pub async fn step_rankings(
    executor: impl PgExecutor<'_>,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<Bottlenecks, DbError> {
    let rows = sqlx::query(STEP_RANKINGS)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.namespace)
        .bind(filter.name)
        .bind(i64::from(limit))
        .fetch_all(executor)
        .await?;
    let mut report = Bottlenecks::default();
    for row in rows {
        let list: String = row.try_get("list")?;
        let ranking = <StepRanking as sqlx::FromRow<'_, PgRow>>::from_row(&row)?;
        match list.as_str() {
            "slowest" => report.slowest_steps.push(ranking),
            "retried" => report.most_retried_steps.push(ranking),
            "errored" => report.most_errored_steps.push(ranking),
            other => {
                return Err(DbError::Corrupt(format!(
                    "analytics: unknown step list `{other}`"
                )));
            }
        }
    }
    Ok(report)
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of one query with this filter, under the
/// same settings the reports run with: PostgreSQL's plan, one line per
/// element. For the benchmark and for operators checking index use.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn explain(
    pool: &PgPool,
    statement: Statement,
    filter: &AnalyticsFilter<'_>,
    limit: u32,
) -> Result<Vec<String>, DbError> {
    let mut tx = begin_snapshot(pool).await?;
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", statement.sql(filter));
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.namespace)
        .bind(filter.name);
    if statement.takes_limit() {
        query = query.bind(i64::from(limit));
    }
    let plan = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(plan)
}

/// The longest any analytics statement may run: a report over a wide
/// window must not hold a connection (and a snapshot that stops vacuum)
/// for long on a busy database.
const STATEMENT_TIMEOUT: &str = "30s";

/// A read-only, repeatable-read transaction with the settings analytics
/// run under:
/// - a statement timeout ([`STATEMENT_TIMEOUT`]);
/// - custom plans: the planner sees the window's bounds and whether a
///   filter is set (a generic plan would guess both) — one planning per
///   report is cheap next to the query;
/// - no JIT: on these plans (thousands to hundreds of thousands of rows)
///   compiling costs tens to hundreds of milliseconds and saves less.
async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, DbError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    settings(&mut tx).await?;
    Ok(tx)
}

async fn settings(conn: &mut PgConnection) -> Result<(), DbError> {
    sqlx::query(
        "SELECT set_config('statement_timeout', $1, true), set_config('jit', 'off', true),
                set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
    .bind(STATEMENT_TIMEOUT)
    .execute(conn)
    .await?;
    Ok(())
}

fn is_filtered(filter: &AnalyticsFilter<'_>) -> bool {
    filter.namespace.is_some() || filter.name.is_some()
}

// The SQL. Parameters: $1 since, $2 until, $3 namespace, $4 name, $5 limit.
// Durations are computed in numeric (exact for timestamps' microseconds)
// and cast to float8 once, so a 1 ms duration is exactly 1.0.

/// Tasks of the window, grouped by `$group`, then `$select` over the groups.
macro_rules! task_stats_sql {
    ($group:literal, $select:literal) => {
        concat!(
            "SELECT namespace, name, version, finished, complete, error, cancelled,
                    resolved_manually, samples,
                    pct[1] AS p50_ms, pct[2] AS p95_ms, pct[3] AS p99_ms, max_ms, mean_ms
             FROM (SELECT namespace, name, version,
                          count(*) AS finished,
                          count(*) FILTER (WHERE state = 'complete') AS complete,
                          count(*) FILTER (WHERE state = 'error') AS error,
                          count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                          count(*) FILTER (WHERE state = 'resolved_manually') AS resolved_manually,
                          count(*) FILTER (WHERE state = 'complete') AS samples,
                          percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms)
                              FILTER (WHERE state = 'complete') AS pct,
                          max(ms) FILTER (WHERE state = 'complete') AS max_ms,
                          avg(ms) FILTER (WHERE state = 'complete') AS mean_ms
                   FROM (SELECT t.namespace, t.name, t.version, t.state,
                                (extract(epoch FROM t.completed_at - t.created_at) * 1000)::float8 AS ms
                         FROM tasker.tasks t
                         WHERE t.completed_at >= $1 AND t.completed_at < $2
                           AND ($3::text IS NULL OR t.namespace = $3)
                           AND ($4::text IS NULL OR t.name = $4)) AS finished_tasks
                   ",
            $group,
            ") AS per_group ",
            $select
        )
    };
}

/// The total row first (its namespace is NULL; tasks always have one),
/// then up to `$5` templates.
const TASK_STATS: &str = task_stats_sql!(
    "GROUP BY GROUPING SETS ((), (namespace, name, version))",
    "ORDER BY namespace IS NOT NULL, finished DESC, namespace, name, version
     LIMIT $5::int8 + 1"
);

const SLOWEST_TEMPLATES: &str = task_stats_sql!(
    "GROUP BY namespace, name, version HAVING count(*) FILTER (WHERE state = 'complete') > 0",
    "ORDER BY p95_ms DESC, namespace, name, version LIMIT $5::int8"
);

/// Whether a failed attempt `a` put its step in `error`: the step's
/// transition to `error` at that attempt (found through the transitions'
/// `(workflow_step_uuid, sort_key)` key; looked up for failures only).
macro_rules! ended_in_error_sql {
    () => {
        "CASE WHEN a.outcome = 'failure' THEN EXISTS (
             SELECT 1 FROM tasker.workflow_step_transitions x
             WHERE x.workflow_step_uuid = a.workflow_step_uuid
               AND x.attempt = a.attempt AND x.to_state = 'error') ELSE false END"
    };
}

/// Attempts of the window (`$join`ed and filtered by `$filter`).
macro_rules! step_stats_sql {
    ($join:literal, $filter:literal) => {
        concat!(
            "SELECT completed, failed_attempts, ended_in_error, samples,
                    pct[1] AS p50_ms, pct[2] AS p95_ms, pct[3] AS p99_ms, max_ms, mean_ms
             FROM (SELECT count(*) FILTER (WHERE outcome = 'success') AS completed,
                          count(*) FILTER (WHERE outcome = 'failure') AS failed_attempts,
                          count(*) FILTER (WHERE ended_in_error) AS ended_in_error,
                          count(ms) AS samples,
                          percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms) AS pct,
                          max(ms) AS max_ms, avg(ms) AS mean_ms
                   FROM (SELECT a.outcome,
                                (extract(epoch FROM a.finished_at - a.started_at) * 1000)::float8 AS ms,
                                ",
            ended_in_error_sql!(),
            " AS ended_in_error
                         FROM tasker.workflow_step_result_audit a ",
            $join,
            " WHERE a.finished_at >= $1 AND a.finished_at < $2
                           AND a.accepted AND a.outcome <> 'manual' ",
            $filter,
            ") AS attempts) AS totals"
        )
    };
}

/// Without filters the attempts need no join at all (`Statement::sql`
/// picks this variant only when both filters are unset; the guard keeps
/// every parameter referenced).
const STEP_STATS: &str = step_stats_sql!("", "AND $3::text IS NULL AND $4::text IS NULL");

const STEP_STATS_FILTERED: &str = step_stats_sql!(
    "JOIN tasker.tasks t ON t.task_uuid = a.task_uuid",
    "AND ($3::text IS NULL OR t.namespace = $3) AND ($4::text IS NULL OR t.name = $4)"
);

/// One grouped pass over the window's attempts, materialized, then the
/// top `$5` of each list; ties go by name so the order is stable.
const STEP_RANKINGS: &str = concat!(
    "WITH per_step AS MATERIALIZED (
         SELECT namespace, name, step, attempts, retries, failed_attempts, ended_in_error,
                max_attempt, samples,
                pct[1] AS p50_ms, pct[2] AS p95_ms, pct[3] AS p99_ms, max_ms, mean_ms
         FROM (SELECT t.namespace, t.name, s.template_step AS step,
                      count(*) AS attempts,
                      count(*) FILTER (WHERE a.attempt > 1) AS retries,
                      count(*) FILTER (WHERE a.outcome = 'failure') AS failed_attempts,
                      count(*) FILTER (WHERE a.ended_in_error) AS ended_in_error,
                      max(a.attempt) AS max_attempt,
                      count(a.ms) AS samples,
                      percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY a.ms) AS pct,
                      max(a.ms) AS max_ms, avg(a.ms) AS mean_ms
               FROM (SELECT a.workflow_step_uuid, a.task_uuid, a.attempt, a.outcome,
                            (extract(epoch FROM a.finished_at - a.started_at) * 1000)::float8 AS ms,
                            ",
    ended_in_error_sql!(),
    " AS ended_in_error
                     FROM tasker.workflow_step_result_audit a
                     WHERE a.finished_at >= $1 AND a.finished_at < $2
                       AND a.accepted AND a.outcome <> 'manual') AS a
               JOIN tasker.workflow_steps s ON s.workflow_step_uuid = a.workflow_step_uuid
               JOIN tasker.tasks t ON t.task_uuid = a.task_uuid
               WHERE ($3::text IS NULL OR t.namespace = $3) AND ($4::text IS NULL OR t.name = $4)
               GROUP BY t.namespace, t.name, s.template_step) AS per_group)
     (SELECT 'slowest' AS list, * FROM per_step
      ORDER BY p95_ms DESC NULLS LAST, namespace, name, step LIMIT $5::int8)
     UNION ALL
     (SELECT 'retried', * FROM per_step WHERE retries > 0
      ORDER BY retries DESC, namespace, name, step LIMIT $5::int8)
     UNION ALL
     (SELECT 'errored', * FROM per_step WHERE failed_attempts > 0
      ORDER BY ended_in_error DESC, failed_attempts DESC, namespace, name, step LIMIT $5::int8)"
);

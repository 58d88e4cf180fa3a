//! Analytics (SPEC §8.1): the performance and bottleneck reports over the
//! window that ends now. The figures and their definitions are
//! `tasker_db::analytics`'s and `tasker_types::analytics`'s; this layer
//! checks the caller and the query, fixes the window, and shapes the rows.

use chrono::{DateTime, Utc};
use tasker_db::DbError;
use tasker_db::analytics::{self as db, AnalyticsFilter, DurationStats, StepRanking, TaskStats};
use tasker_types::analytics::{
    AnalyticsQuery, AnalyticsScope, BottleneckReport, DurationPercentiles, PerformanceReport,
    StepBottleneck, TemplatePerformance, ratio,
};

use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::services::error::{ErrorKind, ServiceError};

/// Tasks and step attempts finished in the window, with error rate and
/// duration percentiles, overall and per template version.
///
/// # Errors
/// Forbidden without `analytics:read`; invalid (400) for a window, limit
/// or filter out of bounds; unavailable on a transient database failure
/// or when the report runs past its statement timeout (30 s).
pub async fn performance(
    orchestrator: &Orchestrator,
    principal: &Principal,
    query: AnalyticsQuery,
) -> Result<PerformanceReport, ServiceError> {
    principal.require(Permission::AnalyticsRead)?;
    let scope = query.validate().map_err(ServiceError::invalid)?;
    let until = Utc::now();
    let filter = window_filter(&scope, until);
    let stats = db::performance(orchestrator.pool(), &filter, scope.limit)
        .await
        .map_err(report_failed)?;
    let tasks = &stats.tasks;
    Ok(PerformanceReport {
        window_start: filter.since,
        window_end: until,
        namespace: scope.namespace.clone(),
        name: scope.name.clone(),
        tasks_finished: count(tasks.finished),
        tasks_completed: count(tasks.complete),
        tasks_failed: count(tasks.error),
        tasks_cancelled: count(tasks.cancelled),
        tasks_resolved_manually: count(tasks.resolved_manually),
        error_rate: ratio(count(tasks.error), count(tasks.finished)),
        steps_completed: count(stats.steps.completed),
        steps_failed: count(stats.steps.ended_in_error),
        step_attempts_failed: count(stats.steps.failed_attempts),
        task_duration_ms: durations(&tasks.duration),
        step_duration_ms: durations(&stats.steps.duration),
        by_template: stats.by_template.iter().map(template).collect(),
    })
}

/// The slowest templates and steps, and the steps retried or failing most,
/// in the window.
///
/// # Errors
/// As [`performance`].
pub async fn bottlenecks(
    orchestrator: &Orchestrator,
    principal: &Principal,
    query: AnalyticsQuery,
) -> Result<BottleneckReport, ServiceError> {
    principal.require(Permission::AnalyticsRead)?;
    let scope = query.validate().map_err(ServiceError::invalid)?;
    let until = Utc::now();
    let filter = window_filter(&scope, until);
    let found = db::bottlenecks(orchestrator.pool(), &filter, scope.limit)
        .await
        .map_err(report_failed)?;
    let steps = |list: &[StepRanking]| -> Vec<StepBottleneck> { list.iter().map(step).collect() };
    Ok(BottleneckReport {
        window_start: filter.since,
        window_end: until,
        namespace: scope.namespace.clone(),
        name: scope.name.clone(),
        slowest_templates: found.slowest_templates.iter().map(template).collect(),
        slowest_steps: steps(&found.slowest_steps),
        most_retried_steps: steps(&found.most_retried_steps),
        most_errored_steps: steps(&found.most_errored_steps),
    })
}

/// The window of `scope` that ends at `until`, with its filters.
fn window_filter(scope: &AnalyticsScope, until: DateTime<Utc>) -> AnalyticsFilter<'_> {
    AnalyticsFilter {
        since: scope.since(until),
        until,
        namespace: scope.namespace.as_deref(),
        name: scope.name.as_deref(),
    }
}

/// PostgreSQL's `query_canceled`: here, the reports' statement timeout.
const QUERY_CANCELED: &str = "57014";

/// A report cut off by its statement timeout is a 503 that says what to
/// do (a 5xx that is not a bug); everything else is classified as usual.
fn report_failed(err: DbError) -> ServiceError {
    let timed_out = matches!(&err, DbError::Database(sqlx::Error::Database(e))
        if e.code().is_some_and(|c| c == QUERY_CANCELED));
    if timed_out {
        tracing::warn!(error = %err, "analytics report cut off by its statement timeout");
        return ServiceError::new(
            ErrorKind::Unavailable,
            "analytics_timeout",
            "the report took too long; ask for a shorter `window_minutes` or filter by `namespace` or `name`",
        );
    }
    err.into()
}

/// A row count (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn durations(d: &DurationStats) -> DurationPercentiles {
    DurationPercentiles {
        count: count(d.samples),
        p50_ms: d.p50_ms,
        p95_ms: d.p95_ms,
        p99_ms: d.p99_ms,
        max_ms: d.max_ms,
        mean_ms: d.mean_ms,
    }
}

fn template(t: &TaskStats) -> TemplatePerformance {
    TemplatePerformance {
        namespace: t.namespace.clone().unwrap_or_default(),
        name: t.name.clone().unwrap_or_default(),
        version: t.version.clone().unwrap_or_default(),
        tasks_finished: count(t.finished),
        tasks_completed: count(t.complete),
        tasks_failed: count(t.error),
        tasks_cancelled: count(t.cancelled),
        error_rate: ratio(count(t.error), count(t.finished)),
        task_duration_ms: durations(&t.duration),
    }
}

fn step(s: &StepRanking) -> StepBottleneck {
    StepBottleneck {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        step: s.step.clone(),
        attempts: count(s.attempts),
        retries: count(s.retries),
        failed_attempts: count(s.failed_attempts),
        steps_failed: count(s.ended_in_error),
        max_attempt: u32::try_from(s.max_attempt).unwrap_or(0),
        failure_rate: ratio(count(s.failed_attempts), count(s.attempts)),
        duration_ms: durations(&s.duration),
    }
}

//! Analytics API shapes (SPEC §8.1, `/v1/analytics/performance` and
//! `/v1/analytics/bottlenecks`) and the rules that check their query.
//!
//! Definitions the figures follow:
//! - The window ends when the request is served and is `window_minutes`
//!   long; a task counts when it *finished* (reached a terminal state) in
//!   it, a step attempt when it finished in it.
//! - `error_rate` = tasks finished in `error` ÷ tasks finished (any
//!   terminal state: `complete`, `error`, `cancelled`, `resolved_manually`);
//!   0 when none finished.
//! - Task duration: `completed_at - created_at` of tasks that ended
//!   `complete`.
//! - Step duration: the handler's run time of one attempt (`finished_at -
//!   started_at` in the attempt audit), successful or not; accepted worker
//!   reports only.
//! - Percentiles interpolate linearly between the two nearest samples
//!   (PostgreSQL's `percentile_cont`): the p50 of 1, 2, …, 100 ms is 50.5 ms.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{IDENTIFIER_RULE, NAMESPACE_RULE, is_valid_identifier, is_valid_namespace};

/// Window length when the query gives none, in minutes.
pub const DEFAULT_WINDOW_MINUTES: u32 = 60;
/// Longest window, in minutes (30 days).
pub const MAX_WINDOW_MINUTES: u32 = 43_200;
/// Length of each top-N list when the query gives none.
pub const DEFAULT_LIMIT: u32 = 10;
/// Longest top-N list.
pub const MAX_LIMIT: u32 = 100;

/// The query of both analytics operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Length of the window that ends now, in minutes: 1 to 43200 (30
    /// days); 60 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u32>,
    /// Only tasks of this namespace (and their steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only tasks of templates with this name (and their steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Length of each top-N list: 1 to 100; 10 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A checked [`AnalyticsQuery`]: defaults applied, bounds enforced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsScope {
    /// The window's length.
    pub window: TimeDelta,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this template name.
    pub name: Option<String>,
    /// Length of each top-N list.
    pub limit: u32,
}

impl AnalyticsScope {
    /// Where the window that ends at `until` starts.
    pub fn since(&self, until: DateTime<Utc>) -> DateTime<Utc> {
        until - self.window
    }
}

impl AnalyticsQuery {
    /// The window's length: `window_minutes` or its default.
    ///
    /// # Errors
    /// A message naming `window_minutes` when it is outside 1..=43200.
    pub fn window(&self) -> Result<TimeDelta, String> {
        let minutes = self.window_minutes.unwrap_or(DEFAULT_WINDOW_MINUTES);
        if !(1..=MAX_WINDOW_MINUTES).contains(&minutes) {
            return Err(format!(
                "`window_minutes` must be between 1 and {MAX_WINDOW_MINUTES} (30 days); got {minutes}"
            ));
        }
        Ok(TimeDelta::minutes(i64::from(minutes)))
    }

    /// The length of each top-N list: `limit` or its default.
    ///
    /// # Errors
    /// A message naming `limit` when it is outside 1..=100.
    pub fn top_n(&self) -> Result<u32, String> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!(
                "`limit` must be between 1 and {MAX_LIMIT}; got {limit}"
            ));
        }
        Ok(limit)
    }

    /// Checks the filters against the name rules, so a typo is a 400
    /// rather than an empty report.
    ///
    /// # Errors
    /// A message naming `namespace` or `name` and the rule it breaks.
    pub fn check_filters(&self) -> Result<(), String> {
        if let Some(namespace) = &self.namespace
            && !is_valid_namespace(namespace)
        {
            return Err(format!("`namespace` must be {NAMESPACE_RULE}"));
        }
        if let Some(name) = &self.name
            && !is_valid_identifier(name)
        {
            return Err(format!("`name` must be {IDENTIFIER_RULE}"));
        }
        Ok(())
    }

    /// Every check, and the defaults applied.
    ///
    /// # Errors
    /// The first failing check's message.
    pub fn validate(self) -> Result<AnalyticsScope, String> {
        let window = self.window()?;
        let limit = self.top_n()?;
        self.check_filters()?;
        Ok(AnalyticsScope {
            window,
            namespace: self.namespace,
            name: self.name,
            limit,
        })
    }
}

/// `part ÷ whole`, 0 when `whole` is 0 (an empty window has no errors).
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Durations of a set of samples in milliseconds; the statistics are null
/// when there are no samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurationPercentiles {
    /// How many samples.
    pub count: u64,
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

/// The tasks of one template version that finished in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplatePerformance {
    /// Namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Tasks that reached a terminal state.
    pub tasks_finished: u64,
    /// … ended `complete`.
    pub tasks_completed: u64,
    /// … ended `error`.
    pub tasks_failed: u64,
    /// … ended `cancelled`.
    pub tasks_cancelled: u64,
    /// `tasks_failed ÷ tasks_finished`.
    pub error_rate: f64,
    /// Durations of the completed ones.
    pub task_duration_ms: DurationPercentiles,
}

/// `GET /v1/analytics/performance`: what finished in the window and how
/// long it took.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerformanceReport {
    /// Start of the window, inclusive.
    pub window_start: DateTime<Utc>,
    /// End of the window (when the report was made), exclusive.
    pub window_end: DateTime<Utc>,
    /// The namespace filter, if any.
    pub namespace: Option<String>,
    /// The template name filter, if any.
    pub name: Option<String>,
    /// Tasks that reached a terminal state.
    pub tasks_finished: u64,
    /// … ended `complete`.
    pub tasks_completed: u64,
    /// … ended `error`.
    pub tasks_failed: u64,
    /// … ended `cancelled`.
    pub tasks_cancelled: u64,
    /// … ended `resolved_manually`.
    pub tasks_resolved_manually: u64,
    /// `tasks_failed ÷ tasks_finished` (0 when none finished).
    pub error_rate: f64,
    /// Step attempts that succeeded.
    pub steps_completed: u64,
    /// Step attempts that failed and left their step in `error`.
    pub steps_failed: u64,
    /// Step attempts that failed, retried or not.
    pub step_attempts_failed: u64,
    /// Durations of completed tasks.
    pub task_duration_ms: DurationPercentiles,
    /// Handler run times of step attempts.
    pub step_duration_ms: DurationPercentiles,
    /// Per template version, most finished tasks first, at most `limit`.
    pub by_template: Vec<TemplatePerformance>,
}

/// One template step's attempts in the window, over every task of its
/// template (all versions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepBottleneck {
    /// The task's namespace.
    pub namespace: String,
    /// The task's template name.
    pub name: String,
    /// The template step (batch workers count under the step they were
    /// made from).
    pub step: String,
    /// Attempts.
    pub attempts: u64,
    /// Attempts after the first of their step.
    pub retries: u64,
    /// Attempts that failed.
    pub failed_attempts: u64,
    /// Failed attempts that left their step in `error`.
    pub steps_failed: u64,
    /// The highest attempt number seen.
    pub max_attempt: u32,
    /// `failed_attempts ÷ attempts`.
    pub failure_rate: f64,
    /// Handler run times.
    pub duration_ms: DurationPercentiles,
}

/// `GET /v1/analytics/bottlenecks`: where the time and the failures go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BottleneckReport {
    /// Start of the window, inclusive.
    pub window_start: DateTime<Utc>,
    /// End of the window (when the report was made), exclusive.
    pub window_end: DateTime<Utc>,
    /// The namespace filter, if any.
    pub namespace: Option<String>,
    /// The template name filter, if any.
    pub name: Option<String>,
    /// Template versions by p95 duration of their completed tasks,
    /// slowest first.
    pub slowest_templates: Vec<TemplatePerformance>,
    /// Template steps by p95 handler run time, slowest first.
    pub slowest_steps: Vec<StepBottleneck>,
    /// Template steps with retries, most retries first.
    pub most_retried_steps: Vec<StepBottleneck>,
    /// Template steps with failed attempts: most that left their step in
    /// `error` first, then most failed attempts.
    pub most_errored_steps: Vec<StepBottleneck>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(window_minutes: Option<u32>, limit: Option<u32>) -> AnalyticsQuery {
        AnalyticsQuery {
            window_minutes,
            limit,
            ..AnalyticsQuery::default()
        }
    }

    #[test]
    fn an_empty_query_is_the_last_hour_and_ten_of_each() {
        let scope = AnalyticsQuery::default().validate().unwrap();
        assert_eq!(scope.window, TimeDelta::minutes(60));
        assert_eq!(scope.limit, 10);
        let until = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            scope.since(until),
            DateTime::parse_from_rfc3339("2026-12-02T11:00:00Z").unwrap()
        );
    }

    #[test]
    fn the_window_is_one_minute_to_thirty_days() {
        assert_eq!(query(Some(1), None).window(), Ok(TimeDelta::minutes(1)));
        assert_eq!(query(Some(43_200), None).window(), Ok(TimeDelta::days(30)));
        for bad in [0, 43_201, u32::MAX] {
            let err = query(Some(bad), None).window().unwrap_err();
            assert!(err.contains("`window_minutes`"), "{err}");
            assert!(err.contains(&bad.to_string()), "{err}");
        }
    }

    #[test]
    fn the_limit_is_one_to_a_hundred() {
        assert_eq!(query(None, Some(1)).top_n(), Ok(1));
        assert_eq!(query(None, Some(100)).top_n(), Ok(100));
        for bad in [0, 101] {
            let err = query(None, Some(bad)).top_n().unwrap_err();
            assert!(err.starts_with("`limit`"), "{err}");
        }
    }

    #[test]
    fn filters_follow_the_name_rules() {
        let good = AnalyticsQuery {
            namespace: Some("payments".into()),
            name: Some("refund_order".into()),
            ..AnalyticsQuery::default()
        };
        assert!(good.check_filters().is_ok());
        let bad_namespace = AnalyticsQuery {
            namespace: Some(String::new()),
            ..AnalyticsQuery::default()
        };
        assert!(
            bad_namespace
                .check_filters()
                .unwrap_err()
                .starts_with("`namespace`")
        );
        let bad_name = AnalyticsQuery {
            name: Some("Refund Order".into()),
            ..AnalyticsQuery::default()
        };
        assert!(bad_name.check_filters().unwrap_err().starts_with("`name`"));
        assert!(bad_name.validate().is_err());
    }

    #[test]
    fn unknown_query_fields_are_refused() {
        let parsed: Result<AnalyticsQuery, _> =
            serde_json::from_value(serde_json::json!({"window_minutes": 5, "windows": 1}));
        assert!(parsed.is_err());
    }

    #[test]
    fn ratios_of_nothing_are_zero() {
        assert_eq!(ratio(0, 0), 0.0);
        assert_eq!(ratio(1, 4), 0.25);
        assert_eq!(ratio(3, 3), 1.0);
    }

    #[test]
    fn report_fields_are_snake_case_and_always_present() {
        let value = serde_json::to_value(PerformanceReport::default()).unwrap();
        for key in [
            "window_start",
            "window_end",
            "tasks_finished",
            "tasks_completed",
            "tasks_failed",
            "error_rate",
            "steps_completed",
            "steps_failed",
            "task_duration_ms",
            "step_duration_ms",
            "by_template",
        ] {
            assert!(value.get(key).is_some(), "{key} missing: {value}");
        }
        assert!(value["task_duration_ms"]["p95_ms"].is_null());
    }
}

//! Analytics: the request (both ways; every field is optional, so it
//! always converts) and the performance and bottleneck reports.

use tasker_types::analytics::{
    AnalyticsQuery, BottleneckReport, DurationPercentiles, PerformanceReport, StepBottleneck,
    TemplatePerformance,
};

use super::time::timestamp;
use crate::v1;

impl From<v1::AnalyticsRequest> for AnalyticsQuery {
    fn from(request: v1::AnalyticsRequest) -> Self {
        Self {
            window_minutes: request.window_minutes,
            namespace: request.namespace,
            name: request.name,
            limit: request.limit,
        }
    }
}

impl From<AnalyticsQuery> for v1::AnalyticsRequest {
    fn from(query: AnalyticsQuery) -> Self {
        Self {
            window_minutes: query.window_minutes,
            namespace: query.namespace,
            name: query.name,
            limit: query.limit,
        }
    }
}

impl From<DurationPercentiles> for v1::DurationPercentiles {
    fn from(d: DurationPercentiles) -> Self {
        Self {
            count: d.count,
            p50_ms: d.p50_ms,
            p95_ms: d.p95_ms,
            p99_ms: d.p99_ms,
            max_ms: d.max_ms,
            mean_ms: d.mean_ms,
        }
    }
}

impl From<TemplatePerformance> for v1::TemplatePerformance {
    fn from(t: TemplatePerformance) -> Self {
        Self {
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            tasks_finished: t.tasks_finished,
            tasks_completed: t.tasks_completed,
            tasks_failed: t.tasks_failed,
            tasks_cancelled: t.tasks_cancelled,
            error_rate: t.error_rate,
            task_duration_ms: Some(t.task_duration_ms.into()),
        }
    }
}

impl From<PerformanceReport> for v1::PerformanceReport {
    fn from(r: PerformanceReport) -> Self {
        Self {
            window_start: Some(timestamp(r.window_start)),
            window_end: Some(timestamp(r.window_end)),
            namespace: r.namespace,
            name: r.name,
            tasks_finished: r.tasks_finished,
            tasks_completed: r.tasks_completed,
            tasks_failed: r.tasks_failed,
            tasks_cancelled: r.tasks_cancelled,
            tasks_resolved_manually: r.tasks_resolved_manually,
            error_rate: r.error_rate,
            steps_completed: r.steps_completed,
            steps_failed: r.steps_failed,
            step_attempts_failed: r.step_attempts_failed,
            task_duration_ms: Some(r.task_duration_ms.into()),
            step_duration_ms: Some(r.step_duration_ms.into()),
            by_template: r.by_template.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<StepBottleneck> for v1::StepBottleneck {
    fn from(s: StepBottleneck) -> Self {
        Self {
            namespace: s.namespace,
            name: s.name,
            step: s.step,
            attempts: s.attempts,
            retries: s.retries,
            failed_attempts: s.failed_attempts,
            steps_failed: s.steps_failed,
            max_attempt: s.max_attempt,
            failure_rate: s.failure_rate,
            duration_ms: Some(s.duration_ms.into()),
        }
    }
}

impl From<BottleneckReport> for v1::BottleneckReport {
    fn from(r: BottleneckReport) -> Self {
        let steps = |list: Vec<StepBottleneck>| -> Vec<v1::StepBottleneck> {
            list.into_iter().map(Into::into).collect()
        };
        Self {
            window_start: Some(timestamp(r.window_start)),
            window_end: Some(timestamp(r.window_end)),
            namespace: r.namespace,
            name: r.name,
            slowest_templates: r.slowest_templates.into_iter().map(Into::into).collect(),
            slowest_steps: steps(r.slowest_steps),
            most_retried_steps: steps(r.most_retried_steps),
            most_errored_steps: steps(r.most_errored_steps),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn requests_round_trip() {
        let query = AnalyticsQuery {
            window_minutes: Some(1440),
            namespace: Some("payments".into()),
            name: None,
            limit: Some(5),
        };
        let message = v1::AnalyticsRequest::from(query.clone());
        assert_eq!(AnalyticsQuery::from(message), query);
    }

    #[test]
    fn reports_keep_every_figure_and_unset_percentiles() {
        let at = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let report = PerformanceReport {
            window_start: at,
            window_end: at,
            tasks_finished: 4,
            tasks_failed: 1,
            error_rate: 0.25,
            task_duration_ms: DurationPercentiles {
                count: 3,
                p50_ms: Some(50.5),
                ..DurationPercentiles::default()
            },
            by_template: vec![TemplatePerformance::default()],
            ..PerformanceReport::default()
        };
        let message = v1::PerformanceReport::from(report);
        assert_eq!(message.window_start.unwrap().seconds, 1_767_225_600);
        assert_eq!((message.tasks_finished, message.tasks_failed), (4, 1));
        assert_eq!(message.error_rate, 0.25);
        let durations = message.task_duration_ms.unwrap();
        assert_eq!((durations.count, durations.p50_ms), (3, Some(50.5)));
        assert_eq!(durations.p99_ms, None);
        assert_eq!(message.by_template.len(), 1);
    }
}

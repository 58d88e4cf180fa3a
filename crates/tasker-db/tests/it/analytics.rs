//! Analytics over a fixed window, on rows written straight into the tables
//! with durations chosen so every figure is known exactly.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use tasker_db::analytics::{self, AnalyticsFilter, Statement, StepRanking, TaskStats};
use tasker_db::testing::TestDb;
use uuid::Uuid;

/// Start of the window every test reads (an hour long).
fn since() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn until() -> DateTime<Utc> {
    since() + TimeDelta::hours(1)
}

fn window() -> AnalyticsFilter<'static> {
    AnalyticsFilter {
        since: since(),
        until: until(),
        namespace: None,
        name: None,
    }
}

/// An instant `minutes` into the window.
fn at(minutes: i64) -> DateTime<Utc> {
    since() + TimeDelta::minutes(minutes)
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

/// `percentile_cont` as PostgreSQL computes it: interpolate linearly
/// between the samples at ranks ⌊p·(n−1)⌋ and ⌈p·(n−1)⌉ (0-based).
fn interpolated(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (rank - rank.floor()) * (sorted[high] - sorted[low])
}

struct Template {
    uuid: Uuid,
    namespace: &'static str,
    name: &'static str,
}

async fn template(pool: &PgPool, namespace: &'static str, name: &'static str) -> Template {
    sqlx::query("INSERT INTO tasker.task_namespaces (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(namespace)
        .execute(pool)
        .await
        .unwrap();
    let uuid = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tasker.named_tasks
             (named_task_uuid, namespace, name, version, template, content_hash, identity_strategy)
         VALUES ($1, $2, $3, '1.0.0', '{}', 'test', 'always_unique')",
    )
    .bind(uuid)
    .bind(namespace)
    .bind(name)
    .execute(pool)
    .await
    .unwrap();
    Template {
        uuid,
        namespace,
        name,
    }
}

/// A task that reached `state` at `finished`, `took` after it was created;
/// with `finished` = `None` (and a state that is not terminal) it is still
/// running.
async fn task(
    pool: &PgPool,
    template: &Template,
    state: &str,
    finished: Option<DateTime<Utc>>,
    took: TimeDelta,
) -> Uuid {
    let uuid = Uuid::now_v7();
    let created = finished.unwrap_or(since()) - took;
    sqlx::query(
        "INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace, name, version, state,
                                   context, correlation_id, created_at, updated_at, completed_at)
         VALUES ($1, $2, $3, $4, '1.0.0', $5, '{}', $6, $7, $7, $8)",
    )
    .bind(uuid)
    .bind(template.uuid)
    .bind(template.namespace)
    .bind(template.name)
    .bind(state)
    .bind(Uuid::now_v7())
    .bind(created)
    .bind(finished)
    .execute(pool)
    .await
    .unwrap();
    uuid
}

async fn complete_task(
    pool: &PgPool,
    template: &Template,
    finished: DateTime<Utc>,
    took: TimeDelta,
) -> Uuid {
    task(pool, template, "complete", Some(finished), took).await
}

struct Step {
    uuid: Uuid,
    task: Uuid,
}

/// A step of `task` made from template step `name` (instance `instance`).
async fn step(pool: &PgPool, task: Uuid, name: &str, instance: usize, state: &str) -> Step {
    let uuid = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tasker.workflow_steps
             (workflow_step_uuid, task_uuid, name, template_step, step_type, callable,
              max_attempts, retryable, backoff, backoff_base_ms, max_backoff_ms, state, attempts)
         VALUES ($1, $2, $3, $4, 'standard', 'tasker::noop', 3, true, 'none', 0, 0, $5, 1)",
    )
    .bind(uuid)
    .bind(task)
    .bind(format!("{name}_{instance}"))
    .bind(name)
    .bind(state)
    .execute(pool)
    .await
    .unwrap();
    Step { uuid, task }
}

/// One finished attempt, as the worker's completer records it.
struct Attempt {
    n: i32,
    outcome: &'static str,
    finished: DateTime<Utc>,
    /// The handler's run time; `None` for operator actions.
    ran: Option<TimeDelta>,
    accepted: bool,
}

impl Attempt {
    fn succeeded(n: i32, finished: DateTime<Utc>, ran: TimeDelta) -> Self {
        Self {
            n,
            outcome: "success",
            finished,
            ran: Some(ran),
            accepted: true,
        }
    }

    fn failed(n: i32, finished: DateTime<Utc>, ran: TimeDelta) -> Self {
        Self {
            outcome: "failure",
            ..Self::succeeded(n, finished, ran)
        }
    }
}

async fn record(pool: &PgPool, step: &Step, attempt: Attempt) {
    sqlx::query(
        "INSERT INTO tasker.workflow_step_result_audit
             (audit_uuid, workflow_step_uuid, task_uuid, attempt, outcome, accepted,
              started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(step.uuid)
    .bind(step.task)
    .bind(attempt.n)
    .bind(attempt.outcome)
    .bind(attempt.accepted)
    .bind(attempt.ran.map(|ran| attempt.finished - ran))
    .bind(attempt.finished)
    .execute(pool)
    .await
    .unwrap();
}

/// The step's move to `error` after attempt `n` (orchestration's `fail`).
async fn failed_for_good(pool: &PgPool, step: &Step, n: i32) {
    sqlx::query(
        "INSERT INTO tasker.workflow_step_transitions
             (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state, to_state,
              event, attempt, sort_key)
         VALUES ($1, $2, $3, 'enqueued_as_error_for_orchestration', 'error', 'fail', $4, 1)",
    )
    .bind(Uuid::now_v7())
    .bind(step.uuid)
    .bind(step.task)
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

fn names(rows: &[StepRanking]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r.name.as_str(), r.step.as_str()))
        .collect()
}

/// Attempts, retries, failed attempts, those that ended in error, highest attempt.
fn counts(r: &StepRanking) -> (i64, i64, i64, i64, i32) {
    (
        r.attempts,
        r.retries,
        r.failed_attempts,
        r.ended_in_error,
        r.max_attempt,
    )
}

fn template_names(rows: &[TaskStats]) -> Vec<&str> {
    rows.iter().filter_map(|r| r.name.as_deref()).collect()
}

#[tokio::test]
async fn task_durations_of_1_to_100_ms_give_the_interpolated_percentiles() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let checkout = template(pool, "shop", "checkout").await;
    for d in 1..=100 {
        complete_task(pool, &checkout, at(1) + TimeDelta::seconds(d), ms(d)).await;
    }
    // Finished otherwise: counted, but their durations are not.
    for state in ["error", "error", "cancelled", "resolved_manually"] {
        task(pool, &checkout, state, Some(at(30)), TimeDelta::seconds(10)).await;
    }

    let report = analytics::performance(pool, &window(), 10).await.unwrap();
    let tasks = &report.tasks;
    assert_eq!(
        (
            tasks.finished,
            tasks.complete,
            tasks.error,
            tasks.cancelled,
            tasks.resolved_manually
        ),
        (104, 100, 2, 1, 1)
    );
    let samples: Vec<f64> = (1..=100).map(f64::from).collect();
    let expected = [(0.5, 50.5), (0.95, 95.05), (0.99, 99.01)];
    for (p, value) in expected {
        assert_eq!(interpolated(&samples, p), value, "p{p}");
    }
    let d = &tasks.duration;
    assert_eq!(d.samples, 100);
    assert_eq!(
        (d.p50_ms, d.p95_ms, d.p99_ms),
        (Some(50.5), Some(95.05), Some(99.01))
    );
    assert_eq!((d.max_ms, d.mean_ms), (Some(100.0), Some(50.5)));

    assert_eq!(report.by_template.len(), 1);
    let only = &report.by_template[0];
    assert_eq!(
        (
            only.namespace.as_deref(),
            only.name.as_deref(),
            only.version.as_deref()
        ),
        (Some("shop"), Some("checkout"), Some("1.0.0"))
    );
    assert_eq!((only.finished, &only.duration), (104, d));
}

#[tokio::test]
async fn step_durations_are_handler_run_times_of_accepted_worker_attempts() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let checkout = template(pool, "shop", "checkout").await;
    let task = complete_task(pool, &checkout, at(50), TimeDelta::seconds(1)).await;
    for d in 1..=100 {
        let s = step(pool, task, "work", d as usize, "complete").await;
        record(
            pool,
            &s,
            Attempt::succeeded(1, at(10) + TimeDelta::seconds(d), ms(d)),
        )
        .await;
    }
    // Neither counts: a stale report that was rejected, and an operator's
    // action (no handler ran).
    let extra = step(pool, task, "work", 0, "complete").await;
    record(
        pool,
        &extra,
        Attempt {
            accepted: false,
            ..Attempt::succeeded(1, at(20), TimeDelta::seconds(10))
        },
    )
    .await;
    record(
        pool,
        &extra,
        Attempt {
            outcome: "manual",
            ran: None,
            ..Attempt::succeeded(1, at(21), TimeDelta::zero())
        },
    )
    .await;

    let steps = analytics::step_stats(pool, &window()).await.unwrap();
    assert_eq!(
        (steps.completed, steps.failed_attempts, steps.ended_in_error),
        (100, 0, 0)
    );
    let d = &steps.duration;
    assert_eq!(d.samples, 100);
    assert_eq!(
        (d.p50_ms, d.p95_ms, d.p99_ms),
        (Some(50.5), Some(95.05), Some(99.01))
    );
    assert_eq!((d.max_ms, d.mean_ms), (Some(100.0), Some(50.5)));
}

#[tokio::test]
async fn the_window_includes_its_start_and_excludes_its_end() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let checkout = template(pool, "shop", "checkout").await;
    let tick = TimeDelta::microseconds(1);
    let inside = [(since(), 10), (until() - tick, 20)];
    let day = TimeDelta::days(1);
    let outside = [since() - tick, until(), until() + day, since() - day];
    for (finished, took) in inside {
        let t = complete_task(pool, &checkout, finished, ms(took)).await;
        let s = step(pool, t, "work", 1, "complete").await;
        record(pool, &s, Attempt::succeeded(1, finished, ms(took))).await;
    }
    for finished in outside {
        let t = complete_task(pool, &checkout, finished, TimeDelta::seconds(100)).await;
        let s = step(pool, t, "work", 1, "complete").await;
        record(
            pool,
            &s,
            Attempt::succeeded(1, finished, TimeDelta::seconds(100)),
        )
        .await;
    }
    // Still running: no completed_at, never in a window.
    task(
        pool,
        &checkout,
        "steps_in_process",
        None,
        TimeDelta::minutes(5),
    )
    .await;

    let report = analytics::performance(pool, &window(), 10).await.unwrap();
    assert_eq!(report.tasks.finished, 2);
    assert_eq!(report.tasks.duration.p50_ms, Some(15.0));
    assert_eq!(report.tasks.duration.max_ms, Some(20.0));
    assert_eq!(report.steps.completed, 2);
    assert_eq!(report.steps.duration.max_ms, Some(20.0));

    let bottlenecks = analytics::bottlenecks(pool, &window(), 10).await.unwrap();
    assert_eq!(bottlenecks.slowest_templates[0].finished, 2);
    assert_eq!(bottlenecks.slowest_steps[0].attempts, 2);
}

#[tokio::test]
async fn filters_narrow_tasks_and_steps_to_a_namespace_or_a_name() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let checkout = template(pool, "shop", "checkout").await;
    let refund = template(pool, "shop", "refund").await;
    let invoice = template(pool, "billing", "invoice").await;
    let runs: [(&Template, &str, i64); 8] = [
        (&checkout, "complete", 10),
        (&checkout, "complete", 10),
        (&checkout, "complete", 10),
        (&refund, "complete", 20),
        (&refund, "complete", 20),
        (&refund, "error", 20),
        (&refund, "error", 20),
        (&invoice, "complete", 1000),
    ];
    for (i, (template, state, took)) in runs.into_iter().enumerate() {
        let t = task(pool, template, state, Some(at(5)), ms(took)).await;
        let s = step(pool, t, "work", i, "complete").await;
        record(pool, &s, Attempt::succeeded(1, at(4), ms(took))).await;
    }

    let all = analytics::performance(pool, &window(), 2).await.unwrap();
    assert_eq!(all.tasks.finished, 8);
    assert_eq!(all.steps.completed, 8);
    // Most finished first, at most the limit.
    assert_eq!(template_names(&all.by_template), ["refund", "checkout"]);
    assert_eq!(
        (all.by_template[0].finished, all.by_template[0].error),
        (4, 2)
    );

    let shop = AnalyticsFilter {
        namespace: Some("shop"),
        ..window()
    };
    let report = analytics::performance(pool, &shop, 10).await.unwrap();
    assert_eq!(report.tasks.finished, 7);
    assert_eq!(report.tasks.duration.max_ms, Some(20.0));
    assert_eq!(report.steps.completed, 7);
    assert_eq!(report.steps.duration.max_ms, Some(20.0));
    assert_eq!(template_names(&report.by_template), ["refund", "checkout"]);

    let invoices = AnalyticsFilter {
        name: Some("invoice"),
        ..window()
    };
    let report = analytics::performance(pool, &invoices, 10).await.unwrap();
    assert_eq!((report.tasks.finished, report.steps.completed), (1, 1));
    assert_eq!(report.steps.duration.p50_ms, Some(1000.0));
    let nothing = AnalyticsFilter {
        namespace: Some("billing"),
        name: Some("checkout"),
        ..window()
    };
    let report = analytics::performance(pool, &nothing, 10).await.unwrap();
    assert_eq!((report.tasks.finished, report.steps.completed), (0, 0));
    assert!(report.by_template.is_empty());
}

#[tokio::test]
async fn bottlenecks_rank_the_slowest_the_most_retried_and_the_most_errored() {
    let db = TestDb::new().await.unwrap();
    let pool = db.pool();
    let checkout = template(pool, "shop", "checkout").await;
    let refund = template(pool, "shop", "refund").await;
    let invoice = template(pool, "billing", "invoice").await;
    let checkout_task = complete_task(pool, &checkout, at(50), ms(500)).await;
    let refund_task = task(pool, &refund, "error", Some(at(50)), ms(50)).await;
    complete_task(pool, &refund, at(50), ms(50)).await;
    let invoice_task = task(pool, &invoice, "error", Some(at(50)), ms(200)).await;
    complete_task(pool, &invoice, at(50), ms(200)).await;

    // checkout/render: slow and reliable.
    for i in 0..4 {
        let s = step(pool, checkout_task, "render", i, "complete").await;
        record(pool, &s, Attempt::succeeded(1, at(10), ms(900))).await;
    }
    // checkout/charge: fails once, then succeeds, three times over.
    for i in 0..3 {
        let s = step(pool, checkout_task, "charge", i, "complete").await;
        record(pool, &s, Attempt::failed(1, at(10), ms(100))).await;
        record(pool, &s, Attempt::succeeded(2, at(11), ms(100))).await;
    }
    // refund/notify: fails three times and is given up on after the third.
    let notify = step(pool, refund_task, "notify", 0, "error").await;
    for n in 1..=3 {
        record(
            pool,
            &notify,
            Attempt::failed(n, at(20 + i64::from(n)), ms(10)),
        )
        .await;
    }
    failed_for_good(pool, &notify, 3).await;
    // billing/send: fails once, not retryable, twice over.
    for i in 0..2 {
        let s = step(pool, invoice_task, "send", i, "error").await;
        record(pool, &s, Attempt::failed(1, at(30), ms(50))).await;
        failed_for_good(pool, &s, 1).await;
    }

    let found = analytics::bottlenecks(pool, &window(), 3).await.unwrap();
    assert_eq!(
        template_names(&found.slowest_templates),
        ["checkout", "invoice", "refund"]
    );
    assert_eq!(found.slowest_templates[0].duration.p95_ms, Some(500.0));
    assert_eq!(
        names(&found.slowest_steps),
        [
            ("checkout", "render"),
            ("checkout", "charge"),
            ("invoice", "send")
        ]
    );
    assert_eq!(found.slowest_steps[0].duration.p95_ms, Some(900.0));
    assert_eq!(
        names(&found.most_retried_steps),
        [("checkout", "charge"), ("refund", "notify")]
    );
    let charge = &found.most_retried_steps[0];
    assert_eq!(counts(charge), (6, 3, 3, 0, 2));
    // Steps that ended in error first, then by failed attempts.
    assert_eq!(
        names(&found.most_errored_steps),
        [
            ("invoice", "send"),
            ("refund", "notify"),
            ("checkout", "charge")
        ]
    );
    let notify = &found.most_errored_steps[1];
    assert_eq!(counts(notify), (3, 2, 3, 1, 3));

    let report = analytics::performance(pool, &window(), 10).await.unwrap();
    assert_eq!(
        (
            report.steps.completed,
            report.steps.failed_attempts,
            report.steps.ended_in_error
        ),
        (7, 8, 3)
    );

    let shorter = analytics::bottlenecks(pool, &window(), 1).await.unwrap();
    assert_eq!(names(&shorter.slowest_steps), [("checkout", "render")]);
    assert_eq!(names(&shorter.most_errored_steps), [("invoice", "send")]);
    assert_eq!(shorter.slowest_templates.len(), 1);
}

#[tokio::test]
async fn an_empty_window_has_zero_counts_and_no_percentiles() {
    let db = TestDb::new().await.unwrap();
    let report = analytics::performance(db.pool(), &window(), 10)
        .await
        .unwrap();
    assert_eq!(report.tasks.finished, 0);
    assert_eq!(report.tasks.duration.samples, 0);
    assert_eq!(report.tasks.duration.p50_ms, None);
    assert!(report.by_template.is_empty());
    assert_eq!(report.steps.completed, 0);
    assert_eq!(report.steps.duration.p99_ms, None);
    let found = analytics::bottlenecks(db.pool(), &window(), 10)
        .await
        .unwrap();
    assert!(found.slowest_templates.is_empty() && found.slowest_steps.is_empty());
    assert!(found.most_retried_steps.is_empty() && found.most_errored_steps.is_empty());
}

#[tokio::test]
async fn every_statement_can_be_explained_with_and_without_filters() {
    let db = TestDb::new().await.unwrap();
    let shop = AnalyticsFilter {
        namespace: Some("shop"),
        ..window()
    };
    for filter in [window(), shop] {
        for statement in Statement::ALL {
            let plan = analytics::explain(db.pool(), statement, &filter, 10)
                .await
                .unwrap();
            assert!(
                plan.iter().any(|line| line.contains("Execution Time")),
                "{}: {plan:?}",
                statement.as_str()
            );
        }
    }
}

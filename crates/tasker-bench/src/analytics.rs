//! `tasker-bench analytics`: the cost of the analytics queries
//! (`tasker_db::analytics`, behind `/v1/analytics/*`) on a database of
//! finished work made for the purpose — by default 100,000 tasks that
//! finished over the last 24 hours, four steps each, with their attempt
//! audit rows. No server or worker runs: the queries are timed directly,
//! for 1 h and 24 h windows, with and without a namespace filter, and each
//! query's plan is shown (EXPLAIN ANALYZE: its top node and the indexes it
//! used).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tasker_db::analytics::{self, AnalyticsFilter, Statement};
use tasker_db::dev_cluster::{DevCluster, default_data_dir};

use crate::stack::database_url;
use crate::stats::percentile;

/// What to run.
pub(crate) struct Settings {
    /// Finished tasks to generate.
    pub(crate) tasks: i64,
    /// Timed runs of each query in each case.
    pub(crate) runs: usize,
    /// Print JSON instead of a table.
    pub(crate) json: bool,
    /// Keep the database (and cluster) afterwards.
    pub(crate) keep_database: bool,
}

/// The namespace the filtered cases ask for: a third of the tasks.
const FILTER_NAMESPACE: &str = "bench_orders";
/// Length of the top-N lists, the API's default.
const LIMIT: u32 = 10;

/// Every figure, as printed with `--json`.
#[derive(Serialize)]
struct Figures {
    tasks: i64,
    steps: i64,
    attempts: i64,
    generate_seconds: f64,
    runs: usize,
    cases: Vec<Case>,
}

/// One query over one window and filter.
#[derive(Serialize)]
struct Case {
    query: &'static str,
    window_hours: i64,
    namespace: Option<&'static str>,
    median_ms: f64,
    p95_ms: f64,
    /// Per statement: the plan's top node and the indexes it used.
    plans: Vec<Plan>,
}

#[derive(Serialize)]
struct Plan {
    statement: &'static str,
    top: String,
    indexes: Vec<String>,
    execution: String,
}

/// Runs the benchmark.
///
/// # Errors
/// When PostgreSQL cannot be reached or a query fails.
pub(crate) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let (admin_url, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let dir = default_data_dir("bench-cluster");
            let cluster =
                tokio::task::spawn_blocking(move || DevCluster::start_with(&dir, true)).await??;
            (cluster.url("postgres"), Some(cluster))
        }
    };
    let database = format!("tasker_bench_analytics_{}", std::process::id());
    admin(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    )
    .await?;
    admin(&admin_url, &format!("CREATE DATABASE {database}")).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url(&admin_url, &database))
        .await?;
    let result = measure(&pool, settings).await;
    pool.close().await;
    if settings.keep_database {
        eprintln!("kept database {database} on {admin_url}");
        if let Some(cluster) = cluster {
            drop(cluster.keep_running());
        }
    } else {
        admin(
            &admin_url,
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        )
        .await?;
        if let Some(mut cluster) = cluster {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
    }
    let figures = result?;
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(())
}

async fn admin(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

async fn measure(pool: &PgPool, settings: &Settings) -> anyhow::Result<Figures> {
    tasker_db::migrate(pool).await?;
    eprintln!(
        "… generating {} finished tasks over the last 24 h",
        settings.tasks
    );
    let started = Instant::now();
    generate(pool, settings.tasks).await?;
    let generate_seconds = started.elapsed().as_secs_f64();
    let count = |table: &'static str| async move {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM tasker.{table}"
        )))
        .fetch_one(pool)
        .await?;
        Ok::<_, anyhow::Error>(n)
    };
    let (steps, attempts) = (
        count("workflow_steps").await?,
        count("workflow_step_result_audit").await?,
    );
    let mut cases = Vec::new();
    for window_hours in [1, 24] {
        for namespace in [None, Some(FILTER_NAMESPACE)] {
            for query in ["performance", "bottlenecks"] {
                eprintln!("… {query}, {window_hours} h, namespace {namespace:?}");
                cases.push(time_case(pool, settings.runs, query, window_hours, namespace).await?);
            }
        }
    }
    Ok(Figures {
        tasks: settings.tasks,
        steps,
        attempts,
        generate_seconds,
        runs: settings.runs,
        cases,
    })
}

async fn time_case(
    pool: &PgPool,
    runs: usize,
    query: &'static str,
    window_hours: i64,
    namespace: Option<&'static str>,
) -> anyhow::Result<Case> {
    let mut samples = Vec::with_capacity(runs);
    // One untimed run first: it warms the cache and the connection's
    // statement cache, as a server that has answered once would be.
    for run in 0..=runs {
        let until = Utc::now();
        let filter = AnalyticsFilter {
            since: until - TimeDelta::hours(window_hours),
            until,
            namespace,
            name: None,
        };
        let started = Instant::now();
        if query == "performance" {
            analytics::performance(pool, &filter, LIMIT).await?;
        } else {
            analytics::bottlenecks(pool, &filter, LIMIT).await?;
        }
        if run > 0 {
            samples.push(ms(started.elapsed()));
        }
    }
    let statements: &[Statement] = if query == "performance" {
        &[Statement::TaskStats, Statement::StepStats]
    } else {
        &[Statement::SlowestTemplates, Statement::StepRankings]
    };
    let until = Utc::now();
    let filter = AnalyticsFilter {
        since: until - TimeDelta::hours(window_hours),
        until,
        namespace,
        name: None,
    };
    let mut plans = Vec::new();
    for statement in statements {
        let lines = analytics::explain(pool, *statement, &filter, LIMIT).await?;
        plans.push(plan(statement.as_str(), &lines));
    }
    Ok(Case {
        query,
        window_hours,
        namespace,
        median_ms: percentile(&samples, 50.0),
        p95_ms: percentile(&samples, 95.0),
        plans,
    })
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// The plan's top node, the indexes it read (`Index Scan using x`,
/// `Index Only Scan using x`, `Bitmap Index Scan on x`), and its execution
/// time line.
fn plan(statement: &'static str, lines: &[String]) -> Plan {
    let mut indexes: Vec<String> = Vec::new();
    for line in lines {
        let named = line
            .split_once("Scan using ")
            .or_else(|| line.split_once("Bitmap Index Scan on "))
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if let Some(index) = named
            && !indexes.iter().any(|i| i == index)
        {
            indexes.push(index.to_owned());
        }
    }
    let top = lines.first().map_or("", |l| l.trim());
    Plan {
        statement,
        // The node's name, without its cost and row estimates.
        top: top.split("  (").next().unwrap_or(top).to_owned(),
        indexes,
        execution: lines
            .iter()
            .find(|l| l.starts_with("Execution Time"))
            .cloned()
            .unwrap_or_default(),
    }
}

/// Tasks over the last 24 h in six templates of three namespaces; four
/// steps each (`s1`…`s4`) whose handlers take 5 to 400 ms; every tenth
/// task's `s2` fails once and succeeds on retry; every 50th task ends in
/// `error` after its `s3` fails three times; every 97th is cancelled after
/// `s1`. Set-based, so 100,000 tasks take seconds. Each step gets one
/// transition row (its last) where the engine writes about five: the
/// analytics read transitions only by key, for failed attempts.
async fn generate(pool: &PgPool, tasks: i64) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    for statement in GENERATE {
        let sql = statement.replace("{tasks}", &tasks.to_string());
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("generating: {}", first_line(statement)))?;
    }
    drop(conn);
    // Outside any transaction: what autovacuum would have done by now
    // (statistics, visibility map).
    sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;
    Ok(())
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// The generator, statement by statement (`{tasks}` is the task count).
/// Temporary tables hold the plan of tasks and steps, so one connection
/// runs them all.
const GENERATE: &[&str] = &[
    "INSERT INTO tasker.task_namespaces (name)
     VALUES ('bench_orders'), ('bench_billing'), ('bench_reports')",
    "INSERT INTO tasker.named_tasks
         (named_task_uuid, namespace, name, version, template, content_hash, identity_strategy)
     SELECT gen_random_uuid(), ns, nm, '1.0.0', '{}', md5(ns || nm), 'always_unique'
     FROM (VALUES ('bench_orders', 'checkout'), ('bench_orders', 'refund'),
                  ('bench_billing', 'invoice'), ('bench_billing', 'dunning'),
                  ('bench_reports', 'daily'), ('bench_reports', 'export')) AS v(ns, nm)",
    "CREATE TEMP TABLE bench_tasks AS
     SELECT i, gen_random_uuid() AS task_uuid, t.named_task_uuid, t.namespace, t.name, t.version,
            now() - i * (interval '86400 seconds' / {tasks}) AS finished,
            CASE WHEN i % 50 = 0 THEN 'error' WHEN i % 97 = 0 THEN 'cancelled'
                 ELSE 'complete' END AS state,
            10 + (i::int8 * 7919) % 90 + (t.rank - 1) * 40 AS step_ms
     FROM generate_series(1, {tasks}) AS i
     JOIN (SELECT *, row_number() OVER (ORDER BY namespace, name) AS rank
           FROM tasker.named_tasks) AS t ON t.rank = 1 + i % 6",
    "INSERT INTO tasker.tasks
         (task_uuid, named_task_uuid, namespace, name, version, state, context, correlation_id,
          created_at, updated_at, completed_at)
     SELECT task_uuid, named_task_uuid, namespace, name, version, state,
            jsonb_build_object('order', i, 'note', 'benchmark row'), gen_random_uuid(),
            finished - make_interval(secs => (5 * step_ms + 20) / 1000.0), finished, finished
     FROM bench_tasks",
    "CREATE TEMP TABLE bench_steps AS
     SELECT p.task_uuid, gen_random_uuid() AS step_uuid, 's' || k AS name,
            CASE WHEN p.state = 'complete' THEN 'complete'
                 WHEN p.state = 'error' THEN (ARRAY['complete', 'complete', 'error', 'pending'])[k]
                 ELSE (ARRAY['complete', 'cancelled', 'cancelled', 'cancelled'])[k] END AS state,
            CASE WHEN p.state = 'error' AND k = 3 THEN 3
                 WHEN p.state = 'error' AND k = 4 THEN 0
                 WHEN p.state = 'cancelled' AND k > 1 THEN 0
                 WHEN k = 2 AND p.i % 10 = 0 THEN 2 ELSE 1 END AS attempts,
            p.step_ms * k / 2 AS run_ms,
            p.finished - make_interval(secs => (4 - k) * p.step_ms / 1000.0) AS finished
     FROM bench_tasks AS p CROSS JOIN generate_series(1, 4) AS k",
    "INSERT INTO tasker.workflow_steps
         (workflow_step_uuid, task_uuid, name, template_step, step_type, callable, max_attempts,
          retryable, backoff, backoff_base_ms, max_backoff_ms, state, attempts, last_sort_key,
          created_at, updated_at, completed_at)
     SELECT step_uuid, task_uuid, name, name, 'standard', 'bench::noop', 3, true, 'exponential',
            1000, 30000, state, attempts, CASE WHEN state <> 'pending' THEN 1 ELSE 0 END,
            finished - interval '1 minute', finished,
            CASE WHEN state <> 'pending' THEN finished END
     FROM bench_steps",
    "INSERT INTO tasker.workflow_step_transitions
         (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state, to_state,
          event, attempt, sort_key, created_at)
     SELECT gen_random_uuid(), step_uuid, task_uuid, 'enqueued_for_orchestration', state,
            CASE state WHEN 'complete' THEN 'complete' WHEN 'error' THEN 'fail' ELSE 'cancel' END,
            attempts, 1, finished
     FROM bench_steps WHERE state <> 'pending'",
    "INSERT INTO tasker.workflow_step_result_audit
         (audit_uuid, workflow_step_uuid, task_uuid, attempt, outcome, accepted, worker_id,
          started_at, finished_at, created_at)
     SELECT gen_random_uuid(), s.step_uuid, s.task_uuid, a,
            CASE WHEN s.state = 'error' OR a < s.attempts THEN 'failure' ELSE 'success' END,
            true, 'bench-worker', f - make_interval(secs => s.run_ms / 1000.0), f, f
     FROM bench_steps AS s
     CROSS JOIN LATERAL generate_series(1, s.attempts) AS a
     CROSS JOIN LATERAL (SELECT s.finished - make_interval(
                             secs => (s.attempts - a) * (s.run_ms + 1000) / 1000.0) AS f) AS t",
    "DROP TABLE bench_steps, bench_tasks",
];

fn print_table(f: &Figures) {
    println!(
        "analytics on {} tasks, {} steps, {} attempts (generated in {:.1} s); {} runs per case, limit {LIMIT}\n",
        f.tasks, f.steps, f.attempts, f.generate_seconds, f.runs
    );
    println!(
        "{:<12} {:>6}  {:<14} {:>10} {:>10}",
        "QUERY", "WINDOW", "NAMESPACE", "MEDIAN", "P95"
    );
    for c in &f.cases {
        println!(
            "{:<12} {:>4} h  {:<14} {:>7.1} ms {:>7.1} ms",
            c.query,
            c.window_hours,
            c.namespace.unwrap_or("-"),
            c.median_ms,
            c.p95_ms
        );
    }
    println!("\nplans (EXPLAIN ANALYZE under the reports' settings):");
    for c in &f.cases {
        for p in &c.plans {
            println!(
                "{:<18} {:>2} h {:<14} {} | indexes: {} | {}",
                p.statement,
                c.window_hours,
                c.namespace.unwrap_or("-"),
                p.top,
                if p.indexes.is_empty() {
                    "none (sequential scan)".to_owned()
                } else {
                    p.indexes.join(", ")
                },
                p.execution
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn plans_name_their_top_node_and_every_index_once() {
        let lines: Vec<String> = [
            "Limit  (cost=1.0..2.0 rows=11 width=102) (actual time=7.8..7.8 rows=7 loops=1)",
            "  ->  Bitmap Index Scan on tasks_completed_at_idx  (cost=0.00..88.56 rows=4027 width=0)",
            "  ->  Index Scan using workflow_step_transitions_workflow_step_uuid_sort_key_key on workflow_step_transitions x",
            "  ->  Bitmap Index Scan on tasks_completed_at_idx  (cost=0.00..88.56 rows=4027 width=0)",
            "Execution Time: 7.986 ms",
        ]
        .map(String::from)
        .to_vec();
        let plan = plan("task_stats", &lines);
        assert_eq!(plan.top, "Limit");
        assert_eq!(
            plan.indexes,
            [
                "tasks_completed_at_idx",
                "workflow_step_transitions_workflow_step_uuid_sort_key_key"
            ]
        );
        assert_eq!(plan.execution, "Execution Time: 7.986 ms");
    }
}

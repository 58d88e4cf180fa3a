//! Each figure of SPEC §14, measured against the running system.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde_json::json;
use tasker_types::api::TaskRequest;
use tasker_types::ids::TaskUuid;
use tokio::task::JoinSet;

use crate::stack::Bench;
use crate::stats::{RowWrites, row_writes, row_writes_between, transactions};

/// How often completion is checked while measuring latency.
const POLL: Duration = Duration::from_millis(2);

/// Single-row INSERT commits per second on one connection, for `duration`.
pub(crate) async fn commit_rate(bench: &Bench, duration: Duration) -> anyhow::Result<f64> {
    let mut conn = bench.pool.acquire().await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        .execute(&mut *conn)
        .await?;
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < duration {
        sqlx::query("INSERT INTO bench_commit DEFAULT VALUES")
            .execute(&mut *conn)
            .await?;
        commits += 1;
    }
    Ok(commits as f64 / started.elapsed().as_secs_f64())
}

/// Database transactions per second while the system has nothing to do.
pub(crate) async fn idle_load(bench: &Bench, duration: Duration) -> anyhow::Result<f64> {
    let before = transactions(&bench.pool, &bench.database).await?;
    tokio::time::sleep(duration).await;
    let after = transactions(&bench.pool, &bench.database).await?;
    // Each reading itself costs two transactions.
    Ok(((after - before - 2).max(0)) as f64 / duration.as_secs_f64())
}

fn linear(i: usize) -> TaskRequest {
    TaskRequest::new("bench", "linear4", json!({ "i": i }))
}

/// REST `POST /v1/tasks` round trips, one at a time, in milliseconds.
pub(crate) async fn rest_create(bench: &Bench, count: usize) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        bench.client.create_task(&linear(i)).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    drain(bench, Duration::from_secs(120)).await?;
    Ok(samples)
}

/// Waits until no task is unfinished.
pub(crate) async fn drain(bench: &Bench, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if active(bench).await? == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("tasks still unfinished after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn active(bench: &Bench) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM tasker.tasks WHERE state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')",
    )
    .fetch_one(&bench.pool)
    .await?)
}

/// Linear-4 latency, one task at a time: create → complete (database
/// timestamps), and the per-step handoff (one step's result recorded → the
/// next step claimed), both in milliseconds.
pub(crate) async fn linear_latency(
    bench: &Bench,
    count: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let task = bench.client.create_task(&linear(i)).await?;
        wait_done(bench, task.task_uuid).await?;
        tasks.push(task.task_uuid);
    }
    let uuids: Vec<uuid::Uuid> = tasks.iter().map(TaskUuid::as_uuid).collect();
    let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT state, created_at, completed_at FROM tasker.tasks WHERE task_uuid = ANY($1)",
    )
    .bind(&uuids)
    .fetch_all(&bench.pool)
    .await?;
    let mut latency = Vec::with_capacity(rows.len());
    for (state, created, completed) in rows {
        if state != "complete" {
            bail!("a linear task ended {state}");
        }
        if let Some(completed) = completed {
            latency.push((completed - created).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    let handoff: Vec<f64> = sqlx::query_scalar(
        "WITH t AS (
             SELECT s.task_uuid, s.name, tr.event, tr.created_at
             FROM tasker.workflow_step_transitions tr
             JOIN tasker.workflow_steps s USING (workflow_step_uuid)
             WHERE s.task_uuid = ANY($1) AND tr.event IN ('record_success', 'start'))
         SELECT (extract(epoch FROM (nxt.created_at - done.created_at)) * 1000)::float8
         FROM t done JOIN t nxt ON nxt.task_uuid = done.task_uuid
         WHERE done.event = 'record_success' AND nxt.event = 'start'
           AND (done.name, nxt.name) IN (('s1', 's2'), ('s2', 's3'), ('s3', 's4'))",
    )
    .bind(&uuids)
    .fetch_all(&bench.pool)
    .await?;
    Ok((latency, handoff))
}

async fn wait_done(bench: &Bench, task: TaskUuid) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state FROM tasker.tasks WHERE task_uuid = $1")
                .bind(task.as_uuid())
                .fetch_one(&bench.pool)
                .await?;
        if ["complete", "error", "cancelled", "resolved_manually"].contains(&state.as_str()) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("task {task} still {state} after 30 s");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The outcome of the sustained run.
pub(crate) struct Throughput {
    pub(crate) steps_per_second: f64,
    pub(crate) transactions_per_step: f64,
    /// What each table wrote over the window.
    pub(crate) row_writes: BTreeMap<String, RowWrites>,
    pub(crate) steps: i64,
    pub(crate) seconds: f64,
}

/// Diamond tasks with no-op handlers, `in_flight` of them kept unfinished
/// at all times for `duration`, created through the REST API.
pub(crate) async fn throughput(
    bench: &Bench,
    duration: Duration,
    in_flight: i64,
) -> anyhow::Result<Throughput> {
    let t0: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&bench.pool)
        .await?;
    let tx0 = transactions(&bench.pool, &bench.database).await?;
    let rows0 = row_writes(&bench.pool).await?;
    let deadline = Instant::now() + duration;
    let client = Arc::new(bench.client.clone());
    let mut creators: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut n = 0usize;
    while Instant::now() < deadline {
        let missing = in_flight - active(bench).await?;
        for _ in 0..missing.max(0) {
            // At most 32 creations in the air at once.
            while creators.len() >= 32 {
                if let Some(done) = creators.join_next().await {
                    done??;
                }
            }
            let client = client.clone();
            n += 1;
            let request = TaskRequest::new("bench", "diamond", json!({ "n": n }));
            creators.spawn(async move {
                client.create_task(&request).await?;
                Ok(())
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t1: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&bench.pool)
        .await?;
    let tx1 = transactions(&bench.pool, &bench.database).await?;
    let rows1 = row_writes(&bench.pool).await?;
    while let Some(done) = creators.join_next().await {
        done??;
    }
    let steps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_steps WHERE state = 'complete' AND completed_at BETWEEN $1 AND $2",
    )
    .bind(t0)
    .bind(t1)
    .fetch_one(&bench.pool)
    .await?;
    drain(bench, Duration::from_secs(300)).await?;
    let seconds = (t1 - t0).num_microseconds().unwrap_or(1) as f64 / 1e6;
    Ok(Throughput {
        steps_per_second: steps as f64 / seconds,
        transactions_per_step: (tx1 - tx0) as f64 / steps.max(1) as f64,
        row_writes: row_writes_between(&rows0, &rows1),
        steps,
        seconds,
    })
}

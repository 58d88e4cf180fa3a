//! `tasker.workflow_step_result_audit`: one row per finished attempt — what
//! the worker reported, whether orchestration then accepted it or not.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use tasker_types::ids::{StepUuid, TaskUuid};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The handler succeeded.
    Success,
    /// The handler failed (or timed out, or panicked).
    Failure,
    /// An operator supplied the outcome.
    Manual,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Manual => "manual",
        }
    }
}

/// One attempt's record.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// The step.
    pub step_uuid: StepUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// The attempt.
    pub attempt: u32,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Whether the report was accepted (false for a stale attempt).
    pub accepted: bool,
    /// The result, on success.
    pub result: Option<Value>,
    /// The error, on failure.
    pub error: Option<Value>,
    /// The worker that ran it.
    pub worker_id: Option<String>,
    /// The operator who acted, for manual outcomes.
    pub actor: Option<String>,
    /// Why, for manual outcomes.
    pub reason: Option<String>,
    /// When the attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

/// Records `entries` in the caller's transaction.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn insert_many(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<(), DbError> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let steps: Vec<Uuid> = entries.iter().map(|e| e.step_uuid.as_uuid()).collect();
    let tasks: Vec<Uuid> = entries.iter().map(|e| e.task_uuid.as_uuid()).collect();
    let attempts: Vec<i32> = entries.iter().map(|e| convert::to_i32(e.attempt)).collect();
    let outcomes: Vec<String> = entries
        .iter()
        .map(|e| e.outcome.as_str().to_owned())
        .collect();
    let accepted: Vec<bool> = entries.iter().map(|e| e.accepted).collect();
    let results: Vec<Option<Value>> = entries.iter().map(|e| e.result.clone()).collect();
    let errors: Vec<Option<Value>> = entries.iter().map(|e| e.error.clone()).collect();
    let workers: Vec<Option<String>> = entries.iter().map(|e| e.worker_id.clone()).collect();
    let actors: Vec<Option<String>> = entries.iter().map(|e| e.actor.clone()).collect();
    let reasons: Vec<Option<String>> = entries.iter().map(|e| e.reason.clone()).collect();
    let started: Vec<Option<DateTime<Utc>>> = entries.iter().map(|e| e.started_at).collect();
    let finished: Vec<DateTime<Utc>> = entries.iter().map(|e| e.finished_at).collect();
    sqlx::query!(
        r#"INSERT INTO tasker.workflow_step_result_audit
               (audit_uuid, workflow_step_uuid, task_uuid, attempt, outcome, result, error,
                worker_id, actor, reason, started_at, finished_at, accepted)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int4[], $5::text[],
                                $6::jsonb[], $7::jsonb[], $8::text[], $9::text[], $10::text[],
                                $11::timestamptz[], $12::timestamptz[], $13::bool[])"#,
        &ids,
        &steps,
        &tasks,
        &attempts,
        &outcomes,
        &results as &[Option<Value>],
        &errors as &[Option<Value>],
        &workers as &[Option<String>],
        &actors as &[Option<String>],
        &reasons as &[Option<String>],
        &started as &[Option<DateTime<Utc>>],
        &finished,
        &accepted,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A step's attempts, oldest first.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn list_for_step(
    executor: impl PgExecutor<'_>,
    step: StepUuid,
) -> Result<Vec<AuditEntry>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT task_uuid, attempt, outcome, accepted, result, error, worker_id, actor, reason,
                  started_at, finished_at
           FROM tasker.workflow_step_result_audit
           WHERE workflow_step_uuid = $1 ORDER BY finished_at, attempt"#,
        step.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|r| {
            let outcome = match r.outcome.as_str() {
                "success" => AuditOutcome::Success,
                "failure" => AuditOutcome::Failure,
                "manual" => AuditOutcome::Manual,
                other => {
                    return Err(DbError::Corrupt(format!(
                        "`{other}` is not an audit outcome"
                    )));
                }
            };
            Ok(AuditEntry {
                step_uuid: step,
                task_uuid: TaskUuid::from_uuid(r.task_uuid),
                attempt: convert::count(r.attempt),
                outcome,
                accepted: r.accepted,
                result: r.result,
                error: r.error,
                worker_id: r.worker_id,
                actor: r.actor,
                reason: r.reason,
                started_at: r.started_at,
                finished_at: r.finished_at,
            })
        })
        .collect()
}

//! The one writer of step state changes (SPEC §3). Every transition of a
//! step — a worker's claim, re-claim and result, orchestration's enqueue,
//! completion, retry and give-up, cancellation, the staleness detector's
//! expiry, an operator's repair — is a [`StepChange`], and [`apply`] writes
//! any mix of them, for any number of steps, with one statement:
//!
//! - a compare-and-set per step on the state the caller saw, plus the
//!   fences the change names (the attempt it belongs to, an expired lease,
//!   the attempt budget) — a change whose fence fails writes nothing and is
//!   absent from the result;
//! - the columns that change with it, decided by its [`Effect`];
//! - its transition row, insert-only: the row's key is the step's
//!   `last_sort_key`, incremented by the same update, so it is read from the
//!   row version the writer holds locked.
//!
//! The statement is static; what varies per step travels in arrays, in the
//! spirit of River's `JobSetStateIfRunningMany`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::outcome::{FlowControl, StepFailure};
use tasker_types::state::{StepEvent, StepState};
use uuid::Uuid;

use crate::convert;
use crate::error::DbError;
use crate::transition::TransitionContext;
use crate::workflow_step::{StepRecord, StepRow};

/// One state change of one step, with its fence and what it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct StepChange {
    /// The step.
    pub step: StepUuid,
    /// The state the caller saw; the change applies only if it still holds.
    pub from: StepState,
    /// The event (the state machine gives the target state).
    pub event: StepEvent,
    /// Further conditions besides `from`.
    pub fence: Fence,
    /// The columns that change besides the state.
    pub effect: Effect,
    /// Details for this change's transition row, merged over the context's.
    pub metadata: Option<Value>,
}

/// Conditions a change needs besides the expected state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fence {
    /// The step's current attempt must be this one (a worker's write).
    pub attempt: Option<u32>,
    /// What the step's lease and attempt budget must be.
    pub lease: LeaseFence,
}

/// A condition on the step's lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeaseFence {
    /// No condition.
    #[default]
    Any,
    /// The lease ran out and attempts remain (a re-claim).
    ExpiredWithAttemptsLeft,
    /// The lease ran out on the last attempt (its worker died for good).
    ExpiredOnLastAttempt,
}

impl LeaseFence {
    fn as_str(self) -> Option<&'static str> {
        match self {
            LeaseFence::Any => None,
            LeaseFence::ExpiredWithAttemptsLeft => Some("expired_with_attempts_left"),
            LeaseFence::ExpiredOnLastAttempt => Some("expired_on_last_attempt"),
        }
    }
}

/// The columns a change writes besides `state`. Whatever the effect, a
/// lease exists only while a claim holds it, `next_retry_at` only while a
/// retry waits, and `completed_at` only in a terminal state.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Nothing else.
    None,
    /// A new attempt held by `worker` for `lease`.
    Claim {
        /// The claiming worker.
        worker: String,
        /// How long the lease lasts unless renewed.
        lease: Duration,
    },
    /// An attempt's success: its result replaces the step's, and what a
    /// decision or batchable step asked to create next.
    Result {
        /// The handler's result.
        result: Value,
        /// Its flow control, if any.
        flow_control: Option<FlowControl>,
    },
    /// A failure becomes the step's last error.
    Error(StepFailure),
    /// A retry falls due at this instant.
    RetryAt(DateTime<Utc>),
    /// An operator's result for the step.
    ManualResult(Value),
    /// An operator's reset: `extra_attempts` more attempts, and `inputs`
    /// (when given) replace the step's.
    Reset {
        /// Replacement inputs.
        inputs: Option<Value>,
        /// Attempts granted beyond those already made.
        extra_attempts: u32,
    },
}

impl StepChange {
    fn new(step: StepUuid, from: StepState, event: StepEvent) -> Self {
        Self {
            step,
            from,
            event,
            fence: Fence::default(),
            effect: Effect::None,
            metadata: None,
        }
    }

    fn effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
    }

    fn attempt(mut self, attempt: u32) -> Self {
        self.fence.attempt = Some(attempt);
        self
    }

    /// The same change with `metadata` on its transition row.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// `pending | waiting_for_retry → enqueued`: orchestration hands the
    /// step to workers.
    pub fn enqueue(step: StepUuid, from: StepState) -> Self {
        Self::new(step, from, StepEvent::Enqueue)
    }

    /// `enqueued → in_progress`: `worker` claims the step, starting the
    /// next attempt. Of many concurrent claims exactly one succeeds.
    pub fn claim(step: StepUuid, worker: &str, lease: Duration) -> Self {
        Self::new(step, StepState::Enqueued, StepEvent::Start).effect(Effect::Claim {
            worker: worker.to_owned(),
            lease,
        })
    }

    /// `in_progress → in_progress`: `worker` re-claims a step whose lease
    /// ran out (its worker died), starting a new attempt, while attempts
    /// remain.
    pub fn reclaim(step: StepUuid, worker: &str, lease: Duration) -> Self {
        let mut change =
            Self::new(step, StepState::InProgress, StepEvent::Reclaim).effect(Effect::Claim {
                worker: worker.to_owned(),
                lease,
            });
        change.fence.lease = LeaseFence::ExpiredWithAttemptsLeft;
        change
    }

    /// `in_progress → enqueued_for_orchestration`: attempt `attempt`
    /// stores its result. A superseded attempt's write is rejected.
    pub fn record_success(
        step: StepUuid,
        attempt: u32,
        result: Value,
        flow_control: Option<FlowControl>,
    ) -> Self {
        Self::new(step, StepState::InProgress, StepEvent::RecordSuccess)
            .attempt(attempt)
            .effect(Effect::Result {
                result,
                flow_control,
            })
    }

    /// `in_progress → enqueued_as_error_for_orchestration`: attempt
    /// `attempt` stores its failure. A superseded attempt's write is
    /// rejected.
    pub fn record_failure(step: StepUuid, attempt: u32, error: StepFailure) -> Self {
        Self::new(step, StepState::InProgress, StepEvent::RecordFailure)
            .attempt(attempt)
            .effect(Effect::Error(error))
    }

    /// `in_progress → enqueued_as_error_for_orchestration` for attempt
    /// `attempt` whose lease ran out with no attempts left: its worker
    /// (`worker`, as the step names it) died on the last attempt.
    pub fn lease_expired_on_last_attempt(
        step: StepUuid,
        attempt: u32,
        worker: Option<&str>,
    ) -> Self {
        let mut change = Self::record_failure(step, attempt, StepFailure::lease_expired(worker));
        change.fence.lease = LeaseFence::ExpiredOnLastAttempt;
        change
    }

    /// `enqueued_for_orchestration → complete`: orchestration accepts the
    /// result.
    pub fn complete(step: StepUuid) -> Self {
        Self::new(
            step,
            StepState::EnqueuedForOrchestration,
            StepEvent::Complete,
        )
    }

    /// `enqueued_as_error_for_orchestration → waiting_for_retry`, due at `due`.
    pub fn schedule_retry(step: StepUuid, due: DateTime<Utc>) -> Self {
        Self::new(
            step,
            StepState::EnqueuedAsErrorForOrchestration,
            StepEvent::ScheduleRetry,
        )
        .effect(Effect::RetryAt(due))
    }

    /// `enqueued_as_error_for_orchestration → error`: orchestration gives up.
    pub fn fail(step: StepUuid) -> Self {
        Self::new(
            step,
            StepState::EnqueuedAsErrorForOrchestration,
            StepEvent::Fail,
        )
    }

    /// `enqueued_for_orchestration → error`: the success carried an outcome
    /// orchestration cannot apply; `why` says why (an `invalid_result`).
    pub fn refuse_result(step: StepUuid, why: &str) -> Self {
        Self::new(step, StepState::EnqueuedForOrchestration, StepEvent::Fail)
            .effect(Effect::Error(StepFailure::invalid_result(why)))
    }

    /// `enqueued | in_progress | waiting_for_retry → error`: the staleness
    /// detector gives up on a step that made no progress; `detail` says
    /// why (a `staleness_timeout`).
    pub fn expire(step: StepUuid, from: StepState, detail: &str) -> Self {
        Self::new(step, from, StepEvent::Expire)
            .effect(Effect::Error(StepFailure::staleness_timeout(detail)))
    }

    /// `<from> → cancelled` for a non-terminal step; a running attempt's
    /// later result is then rejected by the fence.
    pub fn cancel(step: StepUuid, from: StepState) -> Self {
        Self::new(step, from, StepEvent::Cancel)
    }

    /// `error → pending`: an operator asks for a failed step to run again.
    /// Its attempts keep counting (they fence late results) and it gets
    /// `extra_attempts` more (at least one); its checkpoint is kept, so a
    /// batch worker resumes where it was.
    pub fn reset_for_retry(step: StepUuid, inputs: Option<Value>, extra_attempts: u32) -> Self {
        Self::new(step, StepState::Error, StepEvent::ResetForRetry).effect(Effect::Reset {
            inputs,
            extra_attempts: extra_attempts.max(1),
        })
    }

    /// `<from> → resolved_manually`: an operator declares the step done
    /// without a result; dependents proceed.
    pub fn resolve_manually(step: StepUuid, from: StepState) -> Self {
        Self::new(step, from, StepEvent::ResolveManually)
    }

    /// `<from> → complete` with `result`, which dependents receive as this
    /// step's result.
    pub fn complete_manually(step: StepUuid, from: StepState, result: Value) -> Self {
        Self::new(step, from, StepEvent::CompleteManually).effect(Effect::ManualResult(result))
    }
}

/// A change that was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Changed {
    /// The step.
    pub step: StepUuid,
    /// Its task.
    pub task: TaskUuid,
    /// Its state now.
    pub state: StepState,
    /// Its current attempt now.
    pub attempt: u32,
    /// When its lease runs out (claims only).
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// Writes every change whose fence holds, with its transition row, in one
/// statement. Returns the changes written; the others are absent.
///
/// # Errors
/// [`DbError::InvalidTransition`] when a change's event cannot leave its
/// `from` state (nothing is written then); [`DbError`] on database failure.
pub async fn apply(
    conn: &mut PgConnection,
    changes: &[StepChange],
    ctx: &TransitionContext,
) -> Result<Vec<Changed>, DbError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ChangedRecord> = bind(sqlx::query_as(SLIM), changes, ctx)?
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Changed::try_from).collect()
}

/// [`apply`], returning the changed steps in full (for a claim, whose
/// worker needs the step to run it).
///
/// # Errors
/// As [`apply`].
pub async fn apply_returning_rows(
    conn: &mut PgConnection,
    changes: &[StepChange],
    ctx: &TransitionContext,
) -> Result<Vec<StepRow>, DbError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<StepRecord> = bind(sqlx::query_as(FULL), changes, ctx)?
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(StepRow::try_from).collect()
}

/// [`apply`] for one change, which must be written.
///
/// # Errors
/// [`DbError::TransitionConflict`] when its fence does not hold (the step
/// moved on, another worker claimed it, the attempt was superseded, the
/// lease is live); otherwise as [`apply`].
pub async fn apply_one(
    conn: &mut PgConnection,
    change: StepChange,
    ctx: &TransitionContext,
) -> Result<Changed, DbError> {
    let (step, from, attempt) = (change.step, change.from, change.fence.attempt);
    apply(conn, std::slice::from_ref(&change), ctx)
        .await?
        .pop()
        .ok_or(DbError::TransitionConflict {
            entity: "step",
            uuid: step.as_uuid(),
            expected_state: from.as_str(),
            expected_attempt: attempt,
        })
}

/// The statement, up to its final projection (a macro so that both
/// projections are `&'static str` literals). Each input row is one change;
/// `changed` is the compare-and-set; `history` appends one transition row
/// per changed step.
macro_rules! statement {
    () => {
        r#"
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int4[],
                         $6::text[], $7::text[], $8::float8[], $9::bool[], $10::jsonb[],
                         $11::jsonb[], $12::jsonb[], $13::timestamptz[], $14::jsonb[],
                         $15::int4[], $16::bool[], $17::jsonb[], $18::uuid[])
        AS i(step, from_state, to_state, event, attempt, lease_fence, worker, lease_secs,
             records_result, result, control, error, retry_at, inputs, extra_attempts,
             terminal, metadata, tid)),
changed AS (
    UPDATE tasker.workflow_steps s
    SET state = i.to_state,
        last_sort_key = s.last_sort_key + 1,
        attempts = s.attempts + CASE WHEN i.worker IS NULL THEN 0 ELSE 1 END,
        claimed_by = COALESCE(i.worker, s.claimed_by),
        lease_expires_at = CASE WHEN i.worker IS NULL THEN NULL
                                ELSE now() + make_interval(secs => i.lease_secs) END,
        attempt_started_at = CASE WHEN i.worker IS NULL THEN s.attempt_started_at
                                  ELSE now() END,
        results = CASE WHEN i.records_result THEN i.result
                       ELSE COALESCE(i.result, s.results) END,
        flow_control = CASE WHEN i.records_result THEN i.control ELSE s.flow_control END,
        last_error = COALESCE(i.error, s.last_error),
        next_retry_at = i.retry_at,
        inputs = COALESCE(i.inputs, s.inputs),
        max_attempts = COALESCE(s.attempts + i.extra_attempts, s.max_attempts),
        completed_at = CASE WHEN i.terminal THEN now() ELSE NULL END,
        updated_at = now()
    FROM input i
    WHERE s.workflow_step_uuid = i.step
      AND s.state = i.from_state
      AND (i.attempt IS NULL OR s.attempts = i.attempt)
      AND CASE i.lease_fence
              WHEN 'expired_with_attempts_left'
                  THEN s.lease_expires_at < now() AND s.attempts < s.max_attempts
              WHEN 'expired_on_last_attempt'
                  THEN s.lease_expires_at < now() AND s.attempts >= s.max_attempts
              ELSE true
          END
    RETURNING s.*, i.from_state AS changed_from, i.event AS changed_by,
              i.metadata AS changed_metadata, i.tid),
history AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, task_uuid, from_state, to_state,
         event, attempt, sort_key, metadata, processor_id)
    SELECT c.tid, c.workflow_step_uuid, c.task_uuid, c.changed_from, c.state, c.changed_by,
           c.attempts, c.last_sort_key, c.changed_metadata, $19
    FROM changed c)
"#
    };
}

/// What [`apply`] returns of each changed step.
const SLIM: &str = concat!(
    statement!(),
    "SELECT workflow_step_uuid, task_uuid, state, attempts, lease_expires_at FROM changed"
);

/// What [`apply_returning_rows`] returns: the whole row.
const FULL: &str = concat!(statement!(), "SELECT * FROM changed");

/// Binds `changes` as the statement's arrays.
fn bind<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    changes: &[StepChange],
    ctx: &TransitionContext,
) -> Result<sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>, DbError> {
    let n = changes.len();
    let mut a = Arrays::with_capacity(n);
    let base = ctx.metadata_or_empty();
    for c in changes {
        let to = c.from.next(c.event)?;
        a.step.push(c.step.as_uuid());
        a.from.push(c.from.as_str().to_owned());
        a.to.push(to.as_str().to_owned());
        a.event.push(c.event.as_str().to_owned());
        a.attempt.push(c.fence.attempt.map(convert::to_i32));
        a.lease_fence
            .push(c.fence.lease.as_str().map(str::to_owned));
        a.terminal.push(to.is_terminal());
        a.metadata.push(merged(&base, c.metadata.as_ref()));
        a.tid.push(Uuid::now_v7());
        let e = EffectColumns::of(&c.effect)?;
        a.worker.push(e.worker);
        a.lease_secs.push(e.lease_secs);
        a.records_result.push(e.records_result);
        a.result.push(e.result);
        a.control.push(e.control);
        a.error.push(e.error);
        a.retry_at.push(e.retry_at);
        a.inputs.push(e.inputs);
        a.extra_attempts.push(e.extra_attempts);
    }
    Ok(query
        .bind(a.step)
        .bind(a.from)
        .bind(a.to)
        .bind(a.event)
        .bind(a.attempt)
        .bind(a.lease_fence)
        .bind(a.worker)
        .bind(a.lease_secs)
        .bind(a.records_result)
        .bind(a.result)
        .bind(a.control)
        .bind(a.error)
        .bind(a.retry_at)
        .bind(a.inputs)
        .bind(a.extra_attempts)
        .bind(a.terminal)
        .bind(a.metadata)
        .bind(a.tid)
        .bind(ctx.processor_id.clone()))
}

/// One change's effect as the statement's per-change columns; what the
/// effect does not name stays NULL (or false).
#[derive(Default)]
struct EffectColumns {
    worker: Option<String>,
    lease_secs: Option<f64>,
    records_result: bool,
    result: Option<Value>,
    control: Option<Value>,
    error: Option<Value>,
    retry_at: Option<DateTime<Utc>>,
    inputs: Option<Value>,
    extra_attempts: Option<i32>,
}

impl EffectColumns {
    fn of(effect: &Effect) -> Result<Self, DbError> {
        Ok(match effect {
            Effect::None => Self::default(),
            Effect::Claim { worker, lease } => Self {
                worker: Some(worker.clone()),
                lease_secs: Some(lease.as_secs_f64()),
                ..Self::default()
            },
            Effect::Result {
                result,
                flow_control,
            } => Self {
                records_result: true,
                result: Some(result.clone()),
                control: flow_control
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| DbError::Corrupt(format!("flow control: {e}")))?,
                ..Self::default()
            },
            Effect::Error(failure) => Self {
                error: Some(failure.to_stored()),
                ..Self::default()
            },
            Effect::RetryAt(due) => Self {
                retry_at: Some(*due),
                ..Self::default()
            },
            Effect::ManualResult(result) => Self {
                result: Some(result.clone()),
                ..Self::default()
            },
            Effect::Reset {
                inputs,
                extra_attempts,
            } => Self {
                inputs: inputs.clone(),
                extra_attempts: Some(convert::to_i32(*extra_attempts)),
                ..Self::default()
            },
        })
    }
}

/// The context's metadata with a change's own keys over it.
fn merged(base: &Value, extra: Option<&Value>) -> Value {
    match (base, extra) {
        (_, None) => base.clone(),
        (Value::Object(b), Some(Value::Object(e))) => {
            let mut out = b.clone();
            out.extend(e.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(out)
        }
        (_, Some(e)) => e.clone(),
    }
}

/// The statement's parameters, one entry per change.
struct Arrays {
    step: Vec<Uuid>,
    from: Vec<String>,
    to: Vec<String>,
    event: Vec<String>,
    attempt: Vec<Option<i32>>,
    lease_fence: Vec<Option<String>>,
    worker: Vec<Option<String>>,
    lease_secs: Vec<Option<f64>>,
    records_result: Vec<bool>,
    result: Vec<Option<Value>>,
    control: Vec<Option<Value>>,
    error: Vec<Option<Value>>,
    retry_at: Vec<Option<DateTime<Utc>>>,
    inputs: Vec<Option<Value>>,
    extra_attempts: Vec<Option<i32>>,
    terminal: Vec<bool>,
    metadata: Vec<Value>,
    tid: Vec<Uuid>,
}

impl Arrays {
    fn with_capacity(n: usize) -> Self {
        Self {
            step: Vec::with_capacity(n),
            from: Vec::with_capacity(n),
            to: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            attempt: Vec::with_capacity(n),
            lease_fence: Vec::with_capacity(n),
            worker: Vec::with_capacity(n),
            lease_secs: Vec::with_capacity(n),
            records_result: Vec::with_capacity(n),
            result: Vec::with_capacity(n),
            control: Vec::with_capacity(n),
            error: Vec::with_capacity(n),
            retry_at: Vec::with_capacity(n),
            inputs: Vec::with_capacity(n),
            extra_attempts: Vec::with_capacity(n),
            terminal: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            tid: Vec::with_capacity(n),
        }
    }
}

/// The slim projection, as returned.
#[derive(sqlx::FromRow)]
struct ChangedRecord {
    workflow_step_uuid: Uuid,
    task_uuid: Uuid,
    state: String,
    attempts: i32,
    lease_expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<ChangedRecord> for Changed {
    type Error = DbError;

    fn try_from(r: ChangedRecord) -> Result<Self, DbError> {
        Ok(Changed {
            step: StepUuid::from_uuid(r.workflow_step_uuid),
            task: TaskUuid::from_uuid(r.task_uuid),
            state: convert::step_state(&r.state)?,
            attempt: convert::count(r.attempts),
            lease_expires_at: r.lease_expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_changes_metadata_is_merged_over_the_contexts() {
        let base = json!({ "actor": "ops", "reason": "x" });
        assert_eq!(merged(&base, None), base);
        assert_eq!(
            merged(
                &base,
                Some(&json!({ "reason": "fail_fast", "failed_batch": "b_1" }))
            ),
            json!({ "actor": "ops", "reason": "fail_fast", "failed_batch": "b_1" })
        );
    }

    #[test]
    fn constructors_name_legal_transitions() {
        let s = StepUuid::new();
        let now = Utc::now();
        let changes = [
            StepChange::enqueue(s, StepState::Pending),
            StepChange::enqueue(s, StepState::WaitingForRetry),
            StepChange::claim(s, "w", Duration::from_secs(1)),
            StepChange::reclaim(s, "w", Duration::from_secs(1)),
            StepChange::record_success(s, 1, json!({}), None),
            StepChange::record_failure(s, 1, StepFailure::permanent("x", "y")),
            StepChange::lease_expired_on_last_attempt(s, 1, None),
            StepChange::complete(s),
            StepChange::schedule_retry(s, now),
            StepChange::fail(s),
            StepChange::refuse_result(s, "bad"),
            StepChange::expire(s, StepState::InProgress, "stuck"),
            StepChange::cancel(s, StepState::Pending),
            StepChange::reset_for_retry(s, None, 0),
            StepChange::resolve_manually(s, StepState::Error),
            StepChange::complete_manually(s, StepState::Pending, json!(1)),
        ];
        for c in changes {
            assert!(c.from.next(c.event).is_ok(), "{c:?}");
        }
        assert_eq!(
            StepChange::reset_for_retry(s, None, 0).effect,
            Effect::Reset {
                inputs: None,
                extra_attempts: 1
            },
            "a reset always grants one attempt"
        );
    }
}

//! The figures of a run, read from the database after it: every task's
//! final state and every step's result against the shapes' arithmetic,
//! results accepted twice, tasks finalized twice, steps re-attempted, and
//! how long after the last fault the last task completed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use crate::dag::Shape;

/// A task the suite created.
#[derive(Clone, Debug)]
pub struct Tracked {
    /// Its id.
    pub task: String,
    /// Index of its shape.
    pub shape: usize,
    /// Its context's `value`.
    pub input: i64,
}

/// What one phase's tasks came to.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Tasks created.
    pub tasks: usize,
    /// Tasks that are not `complete` (target 0).
    pub lost: usize,
    /// Steps whose stored result differs from the arithmetic (target 0).
    pub wrong_results: usize,
    /// Steps with more than one accepted success (target 0).
    pub accepted_twice: usize,
    /// Tasks that reached `complete` more than once (target 0).
    pub finalized_twice: usize,
    /// Steps in all.
    pub steps: usize,
    /// Steps that ran more than once (a killed worker's steps run again:
    /// expected under SIGKILL, 0 under SIGTERM).
    pub reattempted: usize,
    /// From the last fault to the completion of the last task that was in
    /// flight at it (zero when all of them had finished before it).
    pub recovery: Option<Duration>,
}

impl Figures {
    /// Whether nothing was lost, doubled or wrong.
    pub fn correct(&self) -> bool {
        self.lost == 0
            && self.wrong_results == 0
            && self.accepted_twice == 0
            && self.finalized_twice == 0
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recovery = self
            .recovery
            .map_or_else(|| "-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        writeln!(f, "| tasks | {} |", self.tasks)?;
        writeln!(f, "| tasks lost | {} |", self.lost)?;
        writeln!(f, "| steps with a wrong result | {} |", self.wrong_results)?;
        writeln!(f, "| results accepted twice | {} |", self.accepted_twice)?;
        writeln!(f, "| tasks finalized twice | {} |", self.finalized_twice)?;
        writeln!(
            f,
            "| steps re-attempted | {} of {} |",
            self.reattempted, self.steps
        )?;
        write!(
            f,
            "| last fault to the last completion of a task in flight at it | {recovery} |"
        )
    }
}

/// A task's state, and when it was created and completed.
#[derive(Clone, Debug)]
pub struct TaskState {
    /// Its state.
    pub state: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A task's id, state, creation and completion, as queried.
type TaskRow = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// Each task's state and times.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn states(
    pool: &PgPool,
    tasks: &[String],
) -> Result<HashMap<String, TaskState>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(
        "SELECT task_uuid::text, state, created_at, completed_at FROM tasker.tasks \
         WHERE task_uuid::text = ANY($1)",
    )
    .bind(tasks)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(task, state, created_at, completed_at)| {
            let times = TaskState {
                state,
                created_at,
                completed_at,
            };
            (task, times)
        })
        .collect())
}

/// The figures of `tracked`, whose last fault was at `last_fault`.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn measure(
    pool: &PgPool,
    shapes: &[Shape],
    tracked: &[Tracked],
    last_fault: Option<DateTime<Utc>>,
) -> Result<Figures, sqlx::Error> {
    let ids: Vec<String> = tracked.iter().map(|t| t.task.clone()).collect();
    let states = states(pool, &ids).await?;
    let mut figures = Figures {
        tasks: tracked.len(),
        ..Figures::default()
    };
    // Recovery is measured on the tasks in flight at the last fault: ones
    // created later say how long the backlog took, not the recovery.
    let mut last_completion: Option<DateTime<Utc>> = None;
    for t in tracked {
        match states.get(&t.task) {
            Some(task) if task.state == "complete" => {
                if last_fault.is_some_and(|fault| task.created_at <= fault) {
                    last_completion = last_completion.max(task.completed_at);
                }
            }
            _ => figures.lost += 1,
        }
    }
    let steps: Vec<(String, String, Option<Value>, i32)> = sqlx::query_as(
        "SELECT task_uuid::text, name, results, attempts FROM tasker.workflow_steps \
         WHERE task_uuid::text = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_task: HashMap<&str, BTreeMap<String, Value>> = HashMap::new();
    for t in tracked {
        by_task.insert(&t.task, shapes[t.shape].expected(t.input));
    }
    for (task, name, results, attempts) in &steps {
        figures.steps += 1;
        figures.reattempted += usize::from(*attempts > 1);
        let expected = by_task.get(task.as_str()).and_then(|e| e.get(name));
        if results.is_some() && results.as_ref() != expected {
            figures.wrong_results += 1;
        }
    }
    let accepted_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT workflow_step_uuid FROM tasker.workflow_step_result_audit \
         WHERE accepted AND outcome = 'success' AND task_uuid::text = ANY($1) \
         GROUP BY workflow_step_uuid HAVING count(*) > 1) doubled",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?;
    let finalized_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT task_uuid FROM tasker.task_transitions \
         WHERE to_state = 'complete' AND task_uuid::text = ANY($1) \
         GROUP BY task_uuid HAVING count(*) > 1) doubled",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?;
    figures.accepted_twice = usize::try_from(accepted_twice).unwrap_or(usize::MAX);
    figures.finalized_twice = usize::try_from(finalized_twice).unwrap_or(usize::MAX);
    figures.recovery = match (last_fault, last_completion) {
        (Some(fault), Some(done)) => Some((done - fault).to_std().unwrap_or_default()),
        _ => None,
    };
    Ok(figures)
}

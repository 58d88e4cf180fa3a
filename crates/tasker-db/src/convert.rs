//! Conversions between stored text and tasker-types enums. A value that does
//! not parse is a corrupt row, reported as such rather than guessed at.

use std::str::FromStr;

use tasker_types::backoff::BackoffKind;
use tasker_types::state::{StepState, TaskState};
use tasker_types::template::StepType;

use crate::error::DbError;

pub(crate) fn task_state(s: &str) -> Result<TaskState, DbError> {
    TaskState::from_str(s).map_err(|e| DbError::Corrupt(e.to_string()))
}

pub(crate) fn step_state(s: &str) -> Result<StepState, DbError> {
    StepState::from_str(s).map_err(|e| DbError::Corrupt(e.to_string()))
}

pub(crate) fn step_type(s: &str) -> Result<StepType, DbError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| DbError::Corrupt(format!("`{s}` is not a step type")))
}

pub(crate) fn backoff(s: &str) -> Result<BackoffKind, DbError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| DbError::Corrupt(format!("`{s}` is not a backoff kind")))
}

pub(crate) fn backoff_str(kind: BackoffKind) -> &'static str {
    match kind {
        BackoffKind::None => "none",
        BackoffKind::Linear => "linear",
        BackoffKind::Exponential => "exponential",
    }
}

/// A stored count or attempt (non-negative by CHECK constraint).
pub(crate) fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A count to store; values beyond `i32::MAX` are capped (they are bounded
/// far below that by validation).
pub(crate) fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

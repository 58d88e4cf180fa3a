//! The two state machines of SPEC §3, as data: an enum of states, an enum of
//! events, and a pure `next(state, event)` that every writer goes through.

mod step;
mod task;

pub use step::{StepEvent, StepState};
pub use task::{TaskEvent, TaskState};

/// An event that is not allowed from the current state. Nothing is written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{machine} cannot `{event}` from state `{from}`")]
pub struct InvalidTransition {
    /// `"task"` or `"step"`.
    pub machine: &'static str,
    /// The state the entity was in.
    pub from: &'static str,
    /// The rejected event.
    pub event: &'static str,
}

/// A state name that is not one of the machine's states (e.g. a corrupted row).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {machine} state")]
pub struct ParseStateError {
    /// `"task"` or `"step"`.
    pub machine: &'static str,
    /// The text that failed to parse.
    pub value: String,
}

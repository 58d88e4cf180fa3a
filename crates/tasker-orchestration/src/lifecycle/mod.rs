//! The task lifecycle: creation, applying step results, operator repairs,
//! cancellation. Each operation is one transaction that changes state and
//! sends the pointers that follow from it; creation, results and repairs
//! share one shape — lock and load a [`graph::TaskGraph`], [`evaluate`] it
//! (pure), [`write`] the evaluation, flush the pointers.

pub(crate) mod batch;
pub(crate) mod cancel;
pub(crate) mod evaluate;
pub(crate) mod graph;
pub(crate) mod initialize;
pub(crate) mod outgoing;
pub mod plan;
pub(crate) mod repair;
pub(crate) mod results;
pub(crate) mod task_operation;
pub(crate) mod write;

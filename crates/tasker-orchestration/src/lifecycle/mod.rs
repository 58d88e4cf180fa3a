//! The task lifecycle: creation, applying step results, cancellation. Each
//! operation is one transaction that changes state and sends the pointers
//! that follow from it.

pub(crate) mod advance;
pub(crate) mod batch;
pub(crate) mod cancel;
pub(crate) mod expand;
pub(crate) mod initialize;
pub(crate) mod outgoing;
pub mod plan;
pub(crate) mod repair;
pub(crate) mod results;

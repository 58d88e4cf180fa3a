//! Tasker's PostgreSQL layer. All SQL lives here (SPEC §5, ARCHITECTURE §1).
//!
//! - [`migrate()`]: installs PGMQ from the `pgmq` crate's bundled SQL, then
//!   Tasker's migrations (schema `tasker`).
//! - One module per table, queries named entity-first: [`named_task`],
//!   [`task`], [`workflow_step`], [`workflow_step_edge`], [`task_transition`],
//!   [`workflow_step_transition`]; [`workflow_step_graph`] for the graphs
//!   orchestration plans over; [`dlq`] for `tasks_dlq`.
//! - Fenced transitions: every step state change goes through one writer,
//!   [`workflow_step_change`] — a set-based compare-and-set on the expected
//!   state (and attempt, lease, budget) that inserts its transition row in
//!   the same statement; a change whose fence fails writes nothing
//!   ([`DbError::TransitionConflict`] for a single change). Tasks move the
//!   same way with [`task::transition_paths_many`]. Transition rows are
//!   insert-only: the most recent is the highest `sort_key`.
//! - [`dev_cluster`]: a private PostgreSQL cluster for dev mode and tests.
//! - [`testing`] (feature `testing`): a fresh migrated database per test.
//!
//! Functions take `&mut PgConnection` (or any executor for reads) so callers
//! compose one transaction across tables and queue sends.

mod convert;
mod error;
mod migrate;
mod pool;
mod transition;

pub mod analytics;
pub mod backlog;
pub mod breakers;
pub mod dev_cluster;
pub mod dlq;
pub mod execution_context;
pub mod named_task;
pub mod result_audit;
pub mod state_counts;
pub mod step_redrive;
pub mod task;
pub mod task_staleness;
pub mod task_transition;
pub mod transition_feed;
pub mod workflow_step;
pub mod workflow_step_change;
pub mod workflow_step_edge;
pub mod workflow_step_graph;
pub mod workflow_step_transition;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::DbError;
pub use migrate::{MIGRATOR, PGMQ_CRATE_VERSION, migrate};
pub use pool::connect;
pub use transition::TransitionContext;

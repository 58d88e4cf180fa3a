//! tasker-db against a real PostgreSQL: one fresh database per test
//! (`tasker_db::testing::TestDb`), so tests run in parallel and leave nothing.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod analytics;
mod dev_cluster;
mod fencing;
mod migrations;
mod redrive;
mod state_counts;
mod step_change;
mod support;
mod task_creation;
mod templates;

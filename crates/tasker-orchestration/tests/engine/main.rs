//! The engine end to end: orchestration and workers in process, against a
//! fresh PostgreSQL database per test.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batches;
mod cancel;
mod decisions;
mod events;
mod foreign;
mod recovery;
mod redrive;
mod repair;
mod retries;
mod routing;
mod scale;
mod support;
mod worker_lifecycle;
mod workflows;

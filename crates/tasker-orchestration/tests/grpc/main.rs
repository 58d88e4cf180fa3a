//! The gRPC API against a real server in process (REST and gRPC on
//! 127.0.0.1, one fresh database per test): parity with REST over every
//! operation, the `WatchTask` stream, health and reflection.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod limits;
mod parity;
mod support;
mod watch;
mod watch_running;

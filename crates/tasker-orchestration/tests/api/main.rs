//! The REST API in process (`tower::ServiceExt::oneshot`) against a fresh
//! PostgreSQL database per test.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod analytics;
mod catalogue;
mod dlq;
mod errors;
mod openapi;
mod oversized;
mod repair;
mod routes;
mod support;

//! The auth matrix (SPEC §8.3): a real server with auth on, and for every
//! operation of the operation table — over REST and over gRPC — every kind
//! of credential: none, expired, wrong issuer, wrong audience, forged,
//! lacking the permission, holding it exactly, by wildcard, or as an API key.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod coverage;
mod grpc;
mod rest;
mod support;

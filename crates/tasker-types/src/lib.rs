//! Tasker's plain data and pure rules. Nothing here does I/O, so everything is
//! testable in microseconds and shared by every other crate.
//!
//! - [`state`]: the task and step state machines (SPEC §3).
//! - [`template`]: task templates — model, strict parser, validator (SPEC §2).
//! - [`dag`]: topological order, roots, reachability and cycles.
//! - [`dlq`]: DLQ reasons, statuses and API shapes (SPEC §4.10).
//! - [`expansion`]: what decision and batch outcomes create (SPEC §4.6–§4.7).
//! - [`readiness`]: may a step run now (SPEC §4.1).
//! - [`backoff`]: retry policy and delays (SPEC §4.4).
//! - [`identity`]: the SHA-256 identity hash over canonical JSON (SPEC §4.8).
//! - [`messages`]: queue names and pointer messages (SPEC §6).
//! - [`outcome`]: the handler outcome envelope shared by every language.
//! - [`ids`]: typed UUIDv7 identifiers.
//! - [`schema`]: compiled JSON Schemas for contexts and results.
//! - [`api`]: request and response types shared by API, client and engine.
//! - [`analytics`]: the analytics reports and their query (SPEC §8.1).
//! - [`trace`]: W3C trace context carried with tasks and messages (SPEC §11).
//! - [`auth`]: token claims and the stored form of API keys (SPEC §8.3).
//!
//! ```
//! use tasker_types::state::{StepEvent, StepState};
//!
//! let next = StepState::Enqueued.next(StepEvent::Start).unwrap();
//! assert_eq!(next, StepState::InProgress);
//! assert!(StepState::Complete.next(StepEvent::Start).is_err());
//! ```

pub mod analytics;
pub mod api;
pub mod auth;
pub mod backoff;
pub mod breaker;
pub mod dag;
pub mod dlq;
pub mod domain_event;
pub mod expansion;
pub mod identity;
pub mod ids;
pub mod messages;
pub mod names;
pub mod outcome;
pub mod readiness;
pub mod reconnect;
pub mod schema;
pub mod state;
pub mod template;
pub mod trace;

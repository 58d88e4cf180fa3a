//! The dispatch surface: how handlers written in Python, Ruby or TypeScript
//! run on this runtime (SPEC §7).
//!
//! A foreign runtime starts an [`EmbeddedWorker`] with the callables it has
//! handlers for. The worker claims, leases, times out, fences and completes
//! steps exactly as it does for Rust handlers; each foreign callable is a
//! handler that, instead of running Rust code, hands the step over:
//!
//! ```text
//! executor ── call ──▶ slot (queued) ──▶ poll(max, wait) ──▶ foreign thread / event loop
//!    ▲                                                              │ runs the handler
//!    └──────────── outcome ◀── complete(id, outcome) ◀──────────────┘
//! ```
//!
//! - [`EmbeddedWorker::poll`] waits (without any interpreter lock: the
//!   binding releases it) for up to `max` [`Dispatch`]es: a step's
//!   [`StepContextData`](crate::StepContextData) and the callable to run.
//! - [`EmbeddedWorker::complete`] hands back the language-neutral
//!   [`StepOutcome`](tasker_types::outcome::StepOutcome); the runtime checks
//!   it, batches it and writes it, fenced by the attempt.
//! - [`EmbeddedWorker::is_cancelled`] flips when the task is cancelled, the
//!   lease is lost or the attempt overran its timeout. The runtime has then
//!   already recorded the attempt's outcome, so a late
//!   [`EmbeddedWorker::complete`] is refused with [`DispatchError::Expired`];
//!   until the handler returns, its concurrency slot stays taken, so a
//!   worker whose handlers ignore their cancel flag stops claiming.
//! - [`EmbeddedWorker::save_checkpoint`] writes a batch worker's progress,
//!   fenced like its result.
//! - [`EmbeddedWorker::abandon`] gives a step back without an outcome (the
//!   foreign runtime is going away mid-handler): its lease expires and
//!   another worker re-claims it.
//!
//! The rules that turn a foreign exception or an unserialisable result into
//! a failure live here too ([`exception_outcome`], [`invalid_result_outcome`],
//! [`parse_outcome`]), so every language fails the same way.

mod bootstrap;
mod embedded;
mod error;
mod foreign;
mod hub;
mod outcomes;

pub use bootstrap::{HostOptions, init_telemetry, load_config, prepare};
pub use embedded::{EmbeddedWorker, EmbeddedWorkerOptions, WorkerState, WorkerStatus};
pub use error::DispatchError;
pub use hub::{Dispatch, DispatchId};
pub use outcomes::{exception_outcome, invalid_result_outcome, parse_outcome};

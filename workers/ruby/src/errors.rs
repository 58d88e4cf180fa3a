//! The Ruby exceptions the extension raises (classes the gem defines in
//! `lib/tasker/errors.rb`), and how dispatch errors map onto them.

use magnus::{Error, ExceptionClass, Module, RModule, Ruby, prelude::*};
use tasker_worker::dispatch::DispatchError;

/// `Tasker::<name>`, or `RuntimeError` if the gem's Ruby half is not loaded.
fn class(ruby: &Ruby, name: &str) -> ExceptionClass {
    ruby.class_object()
        .const_get::<_, RModule>("Tasker")
        .and_then(|tasker| tasker.const_get::<_, ExceptionClass>(name))
        .unwrap_or_else(|_| ruby.exception_runtime_error())
}

/// `Tasker::WorkerError` (or a subclass) with `message`.
pub(crate) fn worker_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(class(ruby, "WorkerError"), message.into())
}

/// `Tasker::ConfigError` with `message`.
pub(crate) fn config_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(class(ruby, "ConfigError"), message.into())
}

/// `Tasker::CheckpointRefused.new(message, retryable, error_type)`.
pub(crate) fn checkpoint_refused(
    ruby: &Ruby,
    message: &str,
    retryable: bool,
    error_type: &str,
) -> Error {
    match class(ruby, "CheckpointRefused").new_instance((message, retryable, error_type)) {
        Ok(exception) => exception.into(),
        Err(err) => err,
    }
}

/// A dispatch error as the Ruby exception that says what it is.
pub(crate) fn to_ruby(ruby: &Ruby, err: DispatchError) -> Error {
    match err {
        DispatchError::Forked { .. } => Error::new(class(ruby, "ForkError"), err.to_string()),
        DispatchError::Config(_) => config_error(ruby, err.to_string()),
        DispatchError::Checkpoint(error) => checkpoint_refused(
            ruby,
            error.message(),
            error.is_retryable(),
            error.error_type(),
        ),
        DispatchError::Expired(_) => checkpoint_refused(ruby, &err.to_string(), true, "lease_lost"),
        other => worker_error(ruby, other.to_string()),
    }
}

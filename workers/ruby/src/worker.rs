//! `Tasker::Native::Worker`: an [`EmbeddedWorker`] owned by a Ruby object.

use std::time::Duration;

use magnus::{Error, Ruby};
use tasker_types::outcome::{Checkpoint, StepOutcome};
use tasker_worker::dispatch::{
    DispatchError, DispatchId, EmbeddedWorker, HostOptions, exception_outcome,
    invalid_result_outcome, parse_outcome, prepare,
};

use crate::errors::{config_error, to_ruby, worker_error};
use crate::nogvl::{check_interrupts, without_gvl, without_gvl_until_run};

/// A dispatch as Ruby receives it: `[id, callable, context_json]`.
type PolledDispatch = (u64, String, String);

/// A running worker; see `Tasker::Worker` in the gem.
#[magnus::wrap(class = "Tasker::Native::Worker", free_immediately, size)]
pub(crate) struct NativeWorker {
    inner: EmbeddedWorker,
}

impl NativeWorker {
    /// `Worker.start(callables, environment, config_dir, overrides_json,
    /// include_builtins)`: loads configuration, connects, registers the
    /// configured templates and starts serving (GVL released meanwhile).
    pub(crate) fn start(
        ruby: &Ruby,
        callables: Vec<String>,
        environment: Option<String>,
        config_dir: Option<String>,
        overrides_json: String,
        include_builtins: bool,
    ) -> Result<Self, Error> {
        let options = prepare(HostOptions {
            environment: environment.as_deref(),
            config_dir: config_dir.as_deref(),
            overrides_json: &overrides_json,
            callables,
            include_builtins,
        })
        .map_err(|e| config_error(ruby, e.to_string()))?;
        let started = without_gvl_until_run(ruby, move |_| EmbeddedWorker::start(options))?;
        check_interrupts()?;
        started
            .map(|inner| Self { inner })
            .map_err(|err| to_ruby(ruby, err))
    }

    pub(crate) fn worker_id(&self) -> String {
        self.inner.worker_id().to_owned()
    }

    /// `poll(max, wait_ms)`: up to `max` `[id, callable, context_json]`,
    /// waiting up to `wait_ms` for the first with the GVL released (an
    /// interrupt ends the wait early); `nil` once the worker has stopped.
    pub(crate) fn poll(
        ruby: &Ruby,
        rb_self: &Self,
        max: usize,
        wait_ms: u64,
    ) -> Result<Option<Vec<PolledDispatch>>, Error> {
        let wait = Duration::from_millis(wait_ms);
        let polled = without_gvl(ruby, |interrupt| {
            rb_self
                .inner
                .poll_blocking_until(max, wait, interrupt)
                .map(|batch| {
                    batch
                        .into_iter()
                        .map(|d| (d.id.0, serde_json::to_string(d.context()), d.callable))
                        .collect::<Vec<_>>()
                })
        })?;
        let result = match polled {
            None => Ok(Some(Vec::new())),
            Some(Ok(batch)) => batch
                .into_iter()
                .map(|(id, json, callable)| {
                    json.map(|json| (id, callable, json))
                        .map_err(|e| worker_error(ruby, format!("step context: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Err(DispatchError::Stopped)) => Ok(None),
            Some(Err(err)) => Err(to_ruby(ruby, err)),
        };
        check_interrupts()?;
        result
    }

    /// `complete(id, outcome_json)`: the serialised envelope (one that does
    /// not parse fails the step as `invalid_result`); `false` when the
    /// attempt was over already and the result is discarded.
    pub(crate) fn complete(
        ruby: &Ruby,
        rb_self: &Self,
        id: u64,
        outcome_json: String,
    ) -> Result<bool, Error> {
        rb_self.finish(ruby, id, parse_outcome(&outcome_json))
    }

    /// `fail_with_exception(id, class_name, message, backtrace)`: a retryable
    /// `exception` failure carrying the class and backtrace.
    pub(crate) fn fail_with_exception(
        ruby: &Ruby,
        rb_self: &Self,
        id: u64,
        kind: String,
        message: String,
        backtrace: Option<String>,
    ) -> Result<bool, Error> {
        rb_self.finish(
            ruby,
            id,
            exception_outcome(&kind, &message, backtrace.as_deref()),
        )
    }

    /// `reject_result(id, detail)`: a permanent `invalid_result` failure.
    pub(crate) fn reject_result(
        ruby: &Ruby,
        rb_self: &Self,
        id: u64,
        detail: String,
    ) -> Result<bool, Error> {
        rb_self.finish(ruby, id, invalid_result_outcome(&detail))
    }

    /// `abandon(id)`: gives the step back without an outcome.
    pub(crate) fn abandon(ruby: &Ruby, rb_self: &Self, id: u64) -> Result<(), Error> {
        rb_self
            .inner
            .abandon(DispatchId(id))
            .map_err(|e| to_ruby(ruby, e))
    }

    /// `cancelled?(id)`: whether the handler should stop.
    pub(crate) fn is_cancelled(ruby: &Ruby, rb_self: &Self, id: u64) -> Result<bool, Error> {
        rb_self
            .inner
            .is_cancelled(DispatchId(id))
            .map_err(|e| to_ruby(ruby, e))
    }

    /// `save_checkpoint(id, checkpoint_json)`, GVL released while the row is
    /// written; raises `Tasker::CheckpointRefused` when the attempt is no
    /// longer current.
    pub(crate) fn save_checkpoint(
        ruby: &Ruby,
        rb_self: &Self,
        id: u64,
        checkpoint_json: String,
    ) -> Result<(), Error> {
        let checkpoint: Checkpoint = serde_json::from_str(&checkpoint_json).map_err(|e| {
            Error::new(ruby.exception_arg_error(), format!("not a checkpoint: {e}"))
        })?;
        without_gvl_until_run(ruby, |_| {
            rb_self
                .inner
                .save_checkpoint_blocking(DispatchId(id), checkpoint)
        })?
        .map_err(|err| to_ruby(ruby, err))
    }

    /// `stop`: asks the worker to stop; returns at once.
    pub(crate) fn stop(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.inner.stop().map_err(|e| to_ruby(ruby, e))
    }

    /// `wait_stopped(timeout_ms)`: waits (GVL released, interruptible) for
    /// the worker to stop; whether it has.
    pub(crate) fn wait_stopped(
        ruby: &Ruby,
        rb_self: &Self,
        timeout_ms: u64,
    ) -> Result<bool, Error> {
        let timeout = Duration::from_millis(timeout_ms);
        let waited = without_gvl(ruby, |interrupt| {
            rb_self
                .inner
                .wait_stopped_blocking_until(timeout, interrupt)
        })?;
        check_interrupts()?;
        match waited {
            Some(Ok(stopped)) => Ok(stopped),
            Some(Err(err)) => Err(to_ruby(ruby, err)),
            None => Ok(rb_self.inner.is_stopped()),
        }
    }

    /// `stopped?`
    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// `status_json`: the worker's state and counters.
    pub(crate) fn status_json(ruby: &Ruby, rb_self: &Self) -> Result<String, Error> {
        serde_json::to_string(&rb_self.inner.status())
            .map_err(|e| worker_error(ruby, e.to_string()))
    }

    fn finish(&self, ruby: &Ruby, id: u64, outcome: StepOutcome) -> Result<bool, Error> {
        match self.inner.complete(DispatchId(id), outcome) {
            Ok(()) => Ok(true),
            Err(DispatchError::Expired(_)) => Ok(false),
            Err(err) => Err(to_ruby(ruby, err)),
        }
    }
}

//! `NativeWorker`: an [`EmbeddedWorker`] owned by a Python object.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tasker_types::outcome::Checkpoint;
use tasker_types::outcome::StepOutcome;
use tasker_worker::dispatch::{
    DispatchError, DispatchId, EmbeddedWorker, HostOptions, exception_outcome,
    invalid_result_outcome, parse_outcome, prepare,
};

use crate::errors::{CheckpointRefused, ConfigError, WorkerError, to_py};

/// Outcomes up to this size are parsed with the GIL held: releasing and
/// re-taking it costs more than parsing a small envelope.
const DETACH_ABOVE_BYTES: usize = 16 * 1024;

/// A dispatch as Python receives it: `(id, callable, context_json)`.
type PolledDispatch = (u64, String, String);

/// A running worker. Made by `NativeWorker.start`; see the `tasker` package.
#[pyclass(frozen, module = "tasker._native")]
pub(crate) struct NativeWorker {
    inner: EmbeddedWorker,
}

#[pymethods]
impl NativeWorker {
    /// Loads configuration (TOML layers, `TASKER_ENV`, `DATABASE_URL`, …, then
    /// `overrides_json`: `{"worker.concurrency": 8, …}`), connects, registers
    /// the configured templates and starts serving `callables`.
    #[staticmethod]
    #[pyo3(signature = (callables, *, environment=None, config_dir=None, overrides_json="{}", include_builtins=false))]
    fn start(
        py: Python<'_>,
        callables: Vec<String>,
        environment: Option<String>,
        config_dir: Option<String>,
        overrides_json: &str,
        include_builtins: bool,
    ) -> PyResult<Self> {
        let options = prepare(HostOptions {
            environment: environment.as_deref(),
            config_dir: config_dir.as_deref(),
            overrides_json,
            callables,
            include_builtins,
        })
        .map_err(|e| ConfigError::new_err(e.to_string()))?;
        let inner = py
            .detach(|| EmbeddedWorker::start(options))
            .map_err(to_py)?;
        Ok(Self { inner })
    }

    /// This worker's id, as recorded in claims and transitions.
    #[getter]
    fn worker_id(&self) -> String {
        self.inner.worker_id().to_owned()
    }

    /// Up to `max` dispatches as `(id, callable, context_json)`, waiting up
    /// to `wait_ms` for the first with the GIL released; `None` once the
    /// worker has stopped. With `signal_check_ms` above zero the wait is cut
    /// into slices that long, with signal handlers run between them (for a
    /// poll on the main thread, so Ctrl-C works while it waits).
    #[pyo3(signature = (max, wait_ms, signal_check_ms=0))]
    fn poll(
        &self,
        py: Python<'_>,
        max: usize,
        wait_ms: u64,
        signal_check_ms: u64,
    ) -> PyResult<Option<Vec<PolledDispatch>>> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let slice_limit = if signal_check_ms == 0 {
            Duration::MAX
        } else {
            Duration::from_millis(signal_check_ms)
        };
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(slice_limit);
            let polled = py.detach(|| {
                self.inner.poll_blocking(max, slice).map(|batch| {
                    batch
                        .into_iter()
                        .map(|d| (d.id.0, serde_json::to_string(d.context()), d.callable))
                        .collect::<Vec<_>>()
                })
            });
            match polled {
                Ok(batch) if !batch.is_empty() => {
                    return batch
                        .into_iter()
                        .map(|(id, json, callable)| {
                            json.map(|json| (id, callable, json))
                                .map_err(|e| WorkerError::new_err(format!("step context: {e}")))
                        })
                        .collect::<PyResult<Vec<_>>>()
                        .map(Some);
                }
                Ok(_) => {}
                Err(DispatchError::Stopped) => return Ok(None),
                Err(err) => return Err(to_py(err)),
            }
            py.check_signals()?;
            if Instant::now() >= deadline {
                return Ok(Some(Vec::new()));
            }
        }
    }

    /// Completes `id` with a serialised outcome envelope (one that does not
    /// parse fails the step as `invalid_result`). `False` when the attempt
    /// was over already (timeout, cancellation): the result is discarded.
    fn complete(&self, py: Python<'_>, id: u64, outcome_json: &str) -> PyResult<bool> {
        let outcome = if outcome_json.len() > DETACH_ABOVE_BYTES {
            py.detach(|| parse_outcome(outcome_json))
        } else {
            parse_outcome(outcome_json)
        };
        self.finish(id, outcome)
    }

    /// Fails `id` with an exception the handler raised (a retryable
    /// `exception` failure carrying its type and traceback). `False` when
    /// the attempt was over already.
    #[pyo3(signature = (id, kind, message, traceback=None))]
    fn fail_with_exception(
        &self,
        id: u64,
        kind: &str,
        message: &str,
        traceback: Option<&str>,
    ) -> PyResult<bool> {
        self.finish(id, exception_outcome(kind, message, traceback))
    }

    /// Fails `id` because its result could not be serialised (a permanent
    /// `invalid_result` failure naming why). `False` when the attempt was
    /// over already.
    fn reject_result(&self, id: u64, detail: &str) -> PyResult<bool> {
        self.finish(id, invalid_result_outcome(detail))
    }

    /// Gives `id` back without an outcome: its lease expires and another
    /// worker re-claims the step.
    fn abandon(&self, id: u64) -> PyResult<()> {
        self.inner.abandon(DispatchId(id)).map_err(to_py)
    }

    /// Whether the handler of `id` should stop (task cancelled, lease lost,
    /// timeout overrun).
    fn is_cancelled(&self, id: u64) -> PyResult<bool> {
        self.inner.is_cancelled(DispatchId(id)).map_err(to_py)
    }

    /// Saves a checkpoint (`{"cursor", "items_processed", "partial_results"}`)
    /// for `id`'s attempt, GIL released. Raises `CheckpointRefused` when the
    /// attempt is no longer current.
    fn save_checkpoint(&self, py: Python<'_>, id: u64, checkpoint_json: &str) -> PyResult<()> {
        let checkpoint: Checkpoint = serde_json::from_str(checkpoint_json)
            .map_err(|e| PyValueError::new_err(format!("not a checkpoint: {e}")))?;
        py.detach(|| {
            self.inner
                .save_checkpoint_blocking(DispatchId(id), checkpoint)
        })
        .map_err(|err| match err {
            DispatchError::Expired(_) => {
                CheckpointRefused::new_err((err.to_string(), true, "lease_lost".to_owned()))
            }
            other => to_py(other),
        })
    }

    /// Asks the worker to stop; returns at once. Keep polling until `poll`
    /// returns `None`: dispatched steps still arrive and should finish.
    fn stop(&self) -> PyResult<()> {
        self.inner.stop().map_err(to_py)
    }

    /// Waits up to `timeout_ms` (GIL released) for the worker to stop.
    fn wait_stopped(&self, py: Python<'_>, timeout_ms: u64) -> PyResult<bool> {
        py.detach(|| {
            self.inner
                .wait_stopped_blocking(Duration::from_millis(timeout_ms))
        })
        .map_err(to_py)
    }

    /// Whether the worker has stopped (nothing more will be dispatched).
    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// The worker's state and counters, as JSON.
    fn status_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.status()).map_err(|e| WorkerError::new_err(e.to_string()))
    }
}

impl NativeWorker {
    fn finish(&self, id: u64, outcome: StepOutcome) -> PyResult<bool> {
        match self.inner.complete(DispatchId(id), outcome) {
            Ok(()) => Ok(true),
            Err(DispatchError::Expired(_)) => Ok(false),
            Err(err) => Err(to_py(err)),
        }
    }
}

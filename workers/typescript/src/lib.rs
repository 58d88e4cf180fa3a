//! The TypeScript worker's addon (napi-rs): a thin binding over
//! `tasker-worker`'s dispatch surface. It only marshals — JSON strings and
//! plain values cross the boundary, every rule (claiming, leases,
//! timeouts, fencing, how a thrown value becomes a failure) lives in
//! `tasker-worker` — and nothing here blocks Node's event loop: waits are
//! promises resolved from Rust. The `@tasker/worker` package (`ts/`) on top
//! of it is what users import.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tasker_types::outcome::{Checkpoint, StepOutcome};
use tasker_types::state::TaskState;
use tasker_worker::dispatch::{
    DispatchError, DispatchId, EmbeddedWorker, HostOptions, exception_outcome,
    invalid_result_outcome, parse_outcome, prepare,
};

/// The JS error code of an invalid configuration.
const CONFIG_ERROR: &str = "TASKER_CONFIG_ERROR";
/// The JS error code of a worker used in a forked child.
const FORK_ERROR: &str = "TASKER_FORK_ERROR";
/// The JS error code of any other worker failure.
const WORKER_ERROR: &str = "TASKER_WORKER_ERROR";

fn error(code: &str, message: impl Into<String>) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("{code}: {}", message.into()),
    )
}

fn to_js(err: DispatchError) -> Error {
    let code = match err {
        DispatchError::Forked { .. } => FORK_ERROR,
        DispatchError::Config(_) => CONFIG_ERROR,
        _ => WORKER_ERROR,
    };
    error(code, err.to_string())
}

/// How to start a worker.
#[napi(object)]
pub struct StartOptions {
    /// Callables the JS side has handlers for.
    pub callables: Vec<String>,
    /// The configuration environment, instead of `TASKER_ENV`.
    pub environment: Option<String>,
    /// A directory of TOML overrides, instead of `TASKER_CONFIG_DIR`.
    pub config_dir: Option<String>,
    /// Keyword options as a JSON object of dotted keys.
    pub overrides_json: String,
    /// Also serve Rust's built-in `tasker::*` handlers.
    pub include_builtins: bool,
}

/// A step for a JS handler to run.
#[napi(object)]
pub struct Dispatch {
    /// Pass it back to complete, checkpoint or ask about cancellation.
    pub id: i64,
    /// The handler to run.
    pub callable: String,
    /// The step context, as JSON with snake_case keys.
    pub context_json: String,
}

/// Why a checkpoint was not saved.
#[napi(object)]
pub struct CheckpointRefusal {
    /// What happened.
    pub message: String,
    /// Whether another attempt may help.
    pub retryable: bool,
    /// The failure category (`lease_lost`, …).
    pub error_type: String,
}

/// The task states from which a task does not move on by itself.
#[napi]
pub fn terminal_task_states() -> Vec<&'static str> {
    TaskState::terminal_names()
}

/// Loads configuration, connects, registers the configured templates and
/// starts serving; resolves once the worker runs (the connection happens
/// on a thread of its own, not on the event loop).
#[napi]
pub async fn start_worker(options: StartOptions) -> Result<NativeWorker> {
    let prepared = prepare(HostOptions {
        environment: options.environment.as_deref(),
        config_dir: options.config_dir.as_deref(),
        overrides_json: &options.overrides_json,
        callables: options.callables,
        include_builtins: options.include_builtins,
    })
    .map_err(|e| error(CONFIG_ERROR, e.to_string()))?;
    // `EmbeddedWorker::start` runs its own runtime: off every executor.
    let (done, started) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tasker-start".into())
        .spawn(move || {
            let _ = done.send(EmbeddedWorker::start(prepared));
        })
        .map_err(|e| error(WORKER_ERROR, format!("cannot start a thread: {e}")))?;
    let worker = started
        .await
        .map_err(|_| error(WORKER_ERROR, "the start thread died"))?
        .map_err(to_js)?;
    Ok(NativeWorker {
        inner: Arc::new(worker),
    })
}

/// A running worker; see `Worker` in the package.
#[napi]
pub struct NativeWorker {
    inner: Arc<EmbeddedWorker>,
}

#[napi]
impl NativeWorker {
    /// This worker's id, as recorded in claims and transitions.
    #[napi(getter)]
    pub fn worker_id(&self) -> String {
        self.inner.worker_id().to_owned()
    }

    /// Up to `max` dispatches, waiting up to `wait_ms` for the first;
    /// `null` once the worker has stopped.
    #[napi]
    pub async fn poll(&self, max: u32, wait_ms: u32) -> Result<Option<Vec<Dispatch>>> {
        let wait = Duration::from_millis(u64::from(wait_ms));
        match self.inner.poll(max as usize, wait).await {
            Ok(batch) => batch
                .into_iter()
                .map(|d| {
                    let context_json = serde_json::to_string(d.context())
                        .map_err(|e| error(WORKER_ERROR, format!("step context: {e}")))?;
                    Ok(Dispatch {
                        id: i64::try_from(d.id.0)
                            .map_err(|_| error(WORKER_ERROR, "dispatch id out of range"))?,
                        callable: d.callable,
                        context_json,
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Err(DispatchError::Stopped) => Ok(None),
            Err(err) => Err(to_js(err)),
        }
    }

    /// Completes `id` with a serialised outcome envelope (one that does not
    /// parse fails the step as `invalid_result`); `false` when the attempt
    /// was over already and the result is discarded.
    #[napi]
    pub fn complete(&self, id: i64, outcome_json: String) -> Result<bool> {
        self.finish(id, parse_outcome(&outcome_json))
    }

    /// Fails `id` with a thrown value that is not a Tasker error: a
    /// retryable `exception` failure carrying its name and stack.
    #[napi]
    pub fn fail_with_exception(
        &self,
        id: i64,
        kind: String,
        message: String,
        stack: Option<String>,
    ) -> Result<bool> {
        self.finish(id, exception_outcome(&kind, &message, stack.as_deref()))
    }

    /// Fails `id` because its result could not be serialised: a permanent
    /// `invalid_result` failure naming why.
    #[napi]
    pub fn reject_result(&self, id: i64, detail: String) -> Result<bool> {
        self.finish(id, invalid_result_outcome(&detail))
    }

    /// Gives `id` back without an outcome: its lease expires and another
    /// worker re-claims the step.
    #[napi]
    pub fn abandon(&self, id: i64) -> Result<()> {
        self.inner.abandon(dispatch_id(id)?).map_err(to_js)
    }

    /// Whether the handler of `id` should stop (task cancelled, lease lost,
    /// timeout overrun).
    #[napi]
    pub fn is_cancelled(&self, id: i64) -> Result<bool> {
        self.inner.is_cancelled(dispatch_id(id)?).map_err(to_js)
    }

    /// Saves a checkpoint for `id`'s attempt; resolves `null` when saved,
    /// or with why it was refused (the attempt is no longer current).
    #[napi]
    pub async fn save_checkpoint(
        &self,
        id: i64,
        checkpoint_json: String,
    ) -> Result<Option<CheckpointRefusal>> {
        let checkpoint: Checkpoint = serde_json::from_str(&checkpoint_json)
            .map_err(|e| Error::new(Status::InvalidArg, format!("not a checkpoint: {e}")))?;
        match self
            .inner
            .save_checkpoint(dispatch_id(id)?, checkpoint)
            .await
        {
            Ok(()) => Ok(None),
            Err(DispatchError::Checkpoint(refused)) => Ok(Some(CheckpointRefusal {
                message: refused.message().to_owned(),
                retryable: refused.is_retryable(),
                error_type: refused.error_type().to_owned(),
            })),
            Err(err @ DispatchError::Expired(_)) => Ok(Some(CheckpointRefusal {
                message: err.to_string(),
                retryable: true,
                error_type: "lease_lost".to_owned(),
            })),
            Err(err) => Err(to_js(err)),
        }
    }

    /// Asks the worker to stop; returns at once. Keep polling until `poll`
    /// resolves `null`: dispatched steps still arrive and should finish.
    #[napi]
    pub fn stop(&self) -> Result<()> {
        self.inner.stop().map_err(to_js)
    }

    /// Resolves once the worker has stopped.
    #[napi]
    pub async fn stopped(&self) -> Result<()> {
        self.inner.stopped().await.map_err(to_js)
    }

    /// Whether the worker has stopped.
    #[napi]
    pub fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// The worker's state and counters, as JSON.
    #[napi]
    pub fn status_json(&self) -> Result<String> {
        serde_json::to_string(&self.inner.status()).map_err(|e| error(WORKER_ERROR, e.to_string()))
    }

    fn finish(&self, id: i64, outcome: StepOutcome) -> Result<bool> {
        match self.inner.complete(dispatch_id(id)?, outcome) {
            Ok(()) => Ok(true),
            Err(DispatchError::Expired(_)) => Ok(false),
            Err(err) => Err(to_js(err)),
        }
    }
}

fn dispatch_id(id: i64) -> Result<DispatchId> {
    u64::try_from(id)
        .map(DispatchId)
        .map_err(|_| Error::new(Status::InvalidArg, format!("{id} is not a dispatch id")))
}

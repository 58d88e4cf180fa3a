//! A worker that a foreign runtime owns: its own tokio runtime, the
//! [`Worker`] serving the foreign callables (and any Rust handlers beside
//! them), and the calls a binding makes, in a blocking form (for threads of
//! Python and Ruby, with their interpreter lock released) and an async form
//! (for Node's promises).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde::Serialize;
use tasker_config::TaskerConfig;
use tasker_types::outcome::{Checkpoint, StepOutcome};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::error::DispatchError;
use super::foreign::ForeignHandler;
use super::hub::{Dispatch, DispatchCounts, DispatchHub, DispatchId, SlotCounts};
use crate::error::WorkerError;
use crate::registry::HandlerRegistry;
use crate::runtime::Worker;

/// What to start.
#[derive(Debug)]
pub struct EmbeddedWorkerOptions {
    /// The loaded configuration (the host's TOML and environment).
    pub config: TaskerConfig,
    /// Callables the foreign runtime has handlers for.
    pub callables: Vec<String>,
    /// Rust handlers served beside them (e.g. the built-in `tasker::*`);
    /// a foreign callable of the same name replaces the Rust one.
    pub rust_handlers: HandlerRegistry,
}

/// Where the worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Claiming and dispatching steps.
    Running,
    /// Asked to stop: no new claims; dispatched steps may still finish.
    Stopping,
    /// Stopped: nothing more will be dispatched.
    Stopped,
}

impl WorkerState {
    const fn from_u8(value: u8) -> Self {
        match value {
            0 => WorkerState::Running,
            1 => WorkerState::Stopping,
            _ => WorkerState::Stopped,
        }
    }
}

/// A snapshot for `status()` calls, logs and tests.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    /// Running, stopping or stopped.
    pub state: WorkerState,
    /// The worker's id, as recorded in claims and transitions.
    pub worker_id: String,
    /// The process that started the worker.
    pub pid: u32,
    /// The foreign callables served.
    pub callables: Vec<String>,
    /// Handlers that may run at once (`worker.concurrency`): the foreign
    /// runtime's thread pool or in-flight limit should match it.
    pub concurrency: usize,
    /// Dispatches by state, right now.
    pub slots: SlotCounts,
    /// What went through the worker so far.
    pub totals: DispatchCounts,
}

/// See the module documentation. Dropping it stops the worker abruptly
/// (running steps are re-claimed after their lease); call
/// [`EmbeddedWorker::stop`] and wait for [`EmbeddedWorker::stopped`] to
/// drain first.
pub struct EmbeddedWorker {
    pid: u32,
    /// Always `Some` until dropped: shut down in the process that started
    /// it, leaked in a forked child, where dropping a runtime can hang.
    runtime: Option<Runtime>,
    hub: Arc<DispatchHub>,
    worker: Worker,
    callables: Vec<String>,
    concurrency: usize,
    shutdown: CancellationToken,
    state: Arc<AtomicU8>,
    finished: CancellationToken,
}

impl std::fmt::Debug for EmbeddedWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedWorker")
            .field("worker_id", &self.worker.worker_id())
            .field("pid", &self.pid)
            .finish()
    }
}

impl EmbeddedWorker {
    /// Fast domain events of the steps this worker runs — the hook a
    /// foreign runtime uses for in-process subscribers: read them on a
    /// thread of its own with [`crate::events::EventSubscription::blocking_recv`].
    pub fn subscribe_events(&self) -> crate::events::EventSubscription {
        self.worker.subscribe_events()
    }

    /// What this worker published and dropped since it started.
    pub fn event_stats(&self) -> crate::events::EventStats {
        self.worker.event_stats()
    }

    /// Connects, registers the configured templates and starts serving:
    /// the worker listens on every namespace whose callables it has (or the
    /// configured ones). Blocks until it runs; call it without holding an
    /// interpreter lock.
    ///
    /// # Errors
    /// [`DispatchError`] when the runtime cannot start, PostgreSQL is
    /// unreachable or a template is invalid.
    pub fn start(options: EmbeddedWorkerOptions) -> Result<Self, DispatchError> {
        let EmbeddedWorkerOptions {
            config,
            callables,
            rust_handlers,
        } = options;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("tasker-worker")
            .build()
            .map_err(DispatchError::Runtime)?;
        let concurrency = config.worker.concurrency.get();
        let hub = Arc::new(DispatchHub::new(concurrency));
        let mut registry = rust_handlers;
        for callable in &callables {
            if registry.contains(callable) {
                tracing::info!(%callable, "a foreign handler replaces the Rust one");
            }
            registry.register(
                callable.clone(),
                ForeignHandler {
                    hub: hub.clone(),
                    callable: callable.clone(),
                },
            );
        }
        let worker = match runtime.block_on(async {
            let worker = Worker::connect(config, registry).await?;
            worker.register_templates().await?;
            Ok::<_, WorkerError>(worker)
        }) {
            Ok(worker) => worker,
            Err(err) => {
                runtime.shutdown_background();
                return Err(err.into());
            }
        };

        let shutdown = CancellationToken::new();
        let state = Arc::new(AtomicU8::new(WorkerState::Running as u8));
        let finished = CancellationToken::new();
        runtime.spawn({
            let worker = worker.clone();
            let shutdown = shutdown.clone();
            let hub = hub.clone();
            let state = state.clone();
            let finished = finished.clone();
            async move {
                worker.serve(shutdown).await;
                state.store(WorkerState::Stopped as u8, Ordering::SeqCst);
                hub.close();
                finished.cancel();
            }
        });
        Ok(Self {
            pid: std::process::id(),
            runtime: Some(runtime),
            hub,
            worker,
            callables,
            concurrency,
            shutdown,
            state,
            finished,
        })
    }

    /// Runs `future` to completion on this worker's runtime, blocking the
    /// calling thread (which must not be one of the runtime's own).
    fn block_on<F: Future>(&self, future: F) -> Result<F::Output, DispatchError> {
        self.same_process()?;
        let runtime = self.runtime.as_ref().ok_or(DispatchError::Stopped)?;
        Ok(runtime.block_on(future))
    }

    /// Runs `future` on this worker's runtime, so the async methods can be
    /// awaited from any executor (Node's, through napi-rs) without touching
    /// timers or connections of a runtime that is not theirs.
    async fn on_runtime<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, DispatchError> {
        let runtime = self.runtime.as_ref().ok_or(DispatchError::Stopped)?;
        runtime
            .spawn(future)
            .await
            .map_err(|_| DispatchError::Stopped)
    }

    fn same_process(&self) -> Result<(), DispatchError> {
        let current = std::process::id();
        if current == self.pid {
            Ok(())
        } else {
            Err(DispatchError::Forked {
                started: self.pid,
                current,
            })
        }
    }

    /// This worker's id, as recorded in claims and transition rows.
    pub fn worker_id(&self) -> &str {
        self.worker.worker_id()
    }

    /// Up to `max` dispatches: those waiting now, or else the first to
    /// arrive within `wait`; empty when `wait` passes with nothing.
    ///
    /// # Errors
    /// [`DispatchError::Stopped`] once the worker has stopped and every
    /// dispatch was handed out; [`DispatchError::Forked`] in a forked child.
    pub async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<Dispatch>, DispatchError> {
        self.same_process()?;
        let hub = self.hub.clone();
        self.on_runtime(async move { hub.poll(max, wait).await })
            .await?
    }

    /// [`EmbeddedWorker::poll`], blocking the calling thread (never a
    /// thread of this worker's runtime). Release the interpreter lock first.
    ///
    /// # Errors
    /// As [`EmbeddedWorker::poll`].
    pub fn poll_blocking(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Dispatch>, DispatchError> {
        self.block_on(self.hub.poll(max, wait))?
    }

    /// [`EmbeddedWorker::poll_blocking`] that also returns (empty) as soon as
    /// `interrupt` is cancelled — for an interpreter that unblocks a waiting
    /// thread to deliver a signal (Ruby's unblocking function).
    ///
    /// # Errors
    /// As [`EmbeddedWorker::poll`].
    pub fn poll_blocking_until(
        &self,
        max: usize,
        wait: Duration,
        interrupt: &CancellationToken,
    ) -> Result<Vec<Dispatch>, DispatchError> {
        self.block_on(async {
            tokio::select! {
                polled = self.hub.poll(max, wait) => polled,
                () = interrupt.cancelled() => Ok(Vec::new()),
            }
        })?
    }

    /// Hands back the outcome of dispatch `id`; the runtime validates it
    /// (`result_schema`) and writes it, batched and fenced by the attempt.
    ///
    /// # Errors
    /// [`DispatchError::Expired`] when the attempt ended first (its outcome
    /// — timeout, cancellation — is already recorded: the caller should
    /// log and move on); [`DispatchError::Unknown`] for an id never handed
    /// out or completed already.
    pub fn complete(&self, id: DispatchId, outcome: StepOutcome) -> Result<(), DispatchError> {
        self.same_process()?;
        self.hub.complete(id, outcome)
    }

    /// Gives dispatch `id` back without an outcome: the step's lease
    /// expires and another worker re-claims it (for a foreign runtime that is
    /// going away mid-handler).
    ///
    /// # Errors
    /// [`DispatchError::Unknown`] for an id not outstanding.
    pub fn abandon(&self, id: DispatchId) -> Result<(), DispatchError> {
        self.same_process()?;
        self.hub.abandon(id)
    }

    /// Whether the handler of `id` should stop: the task was cancelled, the
    /// lease lost, or the attempt overran its timeout. Cheap: poll it often.
    ///
    /// # Errors
    /// [`DispatchError::Forked`] in a forked child.
    pub fn is_cancelled(&self, id: DispatchId) -> Result<bool, DispatchError> {
        self.same_process()?;
        Ok(self.hub.is_cancelled(id))
    }

    /// Saves a batch worker's progress for dispatch `id`, fenced by its
    /// attempt: a retried attempt resumes from it (SPEC §4.7).
    ///
    /// # Errors
    /// [`DispatchError::Checkpoint`] when the attempt is no longer current
    /// or the database failed; [`DispatchError::Expired`] after its attempt
    /// ended.
    pub async fn save_checkpoint(
        &self,
        id: DispatchId,
        checkpoint: Checkpoint,
    ) -> Result<(), DispatchError> {
        self.same_process()?;
        let hub = self.hub.clone();
        self.on_runtime(async move { hub.save_checkpoint(id, checkpoint).await })
            .await?
    }

    /// [`EmbeddedWorker::save_checkpoint`], blocking the calling thread.
    ///
    /// # Errors
    /// As [`EmbeddedWorker::save_checkpoint`].
    pub fn save_checkpoint_blocking(
        &self,
        id: DispatchId,
        checkpoint: Checkpoint,
    ) -> Result<(), DispatchError> {
        self.block_on(self.hub.save_checkpoint(id, checkpoint))?
    }

    /// Asks the worker to stop: it claims nothing more, lets dispatched
    /// steps finish for `worker.shutdown_timeout_ms`, then abandons the
    /// rest. Keep polling and completing until [`DispatchError::Stopped`].
    /// Returns at once.
    ///
    /// # Errors
    /// [`DispatchError::Forked`] in a forked child.
    pub fn stop(&self) -> Result<(), DispatchError> {
        self.same_process()?;
        let _ = self.state.compare_exchange(
            WorkerState::Running as u8,
            WorkerState::Stopping as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.shutdown.cancel();
        Ok(())
    }

    /// Resolves once the worker has stopped.
    ///
    /// # Errors
    /// [`DispatchError::Forked`] in a forked child.
    pub async fn stopped(&self) -> Result<(), DispatchError> {
        self.same_process()?;
        let finished = self.finished.clone();
        self.on_runtime(async move { finished.cancelled_owned().await })
            .await
    }

    /// Waits up to `timeout` for the worker to stop; whether it has.
    ///
    /// # Errors
    /// [`DispatchError::Forked`] in a forked child.
    pub fn wait_stopped_blocking(&self, timeout: Duration) -> Result<bool, DispatchError> {
        self.wait_stopped_blocking_until(timeout, &CancellationToken::new())
    }

    /// [`EmbeddedWorker::wait_stopped_blocking`] that also returns (with
    /// `false`, unless stopped) as soon as `interrupt` is cancelled.
    ///
    /// # Errors
    /// [`DispatchError::Forked`] in a forked child.
    pub fn wait_stopped_blocking_until(
        &self,
        timeout: Duration,
        interrupt: &CancellationToken,
    ) -> Result<bool, DispatchError> {
        self.block_on(async {
            tokio::select! {
                () = self.finished.cancelled() => true,
                () = tokio::time::sleep(timeout) => self.finished.is_cancelled(),
                () = interrupt.cancelled() => self.finished.is_cancelled(),
            }
        })
    }

    /// Where the worker is and what went through it.
    pub fn status(&self) -> WorkerStatus {
        WorkerStatus {
            state: WorkerState::from_u8(self.state.load(Ordering::SeqCst)),
            worker_id: self.worker.worker_id().to_owned(),
            pid: self.pid,
            callables: self.callables.clone(),
            concurrency: self.concurrency,
            slots: self.hub.slot_counts(),
            totals: self.hub.counts(),
        }
    }

    /// Whether the worker has stopped (nothing more will be dispatched).
    pub fn is_stopped(&self) -> bool {
        self.hub.is_stopped()
    }
}

impl Drop for EmbeddedWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // The host may exit right after: send the spans still buffered.
        if std::process::id() == self.pid {
            tasker_telemetry::flush_process();
        }
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if std::process::id() == self.pid {
            runtime.shutdown_background();
        } else {
            // A forked child: the runtime's threads do not exist here and
            // dropping it can hang (tokio#4301). Leak it.
            std::mem::forget(runtime);
        }
    }
}

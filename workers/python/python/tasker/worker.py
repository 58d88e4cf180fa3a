"""The Python worker: Tasker's Rust worker core claims, leases, times out
and completes steps; this module runs their handlers.

``worker.concurrency`` threads each wait (GIL released) for a step, run
it if its handler is plain, or hand it to one asyncio event loop in a
thread of its own if it is ``async def``, and wait for the next. The Rust
core never hands out more steps than ``worker.concurrency``, counting
handlers that overran their timeout until they return, so a thread is
always free for the next plain step.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import json
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

from ._native import NativeWorker
from .context import StepContext
from .errors import PermanentError, StepError, WorkerError
from .handlers import RegisteredHandler, Registry, default_registry
from .outcome import deliver, deliver_exception, failure_envelope, success_envelope

__all__ = ["Worker"]

log = logging.getLogger("tasker.worker")

#: How long one poll waits for work (GIL released) before it looks again.
POLL_WAIT_MS = 1000
#: How often the main thread of :meth:`Worker.run` wakes to run signal handlers.
SIGNAL_CHECK_MS = 100
#: How often the event loop asks which of its handlers' attempts are over.
ASYNC_CANCEL_CHECK_S = 0.05
#: How long closing waits for handler threads to leave their poll loops.
CLOSE_WAIT_S = 2.0
#: How long interpreter exit waits for workers still running to drain.
EXIT_DRAIN_S = 10.0

#: Workers started and not yet stopped, stopped at interpreter exit so no
#: thread is inside the native module while the interpreter finalizes.
_RUNNING: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _stop_running_workers() -> None:
    workers = list(_RUNNING)
    for worker in workers:
        worker.request_stop()
    deadline = time.monotonic() + EXIT_DRAIN_S
    for worker in workers:
        worker.stop(timeout=max(deadline - time.monotonic(), 0.0))


PathLike = Union[str, "os.PathLike[str]"]


class Worker:
    """Runs the handlers of a :class:`Registry` on Tasker's worker core.

    Configuration comes from Tasker's TOML layers and environment (as for
    every Tasker process: ``TASKER_ENV``, ``TASKER_CONFIG_DIR``,
    ``DATABASE_URL``, ``TASKER_TEMPLATE_PATH``, …); keyword arguments win
    over them:

    :param registry: the handlers to serve (default: :data:`default_registry`).
    :param concurrency: handlers running at once (``worker.concurrency``).
    :param namespaces: namespaces to serve (``worker.namespaces``); by
        default every namespace whose templates this worker can serve.
    :param template_paths: template files or directories to register at
        start (``worker.template_paths``).
    :param database_url: the PostgreSQL to use (``database.url``).
    :param environment: the configuration environment (``TASKER_ENV``).
    :param config_dir: a directory of TOML overrides (``TASKER_CONFIG_DIR``).
    :param config: any other settings by dotted key,
        ``{"worker.lease_ms": 10000}``.
    :param include_builtins: also serve Rust's built-in ``tasker::*`` handlers.

    Run it in the foreground with :meth:`run` (it stops on SIGTERM or
    Ctrl-C, after letting running handlers finish), or in the background::

        with Worker(concurrency=8) as worker:
            ...  # submit work; leaving the block drains and stops the worker
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        concurrency: int | None = None,
        namespaces: Iterable[str] | None = None,
        template_paths: Iterable[PathLike] | None = None,
        database_url: str | None = None,
        environment: str | None = None,
        config_dir: PathLike | None = None,
        config: Mapping[str, Any] | None = None,
        include_builtins: bool = False,
    ) -> None:
        self._registry = default_registry if registry is None else registry
        overrides: dict[str, Any] = dict(config or {})
        if concurrency is not None:
            overrides["worker.concurrency"] = concurrency
        if namespaces is not None:
            overrides["worker.namespaces"] = list(namespaces)
        if template_paths is not None:
            overrides["worker.template_paths"] = [str(Path(p)) for p in template_paths]
        if database_url is not None:
            overrides["database.url"] = database_url
        self._overrides = overrides
        self._environment = environment
        self._config_dir = None if config_dir is None else str(config_dir)
        self._include_builtins = include_builtins

        self._native: NativeWorker | None = None
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._async_tasks: dict[int, asyncio.Task[None]] = {}
        self._stop_requested = threading.Event()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Worker:
        """Starts the worker in the background and returns at once (after it
        connected and registered its templates).

        :raises ConfigError: the configuration is invalid.
        :raises WorkerError: PostgreSQL is unreachable, a template is
            invalid, or nothing is registered.
        """
        self._open()
        return self

    def run(self) -> None:
        """Runs the worker until it is stopped, blocking this thread: by
        SIGTERM or Ctrl-C (when this is the main thread: running handlers
        finish, for up to ``worker.shutdown_timeout_ms``; a second signal
        gives them up at once), by a handler raising ``KeyboardInterrupt``
        or ``SystemExit``, or by :meth:`request_stop` from another thread.
        """
        self._open()
        native = self._native_worker()
        with self._signals():
            while not native.wait_stopped(SIGNAL_CHECK_MS):
                pass  # signal handlers run between the waits
        self._close()

    def stop(self, timeout: float | None = None) -> bool:
        """Stops the worker: no new claims, running handlers finish (for up
        to ``worker.shutdown_timeout_ms``). Whether it stopped within
        ``timeout`` seconds (default: as long as that takes)."""
        self.request_stop()
        if self._native is None:
            return True
        limit_ms = 2**31 if timeout is None else max(int(timeout * 1000), 0)
        if not self._native.wait_stopped(limit_ms):
            return False
        self._close()
        return True

    def request_stop(self) -> None:
        """Asks the worker to stop (returns at once); safe from any thread
        and from signal handlers."""
        self._stop_requested.set()
        if self._native is not None:
            self._native.stop()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- introspection -------------------------------------------------------

    @property
    def worker_id(self) -> str:
        """This worker's id, as recorded in claims and transitions."""
        return self._native_worker().worker_id

    @property
    def registry(self) -> Registry:
        """The handlers this worker serves."""
        return self._registry

    def status(self) -> dict[str, Any]:
        """State (``running`` / ``stopping`` / ``stopped``), id, concurrency,
        dispatches by state and totals (``dispatched``, ``completed``,
        ``refused`` — late results discarded —, ``abandoned``), and
        ``handlers_running`` (Python handlers that have not returned)."""
        status: dict[str, Any] = json.loads(self._native_worker().status_json())
        with self._lock:
            status["handlers_running"] = len(self._in_flight)
        return status

    # -- internals -----------------------------------------------------------

    def _native_worker(self) -> NativeWorker:
        if self._native is None:
            raise WorkerError("the worker is not started: call start() or run() first")
        return self._native

    def _open(self) -> None:
        if self._native is not None:
            raise WorkerError("this worker was started already; make a new Worker to run again")
        callables = self._registry.callables()
        if not callables and not self._include_builtins:
            raise WorkerError(
                "no handlers are registered: import the module that defines them "
                "(python -m tasker worker --app myapp.handlers) or pass a Registry"
            )
        native = NativeWorker.start(
            callables,
            environment=self._environment,
            config_dir=self._config_dir,
            overrides_json=json.dumps(self._overrides),
            include_builtins=self._include_builtins,
        )
        self._native = native
        _RUNNING.add(self)
        if self._registry.has_async():
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._loop_thread = threading.Thread(
                target=self._run_loop, args=(native, loop), name="tasker-asyncio", daemon=True
            )
            self._loop_thread.start()
        concurrency = int(json.loads(native.status_json())["concurrency"])
        for i in range(concurrency):
            thread = threading.Thread(
                target=self._poll_loop, args=(native,), name=f"tasker-handler-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "python worker running (worker_id=%s, concurrency=%d, %d callables)",
            native.worker_id,
            concurrency,
            len(callables),
        )

    def _close(self) -> None:
        """After the core stopped: let the threads notice and end the loop.
        A thread still inside a handler (one that ignored its cancel flag)
        is left behind; it is a daemon."""
        _RUNNING.discard(self)
        deadline = time.monotonic() + CLOSE_WAIT_S
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._threads.clear()
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    def _poll_loop(self, native: NativeWorker) -> None:
        """One handler thread: wait for a step, run it, repeat until the
        core has stopped (it drains first: steps dispatched before stopping
        still arrive)."""
        while True:
            batch = native.poll(1, POLL_WAIT_MS)
            if batch is None:
                return
            for dispatch_id, callable, context_json in batch:
                self._dispatch(native, dispatch_id, callable, context_json)

    def _dispatch(
        self, native: NativeWorker, dispatch_id: int, callable: str, context_json: str
    ) -> None:
        with self._lock:
            self._in_flight.add(dispatch_id)
        try:
            ctx = StepContext(json.loads(context_json), native, dispatch_id)
        except (
            Exception
        ) as exc:  # a context this version cannot read: fail the step, not the worker
            with contextlib.suppress(WorkerError):
                deliver_exception(native, dispatch_id, exc)
            self._release(dispatch_id)
            return
        entry = self._registry.get(callable)
        if entry is None:
            # The core dispatches only the callables this worker registered;
            # a registry changed after start is the only way here.
            missing = PermanentError(
                f"no Python handler is registered for `{callable}`",
                error_type="handler_not_found",
            )
            self._settle(native, dispatch_id, ctx, failure_envelope(missing))
            self._release(dispatch_id)
        elif entry.is_async and self._loop is not None:
            loop = self._loop
            loop.call_soon_threadsafe(self._start_async, native, entry, dispatch_id, ctx)
        else:
            try:
                self._run_sync(native, entry, dispatch_id, ctx)
            finally:
                self._release(dispatch_id)

    def _release(self, dispatch_id: int) -> None:
        with self._lock:
            self._in_flight.discard(dispatch_id)

    def _run_sync(
        self, native: NativeWorker, entry: RegisteredHandler, dispatch_id: int, ctx: StepContext
    ) -> None:
        try:
            value = entry.run(ctx)
            if inspect.isawaitable(value):
                value = asyncio.run(_awaited(value))
        except StepError as err:
            self._settle(native, dispatch_id, ctx, failure_envelope(err))
        except (KeyboardInterrupt, SystemExit) as exc:
            self._give_back(native, dispatch_id, ctx, exc)
        except Exception as exc:
            self._settle_exception(native, dispatch_id, ctx, exc)
        else:
            self._settle(native, dispatch_id, ctx, success_envelope(value))

    # -- asyncio -------------------------------------------------------------

    def _run_loop(self, native: NativeWorker, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.create_task(self._cancel_told_tasks(native))
        try:
            loop.run_forever()
        finally:
            # The core has stopped: whatever still runs is past its attempt.
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _start_async(
        self, native: NativeWorker, entry: RegisteredHandler, dispatch_id: int, ctx: StepContext
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run_async(native, entry, dispatch_id, ctx)
        )
        self._async_tasks[dispatch_id] = task

    async def _run_async(
        self, native: NativeWorker, entry: RegisteredHandler, dispatch_id: int, ctx: StepContext
    ) -> None:
        try:
            value = await entry.run(ctx)
        except StepError as err:
            self._settle(native, dispatch_id, ctx, failure_envelope(err))
        except asyncio.CancelledError as exc:
            # Cancelled because the core said the attempt is over: report
            # back so its slot is freed (the completion is refused).
            self._settle_exception(native, dispatch_id, ctx, exc)
        except (KeyboardInterrupt, SystemExit) as exc:
            self._give_back(native, dispatch_id, ctx, exc)
        except Exception as exc:
            self._settle_exception(native, dispatch_id, ctx, exc)
        else:
            self._settle(native, dispatch_id, ctx, success_envelope(value))
        finally:
            self._async_tasks.pop(dispatch_id, None)
            self._release(dispatch_id)

    async def _cancel_told_tasks(self, native: NativeWorker) -> None:
        """Cancels the tasks of handlers whose attempt is over (timeout,
        task cancelled, lease lost), as the Rust core drops its futures."""
        cancelled: set[int] = set()
        while True:
            await asyncio.sleep(ASYNC_CANCEL_CHECK_S)
            cancelled &= set(self._async_tasks)
            for dispatch_id, task in list(self._async_tasks.items()):
                if dispatch_id not in cancelled and native.is_cancelled(dispatch_id):
                    cancelled.add(dispatch_id)
                    task.cancel()

    # -- outcomes ------------------------------------------------------------

    def _settle(
        self, native: NativeWorker, dispatch_id: int, ctx: StepContext, envelope: dict[str, Any]
    ) -> None:
        try:
            accepted = deliver(native, dispatch_id, envelope)
        except WorkerError:
            log.exception("completing step %s failed", ctx.step_uuid)
            return
        if not accepted:
            self._log_refused(ctx)

    def _settle_exception(
        self, native: NativeWorker, dispatch_id: int, ctx: StepContext, exc: BaseException
    ) -> None:
        try:
            accepted = deliver_exception(native, dispatch_id, exc)
        except WorkerError:
            log.exception("failing step %s failed", ctx.step_uuid)
            return
        if not accepted:
            self._log_refused(ctx)

    def _give_back(
        self, native: NativeWorker, dispatch_id: int, ctx: StepContext, exc: BaseException
    ) -> None:
        log.warning(
            "%s in the handler of step %s (%s, attempt %s): stopping the worker; "
            "the step is given back and will be re-claimed",
            type(exc).__name__,
            ctx.step_name,
            ctx.step_uuid,
            ctx.attempt,
        )
        with contextlib.suppress(WorkerError):
            native.abandon(dispatch_id)
        self.request_stop()

    @staticmethod
    def _log_refused(ctx: StepContext) -> None:
        log.warning(
            "result of step %s (%s, attempt %s) discarded: the attempt was over "
            "(it timed out, its task was cancelled or it lost its lease)",
            ctx.step_name,
            ctx.step_uuid,
            ctx.attempt,
        )

    def _abandon_in_flight(self) -> None:
        native = self._native_worker()
        with self._lock:
            in_flight = list(self._in_flight)
        for dispatch_id in in_flight:
            with contextlib.suppress(WorkerError):
                native.abandon(dispatch_id)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the worker gracefully while :meth:`run`
        runs in the main thread; a second one gives running steps back."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self._stop_requested.is_set():
                log.warning("second %s: giving running steps back", name)
                self._abandon_in_flight()
            else:
                log.info("%s: stopping after running handlers finish (again to stop at once)", name)
            self.request_stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _awaited(value: Any) -> Any:
    return await value

"""Type stubs of the native module (Rust, PyO3). Users import `tasker`."""

__version__: str

class WorkerError(Exception):
    """The worker could not start, or a call on it failed."""

class ConfigError(WorkerError):
    """The configuration (TOML, environment or keyword options) is invalid."""

class ForkError(WorkerError):
    """The worker was started in a parent process: a worker does not survive fork()."""

class CheckpointRefused(Exception):
    """A checkpoint was not saved. ``args`` is ``(message, retryable, error_type)``."""

def terminal_task_states() -> list[str]:
    """The task states from which a task does not move on by itself."""

class NativeWorker:
    """A running worker core; see :class:`tasker.Worker`."""

    @staticmethod
    def start(
        callables: list[str],
        *,
        environment: str | None = None,
        config_dir: str | None = None,
        overrides_json: str = "{}",
        include_builtins: bool = False,
    ) -> NativeWorker: ...
    @property
    def worker_id(self) -> str: ...
    def poll(self, max: int, wait_ms: int) -> list[tuple[int, str, str]] | None: ...
    def complete(self, id: int, outcome_json: str) -> bool: ...
    def fail_with_exception(
        self, id: int, kind: str, message: str, traceback: str | None = None
    ) -> bool: ...
    def reject_result(self, id: int, detail: str) -> bool: ...
    def abandon(self, id: int) -> None: ...
    def is_cancelled(self, id: int) -> bool: ...
    def save_checkpoint(self, id: int, checkpoint_json: str) -> None: ...
    def stop(self) -> None: ...
    def wait_stopped(self, timeout_ms: int) -> bool: ...
    def is_stopped(self) -> bool: ...
    def status_json(self) -> str: ...

"""What a handler knows about the step it runs: the same fields as Rust's
``StepContext`` (SPEC §7), with JSON as plain Python values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from ._native import CheckpointRefused
from .errors import PermanentError, checkpoint_error

if TYPE_CHECKING:  # pragma: no cover
    from ._native import NativeWorker

__all__ = ["StepContext", "CursorConfig", "Checkpoint", "BatchConfig"]

T = TypeVar("T")


def _known(cls: type[T], data: Mapping[str, Any]) -> T:
    """``cls`` from the keys of ``data`` it declares, so a field the core
    adds later does not break older workers."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class CursorConfig:
    """The slice of a dataset one batch worker processes."""

    batch_id: str
    """Unique within the batch; the worker step is named ``<worker>_<batch_id>``."""
    start_cursor: Any
    """Where the batch starts (inclusive)."""
    end_cursor: Any
    """Where the batch ends (exclusive)."""
    batch_size: int
    """Items per unit of work within the batch."""

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "batch_id": self.batch_id,
            "start_cursor": self.start_cursor,
            "end_cursor": self.end_cursor,
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class Checkpoint:
    """How far an earlier attempt of a batch worker got."""

    cursor: Any
    """Where to resume: the next item to process."""
    items_processed: int
    """Items processed so far, across attempts."""
    partial_results: Any = None
    """What the processed items added up to."""


@dataclass(frozen=True)
class BatchConfig:
    """A batchable step's ``batch_config`` from its template."""

    worker_template: str
    parallelism: int = 4
    failure_strategy: str = "fail_fast"
    batch_size: int = 100


class StepContext:
    """Everything a handler knows about the step it runs.

    Attributes mirror the Rust context: ``task_uuid``, ``step_uuid``,
    ``namespace``, ``task_name``, ``task_version``, ``context`` (the task's
    JSON context), ``step_name``, ``template_step``, ``attempt`` (from 1),
    ``max_attempts``, ``initialization`` (the step's
    ``handler.initialization``), ``inputs``, ``direct_parents``,
    ``dependency_results`` (every completed ancestor's result by step name),
    ``failed_parents``, ``batch_config``, ``checkpoint`` and
    ``correlation_id``.
    """

    __slots__ = (
        "task_uuid",
        "step_uuid",
        "namespace",
        "task_name",
        "task_version",
        "context",
        "step_name",
        "template_step",
        "attempt",
        "max_attempts",
        "initialization",
        "inputs",
        "direct_parents",
        "dependency_results",
        "failed_parents",
        "batch_config",
        "checkpoint",
        "correlation_id",
        "_cursor",
        "_native",
        "_dispatch_id",
        "_saved",
    )

    task_uuid: str
    step_uuid: str
    namespace: str
    task_name: str
    task_version: str
    context: Any
    step_name: str
    template_step: str
    attempt: int
    max_attempts: int
    initialization: Any
    inputs: Any
    direct_parents: list[str]
    dependency_results: dict[str, Any]
    failed_parents: dict[str, Any]
    batch_config: BatchConfig | None
    checkpoint: Checkpoint | None
    correlation_id: str

    def __init__(
        self,
        data: Mapping[str, Any],
        native: NativeWorker | None = None,
        dispatch_id: int | None = None,
    ) -> None:
        self.task_uuid = data.get("task_uuid", "")
        self.step_uuid = data.get("step_uuid", "")
        self.namespace = data.get("namespace", "")
        self.task_name = data.get("task_name", "")
        self.task_version = data.get("task_version", "")
        self.context = data.get("context", {})
        self.step_name = data.get("step_name", "")
        self.template_step = data.get("template_step", "")
        self.attempt = data.get("attempt", 1)
        self.max_attempts = data.get("max_attempts", 1)
        self.initialization = data.get("initialization", {})
        self.inputs = data.get("inputs")
        self.direct_parents = list(data.get("direct_parents") or [])
        self.dependency_results = dict(data.get("dependency_results") or {})
        self.failed_parents = dict(data.get("failed_parents") or {})
        batch_config = data.get("batch_config")
        self.batch_config = _known(BatchConfig, batch_config) if batch_config else None
        cursor = data.get("batch_cursor")
        self._cursor = _known(CursorConfig, cursor) if cursor else None
        checkpoint = data.get("checkpoint")
        self.checkpoint = _known(Checkpoint, checkpoint) if checkpoint else None
        self.correlation_id = data.get("correlation_id", "")
        self._native = native
        self._dispatch_id = dispatch_id
        self._saved: list[Checkpoint] = []

    @classmethod
    def for_test(cls, **fields: Any) -> StepContext:
        """A context not linked to a worker, for unit tests of handlers:
        pass any field by name (``context={...}``, ``attempt=2``,
        ``batch_cursor={...}``). ``is_cancelled()`` is ``False``;
        checkpoints are kept in ``saved_checkpoints``."""
        return cls(fields)

    def context_as(self, parse: Callable[[Any], T]) -> T:
        """The task context through ``parse`` (a dataclass's ``from_dict``, a
        pydantic model's ``model_validate``, …); a context it rejects
        (``KeyError``, ``TypeError``, ``ValueError``) fails the step
        permanently, as no retry can fix it.

        :raises PermanentError: ``invalid task context: …``
        """
        return _parsed(parse, self.context, "task context")

    def initialization_as(self, parse: Callable[[Any], T]) -> T:
        """The step's ``handler.initialization`` through ``parse``, like
        :meth:`context_as`.

        :raises PermanentError: ``invalid handler initialization: …``
        """
        return _parsed(parse, self.initialization, "handler initialization")

    def dependency(self, name: str, default: Any = None) -> Any:
        """The result of ancestor step ``name``."""
        return self.dependency_results.get(name, default)

    def parent_results(self) -> list[tuple[str, Any]]:
        """``(name, result)`` of each direct parent, in ``direct_parents`` order."""
        return [
            (name, self.dependency_results[name])
            for name in self.direct_parents
            if name in self.dependency_results
        ]

    def batch_cursor(self) -> CursorConfig:
        """This batch worker's slice of the dataset.

        :raises PermanentError: the step is not a batch worker.
        """
        if self._cursor is None:
            raise PermanentError(
                f"step `{self.step_name}` has no batch cursor: only batch workers do"
            )
        return self._cursor

    def is_cancelled(self) -> bool:
        """Whether to stop early: the task was cancelled, this attempt lost
        its lease, or it overran its timeout (its result will be discarded).
        Cheap; check it in long loops."""
        if self._native is None or self._dispatch_id is None:
            return False
        return self._native.is_cancelled(self._dispatch_id)

    def save_checkpoint(
        self, cursor: Any, items_processed: int, partial_results: Any = None
    ) -> None:
        """Records how far this attempt got, so a retried attempt resumes
        from ``cursor`` with ``partial_results`` instead of starting over
        (SPEC §4.7). Save after the items it counts are done. Blocks this
        thread (not the GIL) while the row is written.

        :raises RetryableError: this attempt is no longer current (re-claimed
            or cancelled: stop working), or the database failed.
        """
        checkpoint = {
            "cursor": cursor,
            "items_processed": items_processed,
            "partial_results": partial_results,
        }
        if self._native is None or self._dispatch_id is None:
            self._saved.append(Checkpoint(**checkpoint))
            return
        text = json.dumps(checkpoint, allow_nan=False)
        try:
            self._native.save_checkpoint(self._dispatch_id, text)
        except CheckpointRefused as refused:
            raise checkpoint_error(refused) from None

    async def asave_checkpoint(
        self, cursor: Any, items_processed: int, partial_results: Any = None
    ) -> None:
        """:meth:`save_checkpoint` for ``async def`` handlers: the write runs
        on the loop's default executor, so the event loop keeps running."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, self.save_checkpoint, cursor, items_processed, partial_results
        )

    @property
    def saved_checkpoints(self) -> list[Checkpoint]:
        """Checkpoints saved through a :meth:`for_test` context."""
        return list(self._saved)

    def __repr__(self) -> str:
        return (
            f"StepContext(step_name={self.step_name!r}, attempt={self.attempt}, "
            f"task_uuid={self.task_uuid!r})"
        )


def _parsed(parse: Callable[[Any], T], value: Any, what: str) -> T:
    try:
        return parse(value)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        detail = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise PermanentError(f"invalid {what}: {detail}") from err

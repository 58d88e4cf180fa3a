"""What a handler returns: a plain JSON value, or a :class:`Success` when it
also tells orchestration what to create next (decisions and batches)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .context import CursorConfig

__all__ = ["Success"]


class Success:
    """A successful attempt: ``result`` is what dependents receive;
    ``control`` (set by the decision and batch helpers) is what a decision
    or batchable step asks orchestration to create.

    Returning a plain value ``v`` from a handler is the same as returning
    ``Success(v)``.
    """

    __slots__ = ("result", "control")

    def __init__(self, result: Any = None, *, control: dict[str, Any] | None = None) -> None:
        self.result = result
        self.control = control

    @classmethod
    def create_steps(cls, steps: Iterable[str], *, result: Any = None) -> Success:
        """A decision: create these downstream steps (names reachable from
        the decision in the template). Naming any other step fails the
        decision permanently."""
        names: list[str] = [steps] if isinstance(steps, str) else list(steps)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"step names must be strings, not {type(name).__name__}")
        return cls(
            result,
            control={"type": "decision", "outcome": "create_steps", "steps": names},
        )

    @classmethod
    def no_branches(cls, *, result: Any = None) -> Success:
        """A decision that creates nothing; convergence steps still run."""
        return cls(result, control={"type": "decision", "outcome": "no_branches"})

    @classmethod
    def create_batches(
        cls, cursor_configs: Sequence[CursorConfig], *, result: Any = None
    ) -> Success:
        """A batchable step's plan: one batch worker per cursor."""
        cursors = list(cursor_configs)
        return cls(
            result,
            control={
                "type": "batches",
                "outcome": "create_batches",
                "worker_count": len(cursors),
                "cursor_configs": [
                    c.to_json() if isinstance(c, CursorConfig) else dict(c) for c in cursors
                ],
            },
        )

    @classmethod
    def no_batches(cls, *, result: Any = None) -> Success:
        """A batchable step with nothing to process; convergence still runs."""
        return cls(result, control={"type": "batches", "outcome": "no_batches"})

    def __repr__(self) -> str:
        return f"Success({self.result!r}, control={self.control!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Success)
            and self.result == other.result
            and self.control == other.control
        )

"""Errors a handler raises to fail its step on purpose, and errors the
worker itself raises.

Raise :class:`RetryableError` for a failure another attempt may fix (a
gateway timeout, a 503) and :class:`PermanentError` for one no retry will
fix (a declined card, invalid input). Any other exception fails the step
as a *retryable* ``exception`` failure that carries the exception's type,
message and traceback, so the step's retry policy decides how often it is
tried again.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ._native import CheckpointRefused, ConfigError, ForkError, WorkerError

__all__ = [
    "StepError",
    "RetryableError",
    "PermanentError",
    "WorkerError",
    "ConfigError",
    "ForkError",
]

Seconds = float | int | _dt.timedelta


class StepError(Exception):
    """Base class of the errors that fail a step on purpose.

    :param message: what went wrong, for operators.
    :param code: an application error code (``"card_declined"``).
    :param details: extra JSON-serialisable context.
    :param error_type: the failure's category; ``handler_error`` when unset.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
        self.error_type = error_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class RetryableError(StepError):
    """A failure another attempt may fix.

    :param retry_after: wait at least this long before the next attempt
        (seconds, or a ``timedelta``); wins over the step's backoff policy,
        still capped by its ``max_backoff_ms``. An HTTP ``Retry-After`` you
        received is a good value.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: Seconds | None = None,
        code: str | None = None,
        details: Any = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details, error_type=error_type)
        if isinstance(retry_after, _dt.timedelta):
            retry_after = retry_after.total_seconds()
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self.retry_after: float | None = None if retry_after is None else float(retry_after)


class PermanentError(StepError):
    """A failure no retry will fix: the step fails at once and its
    dependents never run."""

    retryable = False


def checkpoint_error(refused: CheckpointRefused) -> StepError:
    """The handler-facing error for a checkpoint the runtime refused."""
    message, retryable, error_type = refused.args
    cls = RetryableError if retryable else PermanentError
    return cls(message, error_type=error_type)
